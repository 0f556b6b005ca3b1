import { loadSellableSkus, openness, SUPPORTED_INVENTORY_MODES, type SellableSku } from '../catalog/index.ts';
import { MAX_LINE_QUANTITY } from '../cart/index.ts';
import { recordEvent } from '../events/outbox.ts';
import { holdKeyOf, releaseReservation, reserveStock, stockLevels, type StockLevel } from '../inventory/index.ts';
import { flashSaleAvailable, grantFlashSale, recordPendingReservations, releaseFlashSaleReservations, type FlashSaleItem } from '../inventory/flash-sale/index.ts';
import { scheduleJob } from '../jobs/index.ts';
import { unknownBuyers } from '../buyers/index.ts';
import { getLeader } from '../leaders/index.ts';
import { returnCoupons, lockCoupons } from '../coupons/index.ts';
import { freezePoints, endPointsFreeze } from '../points/index.ts';
import { priceForBuyer } from './pricing-step.ts';
import type { OrdersPlatform } from './platform.ts';
import { transaction } from '../platform/db/retry.ts';
import type { OrderLineRow, OrderRow } from './tables.ts';
import { AppError, assert, InvariantViolation, isAppError } from '../platform/errors.ts';
import { slotOfBuyer } from '../platform/shards.ts';
import { sumFen } from '../platform/money.ts';
import { ORDER_EXPIRE_JOB, ORDER_PAY_WITHOUT_CHANNEL_JOB, ORDER_PLACED, expireJobKey, payWithoutChannelJobKey, type OrderPlaced } from './events.ts';
import { payWithoutChannel } from './lifecycle.ts';
import { checkCheckoutLimits, lockBuyerCheckouts } from './buyer-limits.ts';
import {
  abandonIdempotencyKey,
  claimIdempotencyKey,
  completeIdempotencyKey,
  moveIdempotencyKey,
  IDEMPOTENCY_LEASE_MS,
  LeaseLost,
  requestHash,
  seizeAbandonedKey,
  type KeyRef,
} from './idempotency.ts';
import { countPurchase, findOrder, insertOrder, toOrder } from './store.ts';
import { orderView } from './view.ts';

/** A reservation whose order never appeared is checked this long after it was made. */
export const VERIFY_RESERVATION_AFTER_MS = IDEMPOTENCY_LEASE_MS + Math.min(60_000, IDEMPOTENCY_LEASE_MS);
export const VERIFY_RESERVATION_JOB = 'checkout.verify-reservation';
const verifyReservationJobKey = (orderNo: string) => `${VERIFY_RESERVATION_JOB}:${orderNo}`;

/** Most lines in one order. */
export const MAX_CHECKOUT_LINES = 50;
export const MAX_REMARK_LENGTH = 200;

export interface CheckoutRequest {
  leaderId: number;
  items: { activitySkuId: number; quantity: number }[];
  remark?: string | undefined;
  /** The buyer's coupons to use; each must apply, or the checkout is refused. */
  couponIds?: number[] | undefined;
  /** Points to spend, up to their share of the payable. */
  points?: number | undefined;
  fulfilment?: 'pickup' | 'delivery' | undefined;
  region?: string | undefined;
}

export interface CheckoutResponse {
  status: number;
  body: unknown;
}

/**
 * 下单. In order, each step idempotent by order number: validate everything (writes nothing
 * on bad input), claim the Idempotency-Key (fixing the order number), price on the server,
 * reserve stock, lock the coupons and freeze the points, then write order + lines + event +
 * timeout job + the key's response in one transaction on the buyer's shard. If a later step
 * fails the earlier holds are undone. Cart lines are cleared by the order.placed subscriber.
 */
export async function checkout(p: OrdersPlatform, buyerId: number, idempotencyKey: string, request: CheckoutRequest): Promise<CheckoutResponse> {
  const shard = p.shards.forBuyer(buyerId);
  const key: KeyRef = { buyerId, key: idempotencyKey };
  const hash = requestHash(request);

  let checked: Checked;
  try {
    checked = await validateCheckout(p, buyerId, request);
  } catch (error) {
    // A replay of a submission answers as it did (or says it is still in progress), even if the
    // catalog or the stock changed since.
    const replay = isAppError(error) ? await completedResponse(p, key, hash) : undefined;
    if (replay) return replay;
    throw error;
  }

  const claim = await claimIdempotencyKey(shard, { ...key, hash, orderNo: p.nextOrderNo(slotOfBuyer(buyerId), p.now()) }, p.now);
  if (claim.kind === 'replay') return { status: claim.status, body: claim.body };
  const { leaseToken } = claim;
  let orderNo = claim.orderNo;
  if (claim.kind === 'resumed') {
    // The earlier holder may have committed the order just before it died.
    const placed = await findOrder(shard, orderNo);
    if (placed) {
      const response = { status: 201, body: orderView(placed) };
      return (await completeIdempotencyKey(shard, key, leaseToken, response)) ? response : inProgressResponse();
    }
    // Otherwise what the dead attempt held is given back, and this attempt starts over under
    // a fresh order number, so nothing half done can mix with what is done now.
    await undoHolds(p, orderNo);
    const fresh = p.nextOrderNo(slotOfBuyer(buyerId), p.now());
    if (!(await moveIdempotencyKey(shard, key, leaseToken, fresh))) return inProgressResponse();
    orderNo = fresh;
  }

  // Reservation is all or nothing: until it succeeds this attempt holds nothing to undo.
  const progress = { holds: false };
  try {
    return await placeOrder(p, { buyerId, orderNo, key, leaseToken, request, ...checked, progress });
  } catch (error) {
    // Another request took the key over (and works under an order number of its own), so this
    // attempt's order number will never be placed: what it holds goes back.
    if (error instanceof LeaseLost) {
      if (progress.holds) await undoHolds(p, orderNo);
      return inProgressResponse();
    }
    // Every attempt has an order number of its own, so undoing this one's holds never touches
    // another attempt's; only the key's current holder may record the answer.
    if (isAppError(error)) {
      const response = { status: error.status, body: error.toBody() };
      let undone = true;
      if (progress.holds) {
        try {
          await undoHolds(p, orderNo);
        } catch (undoError) {
          // Redis is out of reach: the verification job, already scheduled, gives the holds back later.
          if (!isAppError(undoError, 'flash_sale_not_ready')) throw undoError;
          undone = false;
        }
      }
      // A temporary refusal (flash sale loading, Redis out of reach) is not the submission's
      // answer: the key is freed, so a retry with it runs again.
      if (error.status >= 500 || !undone) {
        return (await abandonIdempotencyKey(shard, key, leaseToken)) ? response : inProgressResponse();
      }
      return (await completeIdempotencyKey(shard, key, leaseToken, response)) ? response : inProgressResponse();
    }
    // Unexpected. Undo only when the order is known not to exist and the key was still ours;
    // if even that cannot be told, the verification job decides later.
    const placed = await findOrder(shard, orderNo).catch(() => 'unknown' as const);
    if (placed === undefined && (await abandonIdempotencyKey(shard, key, leaseToken).catch(() => false))) {
      await undoHolds(p, orderNo);
    }
    throw error;
  }
}

/**
 * Gives back everything a checkout holds under an order number that will not be placed. Safe to
 * repeat. Flash-sale units go back in Redis before the database: while Redis is out of reach this
 * throws `flash_sale_not_ready` and changes nothing, and the verification job tries again later.
 */
async function undoHolds(p: OrdersPlatform, orderNo: string): Promise<void> {
  const now_ms = p.now();
  if (p.flashSale) await releaseFlashSaleReservations(p.flashSale, p.db, orderNo);
  await transaction(p.db, (trx) => releaseReservation(trx, orderNo, now_ms));
  await returnCoupons(p.db, orderNo, now_ms);
  await transaction(p.db, (trx) => endPointsFreeze(trx, orderNo, 'unfreeze', now_ms));
}

function inProgressResponse(): CheckoutResponse {
  const error = new AppError('idempotency_request_in_progress', { field: 'Idempotency-Key' });
  return { status: error.status, body: error.toBody() };
}

/**
 * The safety net for a checkout that died between reserving stock and writing the order:
 * scheduled in the reservation's own transaction, it runs after the key's lease has run out.
 * If the order exists there is nothing to do; otherwise it takes the key from the dead holder
 * (so nobody resumes this order number), releases the reservation and frees the key.
 */
export async function verifyCheckoutReservation(p: OrdersPlatform, orderNo: string): Promise<'order_placed' | 'released'> {
  const shard = p.shards.forOrderNo(orderNo);
  assert(shard, () => `reservation for a malformed order number ${orderNo}`);
  if (await findOrder(shard, orderNo)) return 'order_placed';
  const now_ms = p.now();
  const key = await seizeAbandonedKey(shard, orderNo, now_ms);
  if (key.found && key.seized === undefined && key.state === 'in_progress') {
    throw new Error(`checkout of ${orderNo} still holds its key; checking again later`);
  }
  // The holder may have committed the order and completed the key a moment ago.
  if (await findOrder(shard, orderNo)) return 'order_placed';
  await undoHolds(p, orderNo);
  if (key.found && key.seized) await abandonIdempotencyKey(shard, key.seized, key.seized.leaseToken);
  return 'released';
}

async function completedResponse(p: OrdersPlatform, key: KeyRef, hash: string): Promise<CheckoutResponse | undefined> {
  const row = await p.shards
    .forBuyer(key.buyerId)
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'state', 'response_status', 'response_body'])
    .where('buyer_id', '=', key.buyerId)
    .where('idem_key', '=', key.key)
    .executeTakeFirst();
  if (!row || row.request_hash !== hash) return undefined;
  // The first attempt is still running: its answer, not this one's, is the submission's answer.
  if (row.state === 'in_progress') return inProgressResponse();
  return { status: row.response_status ?? 200, body: JSON.parse(row.response_body ?? 'null') };
}

/** Everything a request can get wrong, checked before anything is written. */
/** What validation found: the activity SKUs, and the stock levels it checked (reused by pricing). */
interface Checked {
  skus: Map<number, SellableSku>;
  levels: Map<number, StockLevel>;
}

async function validateCheckout(p: OrdersPlatform, buyerId: number, request: CheckoutRequest): Promise<Checked> {
  if (request.items.length === 0 || request.items.length > MAX_CHECKOUT_LINES) {
    throw new AppError('invalid_field', { field: 'items', message: `An order has 1 to ${MAX_CHECKOUT_LINES} lines.` });
  }
  const seen = new Set<number>();
  request.items.forEach((item, i) => {
    if (!Number.isSafeInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_LINE_QUANTITY) {
      throw new AppError('invalid_field', { field: `items.${i}.quantity`, message: `quantity must be a whole number from 1 to ${MAX_LINE_QUANTITY}.` });
    }
    if (seen.has(item.activitySkuId)) throw new AppError('duplicate_line', { field: `items.${i}.activitySkuId` });
    seen.add(item.activitySkuId);
  });
  const [unknownBuyer, skus, leader] = await Promise.all([unknownBuyers(p.db, [buyerId]), loadSellableSkus(p.db, [...seen]), getLeader(p.db, request.leaderId)]);
  // A token may name a buyer the platform never registered: such a buyer orders nothing.
  if (unknownBuyer.length > 0) throw new AppError('buyer_not_found');
  if (!leader) throw new AppError('leader_not_found', { field: 'leaderId' });
  const now_ms = p.now();
  request.items.forEach((item, i) => {
    const sku = skus.get(item.activitySkuId);
    if (!sku) throw new AppError('activity_sku_not_found', { field: `items.${i}.activitySkuId` });
    const open = openness(sku.activity, now_ms);
    if (open !== 'open') {
      throw new AppError('activity_not_open', { field: `items.${i}.activitySkuId`, message: open === 'not_started' ? 'The group-buy has not started yet.' : 'The group-buy has closed for orders.' });
    }
    assert(SUPPORTED_INVENTORY_MODES.includes(sku.activity.inventoryMode), () => `activity ${sku.activityId} has an unsupported inventory mode`);
    assert(!(sku.activity.inventoryMode === 'on_payment' && sku.activityPriceUnits !== null), 'stock-linked prices are not offered on on-payment activities');
  });
  // Early, without the buyer's lock: a buyer at their limits is refused before anything is reserved.
  // The order's transaction checks again, exactly.
  await checkCheckoutLimits(p.shards.forBuyer(buyerId), buyerId, request.items, skus, p.buyerLimits);
  // A line that is visibly sold out is refused before anything is written: in a flash sale most
  // buyers arrive after the last unit. (A hold of the buyer's own may still cover it.) Hot lines
  // ask Redis, whose count is the gate; the database's lags behind it.
  const hot = request.items.filter((i) => isFlashSaleLine(p, skus.get(i.activitySkuId)!));
  const [levels, hotAvailable] = await Promise.all([
    stockLevels(p.db, request.items.filter((i) => skus.get(i.activitySkuId)!.activity.inventoryMode !== 'on_add_to_cart' && !hot.includes(i)).map((i) => i.activitySkuId)),
    hot.length > 0 && p.flashSale ? flashSaleAvailable(p.flashSale, hot.map((i) => ({ activityId: skus.get(i.activitySkuId)!.activityId, activitySkuId: i.activitySkuId }))) : new Map<number, number>(),
  ]);
  request.items.forEach((item, i) => {
    const available = hotAvailable.get(item.activitySkuId) ?? levels.get(item.activitySkuId)?.available;
    if (available !== undefined && available < item.quantity) throw new AppError('insufficient_stock', { field: `items.${i}.quantity`, details: { activitySkuId: item.activitySkuId } });
  });
  return { skus, levels };
}

/** 秒杀: a line of a hot activity is reserved through Redis when the platform has one. */
function isFlashSaleLine(p: OrdersPlatform, sku: SellableSku): boolean {
  return p.flashSale !== undefined && sku.activity.hot && sku.activity.inventoryMode === 'on_order' && sku.activityPriceUnits === null;
}

async function placeOrder(
  p: OrdersPlatform,
  c: { buyerId: number; orderNo: string; key: KeyRef; leaseToken: string; request: CheckoutRequest; progress: { holds: boolean } } & Checked,
): Promise<CheckoutResponse> {
  const { buyerId, orderNo, request, skus } = c;
  const lines = request.items.map((item) => ({ item, sku: skus.get(item.activitySkuId)! }));
  const now_ms = p.now();
  const { priced, activityPrice } = await priceForBuyer(p, buyerId, lines.map(({ item, sku }) => ({ sku, quantity: item.quantity })), request, orderNo, c.levels);
  const couponIds = request.couponIds ?? [];

  try {
    // 支付减库存 lines were only checked (by validation); payment deducts them. Hot lines go through
    // the Redis gate (秒杀). The rest are reserved in the database now.
    const flash: FlashSaleItem[] = lines
      .filter(({ sku }) => isFlashSaleLine(p, sku))
      .map(({ item, sku }) => ({ activityId: sku.activityId, activitySkuId: sku.activitySkuId, quantity: item.quantity, purchaseLimit: sku.purchaseLimit }));
    const items = lines
      .filter(({ sku }) => sku.activity.inventoryMode !== 'on_payment' && !isFlashSaleLine(p, sku))
      .map(({ item, sku }) => {
        const price = activityPrice.get(item.activitySkuId);
        // 加购减库存: the units held by the buyer's cart line move into the order first.
        const fromHold = sku.activity.inventoryMode === 'on_add_to_cart' ? { fromHold: holdKeyOf(buyerId, item.activitySkuId) } : {};
        return { ...item, ...fromHold, ...(price && { activityPrice: price }) };
      });
    // The hot lines are written pending in the same transaction, before Redis is asked: the
    // verification job then gives back a Redis grant whose order is never written.
    await reserveStock(p.db, orderNo, items, now_ms, {
      firstAttempt: true, // every attempt has an order number of its own
      alsoInTransaction: async (trx) => {
        await recordPendingReservations(trx, orderNo, buyerId, flash, now_ms);
        await scheduleJob(trx, { kind: VERIFY_RESERVATION_JOB, key: verifyReservationJobKey(orderNo), payload: { orderNo }, due_at_ms: now_ms + VERIFY_RESERVATION_AFTER_MS }, now_ms);
      },
    });
    c.progress.holds = true;
    if (flash.length > 0) await grantFlashSale(p.flashSale!, p.db, orderNo, buyerId, flash, now_ms);
  } catch (error) {
    if (isAppError(error, 'insufficient_stock') || isAppError(error, 'price_changed') || isAppError(error, 'purchase_limit_exceeded')) {
      const index = request.items.findIndex((i) => i.activitySkuId === error.details?.activitySkuId);
      throw new AppError(error.code, { field: `items.${index}.quantity`, details: error.details });
    }
    throw error;
  }
  if (couponIds.length > 0 || priced.points.used > 0) {
    await transaction(p.db, async (trx) => {
      await lockCoupons(trx, buyerId, couponIds, orderNo, now_ms);
      await freezePoints(trx, buyerId, orderNo, priced.points.used, now_ms);
    });
  }

  const orderRow: OrderRow = {
    order_no: orderNo,
    buyer_id: buyerId,
    leader_id: request.leaderId,
    status: 'PENDING_PAYMENT',
    version: 0,
    currency: priced.currency,
    items_total_fen: priced.itemsTotal_fen,
    discount_total_fen: priced.discountTotal_fen,
    shipping_fen: priced.shipping_fen,
    payable_fen: priced.payable_fen,
    coupon_ids: couponIds.length ? JSON.stringify(couponIds) : null,
    points_used: priced.points.used,
    remark: request.remark ?? null,
    payment_no: null,
    paid_fen: null,
    cancel_reason: null,
    created_at_ms: now_ms,
    updated_at_ms: now_ms,
    expires_at_ms: now_ms + p.paymentTimeout_ms,
    paid_at_ms: null,
    cancelled_at_ms: null,
    refunded_fen: 0,
  };
  const lineRows: OrderLineRow[] = lines.map(({ sku }, i) => {
    const price = priced.lines[i]!;
    return {
      order_no: orderNo,
      line_no: i + 1,
      activity_id: sku.activityId,
      activity_sku_id: sku.activitySkuId,
      sku_id: sku.skuId,
      merchant_id: sku.merchantId,
      title: sku.title,
      inventory_mode: sku.activity.inventoryMode,
      unit_price_fen: price.segments[0]!.unitPrice_fen,
      quantity: price.quantity,
      subtotal_fen: price.subtotal_fen,
      discount_fen: price.discount_fen,
      shipping_fen: price.shipping_fen,
      payable_fen: price.payable_fen,
      discounts: price.discounts.length ? JSON.stringify(price.discounts) : null,
      // A line crossing a stock-linked price boundary has two unit prices; unit_price_fen is the first.
      price_segments: JSON.stringify(price.segments),
      refunded_at_ms: null,
    };
  });
  const response = { status: 201, body: orderView(toOrder(orderRow, lineRows)) };
  const placed: OrderPlaced = {
    orderNo,
    buyerId,
    placed_at_ms: now_ms,
    lines: request.items.map((i) => ({ activitySkuId: i.activitySkuId, quantity: i.quantity })),
  };

  assert(sumFen(lineRows.map((l) => l.payable_fen)) === orderRow.payable_fen, 'order lines must add up to the order payable');
  await transaction(p.shards.forBuyer(buyerId), async (trx) => {
    await lockBuyerCheckouts(trx, buyerId);
    await checkCheckoutLimits(trx, buyerId, request.items, skus, p.buyerLimits);
    for (const [i, { item, sku }] of lines.entries()) {
      if (!(await countPurchase(trx, buyerId, sku.activitySkuId, item.quantity, sku.purchaseLimit))) {
        throw new AppError('purchase_limit_exceeded', { field: `items.${i}.quantity`, details: { activitySkuId: sku.activitySkuId, limit: sku.purchaseLimit } });
      }
    }
    await insertOrder(trx, orderRow, lineRows);
    await recordEvent(trx, { type: ORDER_PLACED, aggregateId: orderNo, payload: placed }, now_ms);
    await scheduleJob(trx, { kind: ORDER_EXPIRE_JOB, key: expireJobKey(orderNo), payload: { orderNo }, due_at_ms: orderRow.expires_at_ms }, now_ms);
    if (orderRow.payable_fen === 0) {
      await scheduleJob(trx, { kind: ORDER_PAY_WITHOUT_CHANNEL_JOB, key: payWithoutChannelJobKey(orderNo), payload: { orderNo }, due_at_ms: now_ms }, now_ms);
    }
    if (!(await completeIdempotencyKey(trx, c.key, c.leaseToken, response))) throw new LeaseLost();
  });
  p.wake();
  if (orderRow.payable_fen === 0) return payFreeOrder(p, orderNo, response);
  return response;
}

/**
 * Nothing to pay: the order is paid now, with no channel, and answered as it stands after (the
 * key keeps the answer as placed, so a replay shows it unpaid: the order itself says PAID). If
 * paying fails here the order is still placed (201 as written); the job written with it pays it.
 */
async function payFreeOrder(p: OrdersPlatform, orderNo: string, placed: CheckoutResponse): Promise<CheckoutResponse> {
  try {
    await payWithoutChannel(p, orderNo);
  } catch (error) {
    if (error instanceof InvariantViolation) throw error;
    p.log.warn({ orderNo, err: error }, 'could not pay an order with nothing payable at checkout; its job pays it');
    return placed;
  }
  const order = await findOrder(p.shards.forOrderNo(orderNo)!, orderNo);
  return order ? { status: 201, body: orderView(order) } : placed;
}
