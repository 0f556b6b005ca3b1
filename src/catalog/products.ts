
import { transaction } from '../platform/db/retry.ts';
import { insertReturningId } from '../platform/db/sql.ts';
import { AppError } from '../platform/errors.ts';
import { merchantExists } from './merchants.ts';
import type { CatalogDb } from './tables.ts';

/** Most SKUs (规格) under one product. */
export const MAX_PRODUCT_SKUS = 50;

export interface Sku {
  id: number;
  productId: number;
  merchantId: number;
  title: string;
  listPrice_fen: number;
  weight_g: number;
}

export interface Product {
  id: number;
  merchantId: number;
  title: string;
  category: string | null;
  skus: Sku[];
}

export async function createProduct(
  db: CatalogDb,
  input: { merchantId: number; title: string; category: string | null; skus: { title: string; listPrice_fen: number; weight_g: number }[] },
  now_ms: number,
): Promise<Product> {
  if (!(await merchantExists(db, input.merchantId))) {
    throw new AppError('invalid_field', { field: 'merchantId', message: `No merchant ${input.merchantId}.` });
  }
  return transaction(db, async (trx) => {
    const productId = await insertReturningId(
      trx,
      trx.insertInto('products').values({
        merchant_id: input.merchantId,
        title: input.title,
        category: input.category,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
      }),
    );
    const skus: Sku[] = [];
    for (const s of input.skus) {
      const id = await insertReturningId(
        trx,
        trx.insertInto('skus').values({
          product_id: productId,
          merchant_id: input.merchantId,
          title: s.title,
          list_price_fen: s.listPrice_fen,
          weight_g: s.weight_g,
          created_at_ms: now_ms,
          updated_at_ms: now_ms,
        }),
      );
      skus.push({ id, productId, merchantId: input.merchantId, ...s });
    }
    return { id: productId, merchantId: input.merchantId, title: input.title, category: input.category, skus };
  });
}

export async function getSku(db: CatalogDb, id: number): Promise<Sku | undefined> {
  const r = await db.selectFrom('skus').selectAll().where('id', '=', id).executeTakeFirst();
  return r && { id: r.id, productId: r.product_id, merchantId: r.merchant_id, title: r.title, listPrice_fen: r.list_price_fen, weight_g: r.weight_g };
}

export async function updateSku(db: CatalogDb, id: number, patch: { title?: string; listPrice_fen?: number; weight_g?: number }, now_ms: number): Promise<Sku> {
  const current = await getSku(db, id);
  if (!current) throw new AppError('not_found', { message: `No SKU ${id}.` });
  const next = { ...current, ...patch };
  await db
    .updateTable('skus')
    .set({ title: next.title, list_price_fen: next.listPrice_fen, weight_g: next.weight_g, updated_at_ms: now_ms })
    .where('id', '=', id)
    .execute();
  return next;
}
