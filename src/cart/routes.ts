import { z } from 'zod';
import { pathId } from '../platform/http/inputs.ts';
import { assertBuyersExist } from '../buyers/index.ts';
import { loadSellableSkus, openness, type SellableSku } from '../catalog/index.ts';
import { stockLevels } from '../inventory/index.ts';
import { AppError } from '../platform/errors.ts';
import { authorize, subjectId } from '../platform/http/auth.ts';
import type { RouteModule } from '../platform/http/server.ts';
import { addToCart, cartLines, changeCartLine, MAX_CART_LINES, MAX_LINE_QUANTITY, removeCartLine, selectCartLines, viewCart } from './cart.ts';
import type { Kysely } from 'kysely';
import type { BuyersTables } from '../buyers/index.ts';
import type { CatalogTables } from '../catalog/index.ts';
import type { OutboxTables } from '../events/index.ts';
import type { InventoryTables } from '../inventory/index.ts';
import type { JobsTables } from '../jobs/index.ts';
import type { CartTables } from './tables.ts';

/** What the cart routes use of the app: the cart, and the catalog, stock and buyers it shows or checks. */
export interface CartRouteDeps {
  db: Kysely<CartTables & CatalogTables & InventoryTables & BuyersTables & OutboxTables & JobsTables>;
  now: () => number;
}

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const lineParams = z.object({ activitySkuId: pathId });

/** 加购减库存: adding to the cart holds stock while the activity is open. */
function holdsOnAdd(sku: SellableSku, now_ms: number): boolean {
  return sku.activity.inventoryMode === 'on_add_to_cart' && openness(sku.activity, now_ms) === 'open';
}

export const cartRoutes: RouteModule<CartRouteDeps> = (server, app) => {
  const show = async (buyerId: number) => {
    const lines = await cartLines(app.db, buyerId);
    const ids = lines.map((l) => l.activitySkuId);
    const [skus, stock] = await Promise.all([loadSellableSkus(app.db, ids), stockLevels(app.db, ids)]);
    return viewCart(lines, skus, stock, app.now());
  };

  server.get('/cart', { schema: { summary: "The buyer's cart, every line with its availability", tags: ['cart'] } }, async (request) =>
    show(subjectId(authorize(request, 'buyer'))),
  );

  server.post(
    '/cart/lines',
    {
      schema: {
        summary: `Add units of an activity SKU (at most ${MAX_CART_LINES} lines, ${MAX_LINE_QUANTITY} per line)`,
        tags: ['cart'],
        body: z.object({ activitySkuId: id, quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY) }).strict(),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      // A buyer the platform has no record of puts nothing in a cart (in add-to-cart mode that would hold stock).
      await assertBuyersExist(app.db, [buyerId]);
      const sku = (await loadSellableSkus(app.db, [request.body.activitySkuId])).get(request.body.activitySkuId);
      if (!sku) throw new AppError('activity_sku_not_found', { field: 'activitySkuId' });
      await addToCart(app.db, buyerId, sku.activitySkuId, request.body.quantity, app.now(), holdsOnAdd(sku, app.now()));
      return show(buyerId);
    },
  );

  server.patch(
    '/cart/lines/:activitySkuId',
    {
      schema: {
        summary: 'Change the quantity or selection of a line',
        tags: ['cart'],
        params: lineParams,
        body: z.object({ quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY).optional(), selected: z.boolean().optional() }).strict(),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      const sku = (await loadSellableSkus(app.db, [request.params.activitySkuId])).get(request.params.activitySkuId);
      await changeCartLine(app.db, buyerId, request.params.activitySkuId, request.body, app.now(), sku !== undefined && holdsOnAdd(sku, app.now()));
      return show(buyerId);
    },
  );

  server.delete('/cart/lines/:activitySkuId', { schema: { summary: 'Remove a line', tags: ['cart'], params: lineParams } }, async (request) => {
    const buyerId = subjectId(authorize(request, 'buyer'));
    await removeCartLine(app.db, buyerId, request.params.activitySkuId, app.now());
    return show(buyerId);
  });

  server.post(
    '/cart/selection',
    {
      schema: {
        summary: 'Select or unselect lines (all when activitySkuIds is omitted)',
        tags: ['cart'],
        body: z.object({ activitySkuIds: z.array(id).max(MAX_CART_LINES).optional(), selected: z.boolean() }).strict(),
      },
    },
    async (request) => {
      const buyerId = subjectId(authorize(request, 'buyer'));
      await selectCartLines(app.db, buyerId, request.body.activitySkuIds ?? 'all', request.body.selected, app.now());
      return show(buyerId);
    },
  );
};
