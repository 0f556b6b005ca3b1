import { Migrator, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buyerCoupons, createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { historiesFor, MAIN_DATABASE_HISTORIES, migrateDatabase, migrateDatabases, ORDER_SHARD_HISTORIES } from '../src/migrations.ts';
import { getOrder } from '../src/orders/index.ts';
import { paymentsOfOrder, refundsOfOrder } from '../src/payments/index.ts';
import { openDatabase } from '../src/platform/db/database.ts';
import { appliedMigrations, runMigrations } from '../src/platform/db/migrate.ts';
import { grantPoints, pointsAccount } from '../src/points/index.ts';
import { PAYEE_CHANNELS } from '../src/catalog/index.ts';
import { catalogMigrations } from '../src/catalog/migrations/index.ts';
import { ordersMigrations } from '../src/orders/migrations/index.ts';
import { paymentsShardMigrations } from '../src/payments/migrations/index.ts';
import { promotionsMigrations } from '../src/promotions/migrations/index.ts';
import { LEGACY_HISTORY } from '../src/upgrade/legacy.ts';
import { availableEngines, type Engine, type TestDatabase } from './support/engines.ts';
import { channelAccountsOf, newKey, seedActivity, startHarness, stockLedger, writtenRows, type Harness } from './support/harness.ts';
import { asBuyer } from './support/client.ts';
import { describeSchema, everyRow, tablesOf } from './support/schema.ts';

const DAY_MS = 86_400_000;

/** The tables legacy 0013 put on every database; the per-module migrations split them by side. */
const ORDER_SIDE_TABLES = ['buyer_checkouts', 'checkouts', 'dead_letters', 'event_inbox', 'idempotency_keys', 'jobs', 'order_lines', 'orders', 'outbox_events', 'payment_orders', 'payment_refunds', 'price_protection_claims', 'purchase_counters'];
const MAIN_SIDE_TABLES = [
  'activities', 'activity_skus', 'buyers', 'cart_lines', 'consistency_repairs', 'coupon_issuance', 'coupon_templates', 'coupons', 'dead_letters', 'event_inbox', 'jobs', 'leaders',
  'merchant_channel_accounts', 'merchants', 'outbox_events', 'points_accounts', 'points_journal', 'products', 'promotions', 'reconciliation_differences', 'reconciliation_runs', 'revoked_tokens', 'shipping_rules',
  'skus', 'stock', 'stock_adjustments', 'stock_reservations',
];

/**
 * The modules' migrations written after legacy 0013, in the order the migrator runs them: today's
 * schema is legacy 0013 with the main-side ones applied on the main database (catalog and
 * promotions live there) and the shard-side ones on every order shard (拆单's checkouts, the
 * combined payments). A legacy database runs them after its hand-over; a fresh one after the
 * baselines that reproduce 0013.
 */
const SINCE_LEGACY_MAIN = [
  { name: 'catalog/0002_merchant_channel_accounts', migration: catalogMigrations['0002_merchant_channel_accounts']! },
  { name: 'promotions/0002_handover', migration: promotionsMigrations['0002_handover']! },
];
const SINCE_LEGACY_SHARD = [
  { name: 'orders/0002_checkouts', migration: ordersMigrations['0002_checkouts']! },
  { name: 'payments_shard/0002_combined_payments', migration: paymentsShardMigrations['0002_combined_payments']! },
];
const SINCE_LEGACY = [...SINCE_LEGACY_MAIN, ...SINCE_LEGACY_SHARD];
const SINCE_LEGACY_NAMES = SINCE_LEGACY.map((since) => since.name);
const SINCE_LEGACY_SHARD_NAMES = SINCE_LEGACY_SHARD.map((since) => since.name);

type Row = Record<string, unknown>;
const parsed = (rows: Record<string, string[]>, table: string): Row[] => (rows[table] ?? []).map((row) => JSON.parse(row) as Row);
const serialized = (rows: Row[]): string[] => rows.map((row) => JSON.stringify(row)).sort();
/** The row with one column renamed, in its place. */
const renamed = (row: Row, from: string, to: string): Row => Object.fromEntries(Object.entries(row).map(([name, value]) => [name === from ? to : name, value]));

/**
 * The rows of a legacy database as the migrations since change them. On the main side every
 * merchant is a marketplace merchant (self_operated 0, a column added last) with no channel
 * account yet. On the order side each order was its own checkout: it becomes one under its own
 * number, its merchant the lowest of its lines', its lines' discounts counted as the platform's;
 * the Idempotency-Key's column names the checkout; every payment was a single trade.
 */
function rowsSinceLegacy(rows: Record<string, string[]>, side: { main: boolean }): Record<string, string[]> {
  const lines = parsed(rows, 'order_lines');
  const orders = parsed(rows, 'orders');
  const merchantOf = (orderNo: unknown) => Math.min(...lines.filter((line) => line.order_no === orderNo).map((line) => Number(line.merchant_id)));
  const orderSide = {
    orders: serialized(orders.map((order) => ({ ...order, checkout_no: order.order_no, merchant_id: merchantOf(order.order_no) }))),
    checkouts: serialized(
      orders.map((order) => ({
        checkout_no: order.order_no,
        buyer_id: order.buyer_id,
        leader_id: order.leader_id,
        currency: order.currency,
        order_count: 1,
        items_total_fen: order.items_total_fen,
        discount_total_fen: order.discount_total_fen,
        shipping_fen: order.shipping_fen,
        payable_fen: order.payable_fen,
        coupon_ids: order.coupon_ids,
        points_used: order.points_used,
        created_at_ms: order.created_at_ms,
        expires_at_ms: order.expires_at_ms,
      })),
    ),
    order_lines: serialized(lines.map((line) => ({ ...line, platform_funded_fen: line.discount_fen, merchant_funded_fen: 0 }))),
    idempotency_keys: serialized(parsed(rows, 'idempotency_keys').map((key) => renamed(key, 'order_no', 'checkout_no'))),
    payment_orders: serialized(parsed(rows, 'payment_orders').map((payment) => ({ ...payment, combine_no: null, sub_merchant_id: null }))),
  };
  if (!side.main) return { ...rows, ...orderSide };
  const merchants = serialized(parsed(rows, 'merchants').map((merchant) => ({ ...merchant, self_operated: 0 })));
  return { ...rows, ...orderSide, merchants, merchant_channel_accounts: [] };
}

/** Brings a legacy 0013 database to today's schema by the migrations written since (or the given ones), run directly. */
async function applySinceLegacy(db: Kysely<any>, migrations = SINCE_LEGACY): Promise<void> {
  for (const since of migrations) await since.migration.up(db);
}

/** Takes the given migrations since legacy 0013 back, last first: legacy 0013's schema again. */
async function takeBackSinceLegacy(db: Kysely<any>, migrations = SINCE_LEGACY): Promise<void> {
  for (const since of [...migrations].reverse()) await since.migration.down!(db);
}

/**
 * Legacy numbering, on today's code: each checkout placed while this is armed gives its one order
 * its own number, as legacy orders were their own checkouts (their holds, Idempotency-Key and jobs
 * under the order's number). The checkout draws its number first, then its order draws one.
 */
function numberOrdersAsTheirCheckouts(app: Harness['app']): { arm(): void } {
  const draw = app.nextOrderNo;
  let armed = false;
  let drawn: string | undefined;
  const legacy = (slot: number, now_ms: number): string => {
    if (!armed) return draw(slot, now_ms);
    if (drawn === undefined) return (drawn = draw(slot, now_ms));
    const same = drawn;
    [armed, drawn] = [false, undefined];
    return same;
  };
  // The routes use the app's copy of the platform, the payment centre the platform itself.
  Object.assign(app, { nextOrderNo: legacy });
  Object.assign(app.payments.platform, { nextOrderNo: legacy });
  return { arm: () => void (armed = true) };
}

async function withDatabase<T>(url: string, run: (db: Kysely<any>) => Promise<T>): Promise<T> {
  const db = await openDatabase(url);
  try {
    return await run(db);
  } finally {
    await db.destroy();
  }
}

/** A database as today's main made it: the legacy history alone, up to `upTo` (default all of it). */
async function legacyDatabase(engine: Engine, upTo?: string): Promise<TestDatabase> {
  const database = await engine.createDatabase();
  await withDatabase(database.url, async (db) => {
    if (upTo === undefined) return void (await runMigrations(db, LEGACY_HISTORY));
    const migrator = new Migrator({ db, provider: { getMigrations: async () => LEGACY_HISTORY.migrations } });
    const { error } = await migrator.migrateTo(upTo);
    if (error) throw error;
  });
  return database;
}

/**
 * Migrations per module, and the hand-over of a database made by the legacy migrations (one
 * history, cut by delivery, on every database). Invariants: a fresh database gets exactly the
 * legacy 0013 schema, split by side; a legacy database holding orders in every state loses no
 * row and no column, its in-flight orders go on as before, and new orders work on it.
 */
for (const engine of availableEngines()) {
  describe(`migrations per module, and the upgrade of a legacy database, on ${engine.name}`, () => {
    const created: TestDatabase[] = [];
    const database = async () => {
      const made = await engine.createDatabase();
      created.push(made);
      return made;
    };
    afterAll(async () => {
      for (const made of created) await made.drop();
    });

    it('a fresh database gets exactly the schema legacy 0013 made plus the migrations since, and never runs a legacy migration', async () => {
      const legacy = await legacyDatabase(engine);
      created.push(legacy);
      const fresh = await database();
      const legacySchema = await withDatabase(legacy.url, async (db) => {
        await applySinceLegacy(db);
        return describeSchema(db);
      });
      await withDatabase(fresh.url, async (db) => {
        const applied = await migrateDatabase(db, historiesFor({ main: true, orderShard: true }));
        expect(applied.some((name) => name.startsWith('legacy/'))).toBe(false);
        expect(await appliedMigrations(db, LEGACY_HISTORY)).toEqual([]);
        expect(await describeSchema(db)).toEqual(legacySchema);
      });
    });

    it('a fresh order shard gets only the order-side tables, and a fresh main database no order tables when the shards are separate', async () => {
      const [main, shard] = [await database(), await database()];
      await withDatabase(main.url, (mainDb) =>
        withDatabase(shard.url, async (shardDb) => {
          await migrateDatabases(mainDb, [shardDb]);
          expect(await tablesOf(shardDb)).toEqual(ORDER_SIDE_TABLES);
          expect(await tablesOf(mainDb)).toEqual(MAIN_SIDE_TABLES);
          for (const history of ORDER_SHARD_HISTORIES) expect(await appliedMigrations(shardDb, history), history.name).toEqual(Object.keys(history.migrations));
          for (const history of MAIN_DATABASE_HISTORIES) expect(await appliedMigrations(mainDb, history), history.name).toEqual(Object.keys(history.migrations));
          // The main-only histories were never started on the shard, nor the shard-only ones on the main database.
          expect(await appliedMigrations(shardDb, MAIN_DATABASE_HISTORIES.find((history) => history.name === 'catalog')!)).toEqual([]);
          expect(await appliedMigrations(mainDb, ORDER_SHARD_HISTORIES.find((history) => history.name === 'orders')!)).toEqual([]);
          // Run again: nothing to do.
          expect([...(await migrateDatabases(mainDb, [shardDb])).values()].flat()).toEqual([]);
        }),
      );
    });

    it('a legacy database that is behind is brought to legacy 0013 first, then handed over', async () => {
      const behind = await legacyDatabase(engine, '0005_payments');
      created.push(behind);
      const reference = await legacyDatabase(engine);
      created.push(reference);
      const referenceSchema = await withDatabase(reference.url, async (db) => {
        await applySinceLegacy(db);
        return describeSchema(db);
      });
      await withDatabase(behind.url, async (db) => {
        const applied = await migrateDatabase(db, historiesFor({ main: true, orderShard: true }));
        expect(applied.filter((name) => name.startsWith('legacy/'))).toEqual(Object.keys(LEGACY_HISTORY.migrations).slice(5).map((name) => `legacy/${name}`));
        expect(await appliedMigrations(db, LEGACY_HISTORY)).toEqual(Object.keys(LEGACY_HISTORY.migrations));
        expect(await describeSchema(db)).toEqual(referenceSchema);
      });
    });

    describe('a legacy main database and a legacy order shard holding orders in every state', () => {
      let legacyDatabases: TestDatabase[] = [];
      let reference: TestDatabase | undefined;
      let h: Harness | undefined;
      beforeAll(async () => {
        legacyDatabases = [await legacyDatabase(engine), await legacyDatabase(engine)];
        reference = await legacyDatabase(engine);
      });
      afterAll(async () => {
        await h?.close({ keepDatabases: true });
        for (const made of legacyDatabases) await made.drop();
        await reference?.drop();
      });

      const auth = (app: Harness, buyerId: number) => ({ authorization: `Bearer ${app.buyerToken(buyerId)}` });
      async function untilQuiet(app: Harness) {
        for (let round = 0; round < 3; round++) {
          await app.sandbox!.core.untilDelivered();
          await app.app.drain();
        }
      }
      async function pay(app: Harness, buyerId: number, orderNo: string) {
        const method = app.app.payments.channels.get('wechat')!.methods[0]!;
        const started = await app.http.inject({ method: 'POST', url: `/orders/${orderNo}/payments`, headers: auth(app, buyerId), payload: { channel: 'wechat', method } });
        expect(started.statusCode).toBe(201);
        const payNo = started.json().payNo as string;
        expect((await fetch(`${app.sandbox!.url}/sandbox/cashier/wechat/${payNo}/pay`, { method: 'POST' })).status).toBe(200);
        await untilQuiet(app);
        return payNo;
      }
      async function refund(app: Harness, buyerId: number, orderNo: string, lineNos?: number[]) {
        const response = await app.http.inject({ method: 'POST', url: `/orders/${orderNo}/refunds`, headers: { ...auth(app, buyerId), 'idempotency-key': newKey() }, payload: lineNos ? { lineNos } : {} });
        expect(response.statusCode).toBe(201);
        await untilQuiet(app);
      }
      async function couponFor(app: Harness, buyerId: number): Promise<number> {
        const now = app.clock.now();
        const template = await createCouponTemplate(
          app.app.db,
          { name: '3 yuan off', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 300, threshold_fen: 1000 }, validFrom: new Date(now - DAY_MS).toISOString(), validUntil: new Date(now + 30 * DAY_MS).toISOString(), perBuyerLimit: 5 },
          now,
        );
        return (await issueCoupons(app.app.db, template.id, [buyerId], now)).issued[0]!.couponId;
      }
      const couponState = async (app: Harness, buyerId: number, couponId: number) => (await buyerCoupons(app.app.db, buyerId, app.clock.now())).find((coupon) => coupon.couponId === couponId)!.state;

      it('migrates with every row kept, the flow invariants hold on it, and checkout → pay → refund works after', async () => {
        // The data a legacy deployment holds, written by today's code: on legacy 0013's schema with the
        // migrations since (each database its side's), each order its own checkout as legacy orders
        // were; once it is written the migrations since are taken back, leaving legacy 0013's schema.
        await withDatabase(legacyDatabases[0]!.url, (db) => applySinceLegacy(db, SINCE_LEGACY));
        await withDatabase(legacyDatabases[1]!.url, (db) => applySinceLegacy(db, SINCE_LEGACY_SHARD));
        const before = await startHarness(engine, { databases: legacyDatabases, shards: 2, migrate: false, sandbox: {} });
        const legacyNumbering = numberOrdersAsTheirCheckouts(before.app);
        const f = await seedActivity(before.app, { skus: [{ price_fen: 1200, stock: 20 }, { price_fen: 800, stock: 20 }] });
        const both = f.activitySkuIds.map((activitySkuId) => ({ activitySkuId, quantity: 1 }));
        const first = [{ activitySkuId: f.activitySkuIds[0]!, quantity: 2 }];
        // Buyers 101… live on the first shard (the main database), 700… on the second (slot = id mod 1024).
        const buyers = { pending: 101, paid: 700, cancelled: 102, refunded: 701, partly: 103, carting: 702 };
        await grantPoints(before.app.db, buyers.pending, 500, 'welcome-pending', 'welcome', before.clock.now());
        await grantPoints(before.app.db, buyers.paid, 500, 'welcome-paid', 'welcome', before.clock.now());
        const pendingCoupon = await couponFor(before, buyers.pending);
        const cancelledCoupon = await couponFor(before, buyers.cancelled);
        const place = async (buyerId: number, body: object) => {
          legacyNumbering.arm();
          const placed = await asBuyer(before, buyerId).checkout({ leaderId: f.leaderId, ...body });
          expect(placed.status, JSON.stringify(placed.body)).toBe(201);
          expect(placed.body.orders).toHaveLength(1);
          expect(placed.body.orders[0].orderNo).toBe(placed.body.checkoutNo);
          return placed.body.orders[0].orderNo as string;
        };
        const orders = {
          pending: await place(buyers.pending, { items: first, couponIds: [pendingCoupon], points: 200 }),
          paid: await place(buyers.paid, { items: both, points: 100 }),
          cancelled: await place(buyers.cancelled, { items: first, couponIds: [cancelledCoupon] }),
          refunded: await place(buyers.refunded, { items: first }),
          partly: await place(buyers.partly, { items: both }),
        };
        await pay(before, buyers.paid, orders.paid);
        const cancel = await before.http.inject({ method: 'POST', url: `/orders/${orders.cancelled}/cancel`, headers: auth(before, buyers.cancelled) });
        expect(cancel.statusCode).toBe(200);
        await pay(before, buyers.refunded, orders.refunded);
        await refund(before, buyers.refunded, orders.refunded);
        await pay(before, buyers.partly, orders.partly);
        await refund(before, buyers.partly, orders.partly, [1]);
        const carted = await before.http.inject({ method: 'POST', url: '/cart/lines', headers: auth(before, buyers.carting), payload: { activitySkuId: f.activitySkuIds[1], quantity: 2 } });
        expect(carted.statusCode).toBeLessThan(300);
        await untilQuiet(before);

        const statusOf = async (app: Harness) =>
          Object.fromEntries(await Promise.all(Object.entries(orders).map(async ([name, orderNo]) => [name, (await getOrder(app.app, orderNo)).status])));
        const expectedStatus = { pending: 'PENDING_PAYMENT', paid: 'PAID', cancelled: 'CANCELLED', refunded: 'REFUNDED', partly: 'PAID' };
        expect(await statusOf(before)).toEqual(expectedStatus);
        expect((await getOrder(before.app, orders.partly)).refunded_fen).toBeGreaterThan(0);
        const ledgers = await Promise.all(f.activitySkuIds.map((id) => stockLedger(before.app, id)));
        const rowsWritten = await writtenRows(before.app);
        const points = { pending: await pointsAccount(before.app.db, buyers.pending), paid: await pointsAccount(before.app.db, buyers.paid) };
        expect(points.pending.frozen).toBe(200);
        // Orders on both databases, payments and refunds beside them.
        for (const url of legacyDatabases.map((made) => made.url)) {
          await withDatabase(url, async (db) => expect((await db.selectFrom('orders').select('order_no').execute()).length).toBeGreaterThan(0));
        }
        await before.close({ keepDatabases: true });
        await withDatabase(legacyDatabases[0]!.url, (db) => takeBackSinceLegacy(db, SINCE_LEGACY));
        await withDatabase(legacyDatabases[1]!.url, (db) => takeBackSinceLegacy(db, SINCE_LEGACY_SHARD));

        // The new migrator, on what the legacy code left.
        const [mainUrl, shardUrl] = legacyDatabases.map((made) => made.url) as [string, string];
        await withDatabase(mainUrl, (mainDb) =>
          withDatabase(shardUrl, async (shardDb) => {
            const rowsBefore = [await everyRow(mainDb), await everyRow(shardDb)];
            const schemaBefore = [await describeSchema(mainDb), await describeSchema(shardDb)];
            // A database as legacy 0013 made it, and as the migrations since change a shard and a main database.
            const [legacySchema, todayShardSchema, todayMainSchema] = await withDatabase(reference!.url, async (db) => {
              const legacy = await describeSchema(db);
              await applySinceLegacy(db, SINCE_LEGACY_SHARD);
              const shard = await describeSchema(db);
              await applySinceLegacy(db, SINCE_LEGACY_MAIN);
              return [legacy, shard, await describeSchema(db)];
            });
            expect(schemaBefore).toEqual([legacySchema, legacySchema]);
            const applied = await migrateDatabases(mainDb, [mainDb, shardDb]);
            // No baseline ran: each module's baseline was recorded, its tables being there already;
            // only the migrations written since legacy 0013 ran: all of them on the main database
            // (it is an order shard too), the shard-side ones on the shard.
            for (const names of applied.values()) {
              for (const name of names.filter((name) => !SINCE_LEGACY_NAMES.includes(name))) expect(name).toMatch(/\(recorded: legacy 0013 made its tables\)$/);
            }
            expect(applied.get(mainDb)!.filter((name) => SINCE_LEGACY_NAMES.includes(name))).toEqual(SINCE_LEGACY_NAMES);
            expect(applied.get(mainDb)!.length).toBe(historiesFor({ main: true, orderShard: true }).length + SINCE_LEGACY_NAMES.length);
            expect(applied.get(shardDb)!.filter((name) => SINCE_LEGACY_NAMES.includes(name))).toEqual(SINCE_LEGACY_SHARD_NAMES);
            expect(applied.get(shardDb)!.length).toBe(ORDER_SHARD_HISTORIES.length + SINCE_LEGACY_SHARD_NAMES.length);
            expect([await everyRow(mainDb), await everyRow(shardDb)]).toEqual([rowsSinceLegacy(rowsBefore[0]!, { main: true }), rowsSinceLegacy(rowsBefore[1]!, { main: false })]);
            // Nothing dropped: the legacy shard keeps its (empty) main-side tables, untouched; each
            // database changed only as the migrations since of its side change legacy 0013.
            expect([await describeSchema(mainDb), await describeSchema(shardDb)]).toEqual([todayMainSchema, todayShardSchema]);
            expect(await appliedMigrations(mainDb, LEGACY_HISTORY)).toEqual(Object.keys(LEGACY_HISTORY.migrations));
            for (const history of ORDER_SHARD_HISTORIES) expect(await appliedMigrations(shardDb, history), history.name).toEqual(Object.keys(history.migrations));
            expect(await appliedMigrations(shardDb, MAIN_DATABASE_HISTORIES.find((history) => history.name === 'catalog')!)).toEqual([]);
            // From now on only the modules' histories: a second run does nothing.
            expect([...(await migrateDatabases(mainDb, [mainDb, shardDb])).values()].flat()).toEqual([]);
          }),
        );

        // The app on the upgraded databases (its own migration step now a no-op).
        h = await startHarness(engine, { databases: legacyDatabases, shards: 2, sandbox: {} });
        expect(await statusOf(h)).toEqual(expectedStatus);
        for (const [index, id] of f.activitySkuIds.entries()) expect(await stockLedger(h.app, id)).toEqual(ledgers[index]);
        // Every row, jobs included, was compared above; once the app is up its jobs that fell due meanwhile run (and go).
        const { jobs: jobsBefore, ...kept } = rowsWritten;
        const { jobs: jobsNow, ...keptNow } = await writtenRows(h.app);
        expect(keptNow).toEqual(kept);
        expect(jobsNow).toBeLessThanOrEqual(jobsBefore!);
        expect(await pointsAccount(h.app.db, buyers.pending)).toEqual(points.pending);
        expect(await pointsAccount(h.app.db, buyers.paid)).toEqual(points.paid);
        expect(await couponState(h, buyers.pending, pendingCoupon)).toBe('locked');
        expect(await couponState(h, buyers.cancelled, cancelledCoupon)).toBe('available');
        const partlyRefunds = await refundsOfOrder(h.app.shards.forOrderNo(orders.partly)!, orders.partly);
        expect(partlyRefunds.map((each) => each.status)).toEqual(['SUCCEEDED']);

        // The legacy order still in flight goes on: cancelled now, it gives back its stock, coupon and points.
        const held = await stockLedger(h.app, f.activitySkuIds[0]!);
        const cancelled = await h.http.inject({ method: 'POST', url: `/orders/${orders.pending}/cancel`, headers: auth(h, buyers.pending) });
        expect(cancelled.statusCode).toBe(200);
        await untilQuiet(h);
        expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ available: held.available + 2, reserved: held.reserved - 2 });
        expect(await couponState(h, buyers.pending, pendingCoupon)).toBe('available');
        expect(await pointsAccount(h.app.db, buyers.pending)).toMatchObject({ frozen: 0, balance: 500 });

        // A new checkout → pay → refund, with the coupon the legacy cancelled order gave back.
        const ledgerBefore = await stockLedger(h.app, f.activitySkuIds[0]!);
        const placed = await asBuyer(h, buyers.cancelled).checkout({ leaderId: f.leaderId, items: first, couponIds: [cancelledCoupon] });
        expect(placed.status, JSON.stringify(placed.body)).toBe(201);
        expect(placed.body.orders).toHaveLength(1);
        const orderNo = placed.body.orders[0].orderNo as string;
        // Legacy merchants have no sub-merchant id at any channel: they cannot be paid until the operator enters them.
        const method = h.app.payments.channels.get('wechat')!.methods[0]!;
        const refused = await h.http.inject({ method: 'POST', url: `/orders/${orderNo}/payments`, headers: auth(h, buyers.cancelled), payload: { channel: 'wechat', method } });
        expect(refused.statusCode).toBe(422);
        expect(refused.json()).toMatchObject({ code: 'merchant_not_payable' });
        const merchants = await h.app.db.selectFrom('merchants').select('id').execute();
        expect(merchants).toHaveLength(1);
        for (const channel of PAYEE_CHANNELS) {
          const url = `/admin/merchants/${merchants[0]!.id}/channel-accounts/${channel}`;
          const entered = await h.http.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${h.adminToken()}` }, payload: { subMerchantId: channelAccountsOf(merchants[0]!.id)[channel] } });
          expect(entered.statusCode, entered.body).toBe(200);
        }
        const payNo = await pay(h, buyers.cancelled, orderNo);
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'PAID', paymentNo: payNo });
        expect(await couponState(h, buyers.cancelled, cancelledCoupon)).toBe('used');
        expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toMatchObject({ available: ledgerBefore.available - 2, sold: ledgerBefore.sold + 2 });
        await refund(h, buyers.cancelled, orderNo);
        expect(await getOrder(h.app, orderNo)).toMatchObject({ status: 'REFUNDED', refunded_fen: placed.body.orders[0].payableFen });
        expect((await paymentsOfOrder(h.app.shards.forOrderNo(orderNo)!, orderNo)).map((each) => each.status)).toEqual(['REFUNDED']);
        expect(await stockLedger(h.app, f.activitySkuIds[0]!)).toEqual(expect.objectContaining({ available: ledgerBefore.available, sold: ledgerBefore.sold }));
      });
    });
  });
}
