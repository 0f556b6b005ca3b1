import { recordEvent } from '../events/index.ts';
import { returnCoupons, lockCoupons } from '../coupons/index.ts';
import { grantFlashSale, holdKeyOf, recordPendingReservations, releaseFlashSaleReservations, releaseReservation, reserveStock, type FlashSaleItem, type StockItem } from '../inventory/index.ts';
import { scheduleJob } from '../jobs/index.ts';
import {
  checkCheckoutLimits,
  completeIdempotencyKey,
  countPurchases,
  checkoutView,
  expireJobKey,
  findCheckout,
  IDEMPOTENCY_LEASE_MS,
  insertCheckout,
  LeaseLost,
  ORDER_EXPIRE_JOB,
  ORDER_PAY_WITHOUT_CHANNEL_JOB,
  ORDER_PLACED,
  lockBuyerCheckouts,
  payWithoutChannel,
  payWithoutChannelJobKey,
  toCheckout,
  toOrder,
  type KeyRef,
  type OrderPlaced,
} from '../orders/index.ts';
import { endPointsFreeze, freezePoints } from '../points/index.ts';
import type { SellableSku } from '../catalog/index.ts';
import type { PricedCart } from '../pricing/index.ts';
import type { OrdersPlatform as Platform } from '../orders/index.ts';
import { transaction } from '../platform/db/retry.ts';
import type { CheckoutRow, OrderLineRow, OrderRow, OrdersMainTables } from '../orders/index.ts';
import type { Transaction } from 'kysely';
import { AppError, assert, InvariantViolation, isAppError } from '../platform/errors.ts';
import { allocateFen, sumFen } from '../platform/money.ts';
import { slotOfBuyer } from '../platform/shards.ts';
import { priceForBuyer } from './pricing-step.ts';
import { isFlashSaleLine, type Checked, type CheckoutRequest } from './validation.ts';

/** A reservation whose order never appeared is checked this long after it was made. */
export const VERIFY_RESERVATION_AFTER_MS = IDEMPOTENCY_LEASE_MS + Math.min(60_000, IDEMPOTENCY_LEASE_MS);
export const VERIFY_RESERVATION_JOB = 'checkout.verify-reservation';
const verifyReservationJobKey = (checkoutNo: string) => `${VERIFY_RESERVATION_JOB}:${checkoutNo}`;

export interface CheckoutResponse {
  status: number;
  body: unknown;
}

/** One checkout attempt: its own checkout number and the key's lease, fixed before the first step and changed by none. */
export interface Attempt extends Checked {
  platform: Platform;
  buyerId: number;
  /** The checkout's number, which its holds are kept under; each merchant's order gets a number of its own in the plan. */
  checkoutNo: string;
  key: KeyRef;
  leaseToken: string;
  request: CheckoutRequest;
}

/** What pricing decided and the rows the checkout will be written as (one order per merchant), made once before anything is held. */
interface PlannedOrder {
  now_ms: number;
  priced: PricedCart;
  couponIds: number[];
  /** The lines the database reserves now (支付减库存 lines wait for payment; hot lines go through Redis). */
  reserved: StockItem[];
  /** 秒杀 lines, granted by Redis. */
  flash: FlashSaleItem[];
  checkout: CheckoutRow;
  orders: OrderRow[];
  lines: OrderLineRow[];
  placed: OrderPlaced[];
  response: CheckoutResponse;
}

interface CheckoutStep {
  name: string;
  run: (attempt: Attempt, plan: PlannedOrder) => Promise<void>;
  /**
   * Gives back what the step holds, found by the attempt's checkout number; safe to repeat. A step
   * without one holds nothing once it fails (its transaction rolled back), or what it holds is
   * given back by an earlier step's compensation.
   */
  compensate?: (platform: Platform, checkoutNo: string) => Promise<void>;
}

/**
 * 下单, after validation and the key's claim, as named steps (pricing first makes the plan). Each
 * step is all or nothing or covered by an earlier step's compensation; channel calls (Redis) run
 * outside every transaction.
 */
export const CHECKOUT_STEPS: readonly CheckoutStep[] = [
  // Stock, the hot lines as pending, the verification job, coupons and points: one transaction on the main database.
  { name: 'hold-stock-coupons-points', run: holdStockCouponsPoints, compensate: undoHolds },
  // What Redis grants is given back by the hold's compensation, which finds it by the pending rows.
  { name: 'grant-flash-sale', run: grantHotLines },
  // The checkout, its orders and their lines, their events and jobs, and the key's answer: one transaction on the buyer's shard.
  { name: 'write-order', run: writeOrder },
];

type Compensation = NonNullable<CheckoutStep['compensate']>;

export type StepsOutcome =
  | { failed: false; response: CheckoutResponse }
  | {
      failed: true;
      step: string;
      error: unknown;
      /** The compensations of the steps done, newest first. */
      compensations: readonly Compensation[];
      /** The failed step's own: needed only when its transaction's outcome is unknown (an unexpected error). */
      ownCompensation: Compensation | undefined;
    };

/** Runs the plan and the steps in order; on a failure, says which step failed and what would give back its holds (the caller decides whether to). */
export async function runCheckoutSteps(attempt: Attempt): Promise<StepsOutcome> {
  let plan: PlannedOrder;
  try {
    plan = await planOrder(attempt);
  } catch (error) {
    return { failed: true, step: 'price', error, compensations: [], ownCompensation: undefined };
  }
  for (const [index, step] of CHECKOUT_STEPS.entries()) {
    try {
      await step.run(attempt, plan);
    } catch (error) {
      const done = CHECKOUT_STEPS.slice(0, index).reverse();
      return { failed: true, step: step.name, error, compensations: done.flatMap((s) => (s.compensate ? [s.compensate] : [])), ownCompensation: step.compensate };
    }
  }
  attempt.platform.wake();
  const response = plan.checkout.payable_fen === 0 ? await payFreeCheckout(attempt.platform, attempt.checkoutNo, plan.response) : plan.response;
  return { failed: false, response };
}

/**
 * Gives back everything a checkout holds under a checkout number that will not be placed. Safe to
 * repeat. Flash-sale units go back in Redis before the database: while Redis is out of reach this
 * throws `flash_sale_not_ready` and changes nothing, and the verification job tries again later.
 */
export async function undoHolds(platform: Platform, checkoutNo: string): Promise<void> {
  const now_ms = platform.now();
  if (platform.flashSale) await releaseFlashSaleReservations(platform.flashSale, platform.db, checkoutNo);
  // The stock, the coupons and the points the checkout held come back together, in one transaction.
  await transaction(platform.db, async (trx) => {
    await releaseReservation(trx, checkoutNo, now_ms);
    await returnCoupons(trx, checkoutNo, now_ms);
    await endPointsFreeze(trx, checkoutNo, 'unfreeze', now_ms);
  });
}

/**
 * Prices on the server and lays out the checkout's rows, one order per merchant (拆单: each
 * merchant is the seller of record of its goods, and its buyers' money must reach it alone);
 * writes nothing. Every order gets a number of its own on the buyer's slot.
 */
async function planOrder(attempt: Attempt): Promise<PlannedOrder> {
  const { platform, buyerId, checkoutNo, request, skus } = attempt;
  const lines = request.items.map((item) => ({ item, sku: skus.get(item.activitySkuId)! }));
  const now_ms = platform.now();
  const { priced, activityPrice } = await priceForBuyer(platform, buyerId, lines.map(({ item, sku }) => ({ sku, quantity: item.quantity })), request, checkoutNo, attempt.levels);
  const couponIds = request.couponIds ?? [];
  const flash: FlashSaleItem[] = lines
    .filter(({ sku }) => isFlashSaleLine(platform, sku))
    .map(({ item, sku }) => ({ activityId: sku.activityId, activitySkuId: sku.activitySkuId, quantity: item.quantity, purchaseLimit: sku.purchaseLimit }));
  const reserved: StockItem[] = lines
    .filter(({ sku }) => sku.activity.inventoryMode !== 'on_payment' && !isFlashSaleLine(platform, sku))
    .map(({ item, sku }) => {
      const price = activityPrice.get(item.activitySkuId);
      // 加购减库存: the units held by the buyer's cart line move into the order first.
      const fromHold = sku.activity.inventoryMode === 'on_add_to_cart' ? { fromHold: holdKeyOf(buyerId, item.activitySkuId) } : {};
      return { ...item, ...fromHold, ...(price && { activityPrice: price }) };
    });
  const expires_at_ms = now_ms + platform.paymentTimeout_ms;
  const merchantIds = [...new Set(lines.map(({ sku }) => sku.merchantId))].sort((a, b) => a - b);
  const slot = slotOfBuyer(buyerId);
  const orders: OrderRow[] = [];
  const lineRows: OrderLineRow[] = [];
  const placed: OrderPlaced[] = [];
  // The points the cart spends, shared among the orders as their lines' points discounts are.
  const pointsDiscount = (index: number) => sumFen(priced.lines[index]!.discounts.filter((d) => d.source === 'points').map((d) => d.amount_fen));
  const pointsByMerchant = merchantIds.map((merchantId) => sumFen(lines.flatMap(({ sku }, i) => (sku.merchantId === merchantId ? [pointsDiscount(i)] : []))));
  const pointsShares = priced.points.used > 0 ? allocateFen(priced.points.used, pointsByMerchant) : merchantIds.map(() => 0);
  for (const [m, merchantId] of merchantIds.entries()) {
    const orderNo = platform.nextOrderNo(slot, now_ms);
    const indexes = lines.flatMap(({ sku }, i) => (sku.merchantId === merchantId ? [i] : []));
    const rows = indexes.map((i, position) => lineRowOf(orderNo, position + 1, lines[i]!.sku, priced.lines[i]!));
    const totals = priced.merchants.find((t) => t.merchantId === merchantId)!;
    const couponsHere = couponIds.filter((id) => indexes.some((i) => priced.lines[i]!.discounts.some((d) => d.source === 'coupon' && d.id === String(id))));
    orders.push({
      order_no: orderNo,
      checkout_no: checkoutNo,
      merchant_id: merchantId,
      buyer_id: buyerId,
      leader_id: request.leaderId,
      status: 'PENDING_PAYMENT',
      version: 0,
      currency: priced.currency,
      items_total_fen: totals.subtotal_fen,
      discount_total_fen: totals.discount_fen,
      shipping_fen: totals.shipping_fen,
      payable_fen: totals.payable_fen,
      coupon_ids: couponsHere.length ? JSON.stringify(couponsHere) : null,
      points_used: pointsShares[m]!,
      remark: request.remark ?? null,
      payment_no: null,
      paid_fen: null,
      cancel_reason: null,
      created_at_ms: now_ms,
      updated_at_ms: now_ms,
      expires_at_ms,
      paid_at_ms: null,
      cancelled_at_ms: null,
      refunded_fen: 0,
    });
    assert(sumFen(rows.map((l) => l.payable_fen)) === totals.payable_fen, "an order's lines must add up to its payable");
    lineRows.push(...rows);
    placed.push({
      orderNo,
      checkoutNo,
      buyerId,
      placed_at_ms: now_ms,
      lines: indexes.map((i) => ({ activitySkuId: request.items[i]!.activitySkuId, quantity: request.items[i]!.quantity })),
    });
  }
  const checkout: CheckoutRow = {
    checkout_no: checkoutNo,
    buyer_id: buyerId,
    leader_id: request.leaderId,
    currency: priced.currency,
    order_count: orders.length,
    items_total_fen: priced.itemsTotal_fen,
    discount_total_fen: priced.discountTotal_fen,
    shipping_fen: priced.shipping_fen,
    payable_fen: priced.payable_fen,
    coupon_ids: couponIds.length ? JSON.stringify(couponIds) : null,
    points_used: priced.points.used,
    created_at_ms: now_ms,
    expires_at_ms,
  };
  assert(sumFen(orders.map((o) => o.payable_fen)) === checkout.payable_fen, "a checkout's orders must add up to its payable");
  const view = checkoutView(toCheckout(checkout, orders.map((o) => toOrder(o, lineRows.filter((l) => l.order_no === o.order_no)))));
  return { now_ms, priced, couponIds, reserved, flash, checkout, orders, lines: lineRows, placed, response: { status: 201, body: view } };
}

/** One line's row, numbered within its order, with its discount breakdown (and who funds each part) and price segments. */
function lineRowOf(orderNo: string, lineNo: number, sku: SellableSku, price: PricedCart['lines'][number]): OrderLineRow {
  return {
    order_no: orderNo,
    line_no: lineNo,
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
    platform_funded_fen: price.platformFunded_fen,
    merchant_funded_fen: price.merchantFunded_fen,
    shipping_fen: price.shipping_fen,
    payable_fen: price.payable_fen,
    discounts: price.discounts.length ? JSON.stringify(price.discounts) : null,
    // A line crossing a stock-linked price boundary has two unit prices; unit_price_fen is the first.
    price_segments: JSON.stringify(price.segments),
    refunded_at_ms: null,
  };
}

/**
 * All or nothing, in one transaction on the main database. The hot lines are written pending
 * before Redis is asked, and the verification job with them: it gives back a Redis grant (or any
 * of this) whose order is never written.
 */
async function holdStockCouponsPoints(attempt: Attempt, plan: PlannedOrder): Promise<void> {
  const { platform, buyerId, checkoutNo } = attempt;
  const { now_ms } = plan;
  await onLines(attempt.request, () =>
    reserveStock(platform.db, checkoutNo, plan.reserved, now_ms, {
      firstAttempt: true, // every attempt has a checkout number of its own
      alsoInTransaction: async (inventoryTransaction) => {
        // One transaction on the main database, which holds the coupons and points too; inventory's
        // handle names only its own tables.
        const trx = inventoryTransaction as unknown as Transaction<OrdersMainTables>;
        await recordPendingReservations(inventoryTransaction, checkoutNo, buyerId, plan.flash, now_ms);
        await scheduleJob(trx, { kind: VERIFY_RESERVATION_JOB, key: verifyReservationJobKey(checkoutNo), payload: { checkoutNo }, due_at_ms: now_ms + VERIFY_RESERVATION_AFTER_MS }, now_ms);
        if (plan.couponIds.length > 0 || plan.priced.points.used > 0) {
          await lockCoupons(trx, buyerId, plan.couponIds, checkoutNo, now_ms);
          await freezePoints(trx, buyerId, checkoutNo, plan.priced.points.used, now_ms);
        }
      },
    }),
  );
}

/** 秒杀: Redis grants the hot lines (a channel call, outside any transaction). */
async function grantHotLines(attempt: Attempt, plan: PlannedOrder): Promise<void> {
  if (plan.flash.length === 0) return;
  await onLines(attempt.request, () => grantFlashSale(attempt.platform.flashSale!, attempt.platform.db, attempt.checkoutNo, attempt.buyerId, plan.flash, plan.now_ms));
}

/** The buyer's limits checked again under their lock, the purchase counters raised for the cart, and the checkout written with its orders and its answer. */
async function writeOrder(attempt: Attempt, plan: PlannedOrder): Promise<void> {
  const { platform, buyerId, checkoutNo, request, skus } = attempt;
  const { now_ms, checkout } = plan;
  await transaction(platform.shards.forBuyer(buyerId), async (trx) => {
    await lockBuyerCheckouts(trx, buyerId);
    await checkCheckoutLimits(trx, buyerId, request.items, skus, platform.buyerLimits);
    const counted = request.items.map((item) => ({ activitySkuId: item.activitySkuId, quantity: item.quantity, limit: skus.get(item.activitySkuId)!.purchaseLimit }));
    const over = await countPurchases(trx, buyerId, counted);
    if (over !== undefined) {
      const line = counted[over]!;
      throw new AppError('purchase_limit_exceeded', { field: `items.${over}.quantity`, details: { activitySkuId: line.activitySkuId, limit: line.limit } });
    }
    await insertCheckout(trx, checkout, plan.orders, plan.lines);
    for (const placed of plan.placed) await recordEvent(trx, { type: ORDER_PLACED, aggregateId: placed.orderNo, payload: placed }, now_ms);
    await scheduleJob(trx, { kind: ORDER_EXPIRE_JOB, key: expireJobKey(checkoutNo), payload: { checkoutNo }, due_at_ms: checkout.expires_at_ms }, now_ms);
    // Nothing to pay in the whole checkout: every order is paid now, without a channel (an order
    // with nothing to pay beside others that have is paid with the first of them).
    if (checkout.payable_fen === 0) {
      for (const order of plan.orders) {
        await scheduleJob(trx, { kind: ORDER_PAY_WITHOUT_CHANNEL_JOB, key: payWithoutChannelJobKey(order.order_no), payload: { orderNo: order.order_no }, due_at_ms: now_ms }, now_ms);
      }
    }
    if (!(await completeIdempotencyKey(trx, attempt.key, attempt.leaseToken, plan.response))) throw new LeaseLost();
  });
}

/** A refusal about one activity SKU names its line of the request (`items.N.quantity`). */
async function onLines(request: CheckoutRequest, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (isAppError(error, 'insufficient_stock') || isAppError(error, 'price_changed') || isAppError(error, 'purchase_limit_exceeded')) {
      const index = request.items.findIndex((item) => item.activitySkuId === error.details?.activitySkuId);
      throw new AppError(error.code, { field: `items.${index}.quantity`, details: error.details });
    }
    throw error;
  }
}

/**
 * Nothing to pay: the checkout's orders are paid now, with no channel, and answered as they stand
 * after (the key keeps the answer as placed, so a replay shows them unpaid: the orders themselves
 * say PAID). If paying fails here the orders are still placed (201 as written); their jobs pay them.
 */
async function payFreeCheckout(platform: Platform, checkoutNo: string, placed: CheckoutResponse): Promise<CheckoutResponse> {
  const shard = platform.shards.forOrderNo(checkoutNo)!;
  try {
    for (const order of (await findCheckout(shard, checkoutNo))?.orders ?? []) await payWithoutChannel(platform, order.orderNo);
  } catch (error) {
    if (error instanceof InvariantViolation) throw error;
    platform.log.warn({ checkoutNo, err: error }, 'could not pay a checkout with nothing payable at once; its jobs pay it');
    return placed;
  }
  const checkout = await findCheckout(shard, checkoutNo);
  return checkout ? { status: 201, body: checkoutView(checkout) } : placed;
}
