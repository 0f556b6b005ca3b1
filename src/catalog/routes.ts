import { z } from 'zod';
import { pathId } from '../platform/http/inputs.ts';
import { adjustStock, createStock, MAX_ADJUSTMENTS_LISTED, stockAdjustments, stockLevels } from '../inventory/index.ts';
import { adjustFlashSaleStock, flashSaleHotChanged } from '../inventory/index.ts';
import { createLeader, listLeaders } from '../leaders/index.ts';

import { transaction } from '../platform/db/retry.ts';
import { AppError } from '../platform/errors.ts';
import { authorize } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import {
  createProduct,
  getActivity,
  insertActivity,
  INVENTORY_MODES,
  listCurrentActivities,
  loadSellableSkus,
  MAX_ACTIVITY_SKUS,
  MAX_PRODUCT_SKUS,
  openness,
  updateActivity,
  updateActivitySku,
  updateSku,
  type Activity,
  type SellableSku,
} from './index.ts';
import { merchantRoutes } from './merchant-routes.ts';
import type { CatalogDb } from './tables.ts';
import type { Kysely } from 'kysely';
import type { OutboxTables } from '../events/index.ts';
import type { FlashSale, InventoryTables } from '../inventory/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { LeadersTables } from '../leaders/index.ts';
import type { CatalogTables } from './tables.ts';

/** What the catalog routes use of the app: the catalog, and the stock and leaders they create and show. */
export interface CatalogRouteDeps {
  db: Kysely<CatalogTables & InventoryTables & LeadersTables & OutboxTables & JobsTables>;
  now: () => number;
  flashSale?: FlashSale | undefined;
}

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const idParams = z.object({ id: pathId });
const fen = z.number().int().min(0).max(1_000_000_000);
const name = z.string().trim().min(1).max(200);
/** Most units of stock one activity SKU may start with. */
const MAX_STOCK = 10_000_000;
const MAX_ACTIVITIES_LISTED = 50;

const activityFields = {
  title: name,
  startsAt: z.iso.datetime(),
  endsAt: z.iso.datetime(),
  orderCutoffAt: z.iso.datetime(),
  pickupDate: z.iso.date(),
  inventoryMode: z.enum(INVENTORY_MODES),
  /** 秒杀: serve the stock from Redis (when the platform has one). */
  hot: z.boolean(),
};

const iso = (ms: number) => new Date(ms).toISOString();

function activityView(activity: Activity, skus: SellableSku[], stock: Map<number, { available: number; total: number; activityPriceTaken: number }>, now_ms: number) {
  return {
    id: activity.id,
    title: activity.title,
    startsAt: iso(activity.starts_at_ms),
    endsAt: iso(activity.ends_at_ms),
    orderCutoffAt: iso(activity.order_cutoff_at_ms),
    pickupDate: activity.pickupDate,
    inventoryMode: activity.inventoryMode,
    hot: activity.hot,
    state: openness(activity, now_ms),
    skus: skus.map((s) => ({
      activitySkuId: s.activitySkuId,
      skuId: s.skuId,
      merchantId: s.merchantId,
      title: s.title,
      priceFen: s.price_fen,
      listPriceFen: s.listPrice_fen,
      purchaseLimit: s.purchaseLimit,
      activityPriceUnits: s.activityPriceUnits,
      activityPriceUnitsLeft: s.activityPriceUnits === null ? null : Math.max(0, s.activityPriceUnits - (stock.get(s.activitySkuId)?.activityPriceTaken ?? 0)),
      available: stock.get(s.activitySkuId)?.available ?? 0,
      total: stock.get(s.activitySkuId)?.total ?? 0,
    })),
  };
}

async function showActivity(db: CatalogRouteDeps['db'], activityId: number, now_ms: number) {
  const activity = await getActivity(db, activityId);
  if (!activity) throw new AppError('not_found', { message: `No activity ${activityId}.` });
  const ids = (await db.selectFrom('activity_skus').select('id').where('activity_id', '=', activityId).orderBy('id').execute()).map((r) => r.id);
  const [skus, stock] = await Promise.all([loadSellableSkus(db, ids), stockLevels(db, ids)]);
  return activityView(activity, ids.map((i) => skus.get(i)!).filter(Boolean), stock, now_ms);
}

export const catalogRoutes: RouteModule<CatalogRouteDeps> = (server, app) => {
  server.get('/activities', { schema: { summary: 'Group-buy activities that have not ended, with prices and stock', tags: ['catalog'], security: [] } }, async () => {
    const now_ms = app.now();
    const current = await listCurrentActivities(app.db, now_ms, MAX_ACTIVITIES_LISTED);
    const stock = await stockLevels(app.db, current.flatMap((listing) => listing.skus.map((s) => s.activitySkuId)));
    return { activities: current.map((listing) => activityView(listing.activity, listing.skus, stock, now_ms)) };
  });

  server.get('/activities/:id', { schema: { summary: 'One activity', tags: ['catalog'], params: idParams, security: [] } }, async (request) =>
    showActivity(app.db, request.params.id, app.now()),
  );

  server.get('/leaders', { schema: { summary: 'Group leaders (pickup points)', tags: ['catalog'], security: [] } }, async () => ({
    leaders: await listLeaders(app.db, 200),
  }));

  merchantRoutes(server, app);

  server.post(
    '/admin/leaders',
    { schema: { summary: 'Create a group leader', tags: ['admin'], body: z.object({ name, community: name, address: z.string().trim().min(1).max(400) }).strict() } },
    async (request, reply) => {
      authorize(request, 'admin');
      return reply.status(201).send(await createLeader(app.db, request.body, app.now()));
    },
  );

  server.post(
    '/admin/products',
    {
      schema: {
        summary: 'Create a product with its SKUs',
        tags: ['admin'],
        body: z
          .object({
            merchantId: id,
            title: name,
            category: z.string().trim().min(1).max(100).optional(),
            skus: z.array(z.object({ title: z.string().trim().max(200), listPriceFen: fen, weightG: z.number().int().min(0).max(1_000_000) }).strict()).min(1).max(MAX_PRODUCT_SKUS),
          })
          .strict(),
      },
    },
    async (request, reply) => {
      authorize(request, 'admin');
      const b = request.body;
      const product = await createProduct(
        app.db,
        { merchantId: b.merchantId, title: b.title, category: b.category ?? null, skus: b.skus.map((s) => ({ title: s.title, listPrice_fen: s.listPriceFen, weight_g: s.weightG })) },
        app.now(),
      );
      return reply.status(201).send({
        ...product,
        skus: product.skus.map((s) => ({ id: s.id, title: s.title, listPriceFen: s.listPrice_fen, weightG: s.weight_g })),
      });
    },
  );

  server.patch(
    '/admin/skus/:id',
    {
      schema: {
        summary: 'Edit a SKU',
        tags: ['admin'],
        params: idParams,
        body: z.object({ title: z.string().trim().max(200).optional(), listPriceFen: fen.optional(), weightG: z.number().int().min(0).max(1_000_000).optional() }).strict(),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      const b = request.body;
      const sku = await updateSku(
        app.db,
        request.params.id,
        { ...(b.title !== undefined && { title: b.title }), ...(b.listPriceFen !== undefined && { listPrice_fen: b.listPriceFen }), ...(b.weightG !== undefined && { weight_g: b.weightG }) },
        app.now(),
      );
      return { id: sku.id, title: sku.title, listPriceFen: sku.listPrice_fen, weightG: sku.weight_g };
    },
  );

  server.post(
    '/admin/activities',
    {
      schema: {
        summary: 'Create a group-buy activity (团购活动) with its SKUs, prices, stock and limits',
        tags: ['admin'],
        body: z
          .object({
            ...activityFields,
            inventoryMode: activityFields.inventoryMode.default('on_order'),
            hot: activityFields.hot.default(false),
            skus: z
              .array(
                z
                  .object({
                    skuId: id,
                    priceFen: fen,
                    stock: z.number().int().min(0).max(MAX_STOCK),
                    purchaseLimit: z.number().int().min(1).max(MAX_STOCK).nullable().optional(),
                    activityPriceUnits: z.number().int().min(0).max(MAX_STOCK).nullable().optional(),
                  })
                  .strict(),
              )
              .min(1)
              .max(MAX_ACTIVITY_SKUS),
          })
          .strict(),
      },
    },
    async (request, reply) => {
      authorize(request, 'admin');
      const b = request.body;
      const seen = new Set<number>();
      b.skus.forEach((s, i) => {
        if (seen.has(s.skuId)) throw new AppError('duplicate_line', { field: `skus.${i}.skuId` });
        seen.add(s.skuId);
      });
      const now_ms = app.now();
      const created = await transaction(app.db, async (trx) => {
        const result = await insertActivity(
          trx,
          { title: b.title, starts_at_ms: Date.parse(b.startsAt), ends_at_ms: Date.parse(b.endsAt), order_cutoff_at_ms: Date.parse(b.orderCutoffAt), pickupDate: b.pickupDate, inventoryMode: b.inventoryMode, hot: b.hot },
          b.skus.map((s) => ({ skuId: s.skuId, price_fen: s.priceFen, purchaseLimit: s.purchaseLimit ?? null, activityPriceUnits: s.activityPriceUnits ?? null })),
          now_ms,
        );
        for (const [i, s] of result.skus.entries()) await createStock(trx, s.id, b.skus[i]!.stock, now_ms);
        return result;
      });
      return reply.status(201).send(await showActivity(app.db, created.activity.id, now_ms));
    },
  );

  server.patch(
    '/admin/activities/:id',
    {
      schema: {
        summary: 'Edit an activity',
        tags: ['admin'],
        params: idParams,
        body: z.object(activityFields).partial().strict(),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      const b = request.body;
      const before = await getActivity(app.db, request.params.id);
      const updated = await updateActivity(
        app.db,
        request.params.id,
        {
          ...(b.title !== undefined && { title: b.title }),
          ...(b.startsAt !== undefined && { starts_at_ms: Date.parse(b.startsAt) }),
          ...(b.endsAt !== undefined && { ends_at_ms: Date.parse(b.endsAt) }),
          ...(b.orderCutoffAt !== undefined && { order_cutoff_at_ms: Date.parse(b.orderCutoffAt) }),
          ...(b.pickupDate !== undefined && { pickupDate: b.pickupDate }),
          ...(b.inventoryMode !== undefined && { inventoryMode: b.inventoryMode }),
          ...(b.hot !== undefined && { hot: b.hot }),
        },
        app.now(),
      );
      // Taken off hot, the activity's stock goes back to the database at once; put on hot, it is
      // loaded into Redis now rather than by the first buyer (预热).
      if (app.flashSale && before && before.hot !== updated.hot) await flashSaleHotChanged(app.flashSale, app.db, updated);
      return showActivity(app.db, request.params.id, app.now());
    },
  );

  server.post(
    '/admin/activity-skus/:id/stock-adjustments',
    {
      schema: {
        summary: 'Add or take away stock, with a reason; requestId makes a repeat harmless. Only available units can be taken away.',
        tags: ['admin'],
        params: idParams,
        body: z.object({ delta: z.number().int().min(-MAX_STOCK).max(MAX_STOCK).refine((d) => d !== 0, 'delta must not be 0'), reason: z.string().trim().min(1).max(200), requestId: z.string().min(1).max(64) }).strict(),
      },
    },
    async (request, reply) => {
      const admin = authorize(request, 'admin');
      const b = request.body;
      const input = { activitySkuId: request.params.id, delta: b.delta, reason: b.reason, actor: admin.subject, requestId: b.requestId };
      // A SKU served from Redis is adjusted with its flash sale paused and then reloaded.
      const adjusted = app.flashSale ? await adjustFlashSaleStock(app.flashSale, app.db, input, app.now()) : await adjustStock(app.db, input, app.now());
      return reply.status(201).send(adjusted);
    },
  );

  server.get(
    '/admin/activity-skus/:id/stock-adjustments',
    { schema: { summary: 'The stock adjustments of an activity SKU, newest first', tags: ['admin'], params: idParams } },
    async (request) => {
      authorize(request, 'admin');
      return { adjustments: await stockAdjustments(app.db, request.params.id, MAX_ADJUSTMENTS_LISTED) };
    },
  );

  server.patch(
    '/admin/activity-skus/:id',
    {
      schema: {
        summary: "Edit an activity SKU's price or purchase limit",
        tags: ['admin'],
        params: idParams,
        body: z
          .object({
            priceFen: fen.optional(),
            purchaseLimit: z.number().int().min(1).max(MAX_STOCK).nullable().optional(),
            activityPriceUnits: z.number().int().min(0).max(MAX_STOCK).nullable().optional(),
          })
          .strict(),
      },
    },
    async (request) => {
      authorize(request, 'admin');
      const b = request.body;
      const sku = await updateActivitySku(
        app.db,
        request.params.id,
        {
          ...(b.priceFen !== undefined && { price_fen: b.priceFen }),
          ...(b.purchaseLimit !== undefined && { purchaseLimit: b.purchaseLimit }),
          ...(b.activityPriceUnits !== undefined && { activityPriceUnits: b.activityPriceUnits }),
        },
        app.now(),
      );
      return { activitySkuId: sku.id, activityId: sku.activityId, skuId: sku.skuId, priceFen: sku.price_fen, purchaseLimit: sku.purchaseLimit, activityPriceUnits: sku.activityPriceUnits };
    },
  );
};
