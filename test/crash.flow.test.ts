import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMerchant, createProduct, insertActivity, PAYEE_CHANNELS, setMerchantChannelAccount } from '../src/catalog/index.ts';
import { createCouponTemplate, issueCoupons } from '../src/coupons/index.ts';
import { createStock } from '../src/inventory/index.ts';
import { createLeader } from '../src/leaders/index.ts';
import { grantPoints } from '../src/points/index.ts';
import { openDatabase } from '../src/platform/db/database.ts';
import type { TestDb as Db } from './support/db.ts';
import { migrateDatabases } from '../src/migrations.ts';
import { transaction } from '../src/platform/db/retry.ts';
import { signToken } from '../src/platform/http/tokens.ts';
import pino from 'pino';
import { createApp } from '../src/app.ts';
import { runReconcilePass } from '../src/consistency/index.ts';
import { channelSettingsForSandbox, sandboxKeysIn } from '../src/tools/sandbox/index.ts';
import { availableEngines, type TestDatabase } from './support/engines.ts';
import { channelAccountsOf, registerBuyers } from './support/harness.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * The crash test (issue 5), on PostgreSQL: the API and a worker run as child processes under a
 * load of checkouts, payments through the sandbox (some paid twice, on two channels), cancels
 * and abandoned orders, while one or the other is killed with SIGKILL at random moments and
 * restarted. Afterwards the invariants must hold: every payment the channel took is either
 * what paid its order or refunded in full; every SKU's ledger balances and matches its
 * reservations; no coupon is both used and available; every effect happened once; the outbox
 * is empty.
 */
const postgres = availableEngines().find((e) => e.name === 'postgres');
const KILLS = 10;
const BUYERS = 16;
const SECRET = 'crash-secret-of-the-crash-test-32b';
const PAYMENT_TIMEOUT_MS = 4_000;
const CHECKOUT_LEASE_MS = 5_000;
const QUIET_DEADLINE_MS = 150_000;
/** The API's port, chosen free by the OS in beforeAll (a random one once landed on NATS's 4222). */
let BASE_PORT = 0;
const CHANNELS = ['alipay', 'wechat'] as const;

/** A port nothing listens on now: the OS picks it for a moment's listener. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);

/** One child process of the platform, started again after each kill. */
class Process {
  child: ChildProcess | undefined;
  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    /** The API is ready when /health answers on this port; the worker when it says it runs. */
    private readonly port: number | undefined,
    private readonly readyPath = '/health',
  ) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, ['bin/tuangou.mjs', ...this.args], { env: { ...process.env, ...this.env, PORT: String(this.port ?? 0), SANDBOX_PORT: String(this.port ?? 0) }, stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    let said = '';
    child.stdout!.on('data', (chunk) => (said = (said + String(chunk)).slice(-1000)));
    for (let i = 0; i < 200 && child.exitCode === null; i++) {
      if (this.port === undefined) {
        if (said.includes('tuangou worker:')) return;
      } else {
        try {
          if ((await fetch(`http://127.0.0.1:${this.port}${this.readyPath}`)).ok) return;
        } catch {}
      }
      await sleep(100);
    }
    throw new Error(`${this.name} did not start`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * The channels, played by `tuangou sandbox` in a process of its own (as a real channel is its own
 * service): the API's and the worker's crashes cannot take its trades with them. Driven over its
 * control routes, as the cashier page and a test would.
 */
class RemoteSandbox {
  readonly url: string;
  private faultChange: Promise<unknown> = Promise.resolve();
  constructor(readonly process: Process, port: number) {
    this.url = `http://127.0.0.1:${port}`;
  }
  /** The buyer's Pay click; true when the channel took the money. */
  async pay(channel: string, payNo: string): Promise<boolean> {
    const response = await fetch(`${this.url}/sandbox/cashier/${channel}/${payNo}/pay`, { method: 'POST' });
    return response.ok && ((await response.json()) as { paid_at_ms?: number }).paid_at_ms !== undefined;
  }
  /** One more close that leaves the trade payable (重复支付 needs the first trade to stay open). */
  keepNextCloseOpen(): Promise<unknown> {
    this.faultChange = this.faultChange.then(async () => {
      const faults = (await (await fetch(`${this.url}/sandbox/faults`)).json()) as { keepPayableOnClose: number };
      await fetch(`${this.url}/sandbox/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ keepPayableOnClose: faults.keepPayableOnClose + 1 }) });
    });
    return this.faultChange;
  }
  async trades(): Promise<Array<{ channel: string; payNo: string; paid_at_ms?: number; refunded_fen: number }>> {
    return ((await (await fetch(`${this.url}/sandbox/trades`)).json()) as { trades: Awaited<ReturnType<RemoteSandbox['trades']>> }).trades;
  }
}

describe.skipIf(!postgres)('crash test: SIGKILL the API and the worker under load (PostgreSQL)', () => {
  let database: TestDatabase;
  let db: Db;
  let sandbox: RemoteSandbox;
  let api: Process;
  let worker: Process;
  let activitySkuIds: number[] = [];
  let leaderId = 0;
  let dataDir = '';
  const couponOf = new Map<number, number>();

  beforeAll(async () => {
    database = await postgres!.createDatabase();
    db = await openDatabase(database.url);
    await migrateDatabases(db, [db]);
    const now = Date.now();
    const merchant = await createMerchant(db, { name: 'Crash Farm' }, now);
    // A marketplace merchant is paid into its own account at each channel: onboarded on all of them.
    const accounts = channelAccountsOf(merchant.id);
    await transaction(db, async (trx) => {
      for (const channel of PAYEE_CHANNELS) await setMerchantChannelAccount(trx, { merchantId: merchant.id, channel, subMerchantId: accounts[channel] }, now);
    });
    leaderId = (await createLeader(db, { name: 'Leader', community: 'Crash', address: 'Gate' }, now)).id;
    const product = await createProduct(db, { merchantId: merchant.id, title: 'Eggs', category: 'fresh', skus: [0, 1, 2].map((i) => ({ title: `box ${i}`, listPrice_fen: 2000, weight_g: 500 })) }, now);
    activitySkuIds = await transaction(db, async (trx) => {
      const a = await insertActivity(
        trx,
        { title: 'Crash sale', starts_at_ms: now - 60_000, ends_at_ms: now + 86_400_000, order_cutoff_at_ms: now + 86_400_000, pickupDate: '2026-12-31', inventoryMode: 'on_order' },
        product.skus.map((s, i) => ({ skuId: s.id, price_fen: 1000 + i * 100, purchaseLimit: null })),
        now,
      );
      for (const s of a.skus) await createStock(trx, s.id, 5_000, now);
      return a.skus.map((s) => s.id);
    });
    const template = await createCouponTemplate(
      db,
      { name: '2 off', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 200, threshold_fen: 0 }, validFrom: new Date(now - 60_000).toISOString(), validUntil: new Date(now + 86_400_000).toISOString(), perBuyerLimit: 5 },
      now,
    );
    await registerBuyers(db, Array.from({ length: BUYERS }, (_, b) => b + 1), now);
    for (let b = 1; b <= BUYERS; b++) {
      for (const { couponId } of (await issueCoupons(db, template.id, [b, b, b], now)).issued) if (!couponOf.has(b)) couponOf.set(b, couponId);
      await grantPoints(db, b, 3_000, `crash-${b}`, 'crash test', now);
    }

    dataDir = mkdtempSync(join(tmpdir(), 'tuangou-crash-'));
    // Retries compressed a hundredfold: WeChat's 15 s is 150 ms, Alipay's 4 min is 2.4 s.
    sandboxKeysIn(dataDir);
    BASE_PORT = await freePort();
    const sandboxPort = await freePort();
    sandbox = new RemoteSandbox(new Process('sandbox', ['sandbox'], { TUANGOU_DATA_DIR: dataDir, SANDBOX_RETRY_SCALE: '0.01', LOG_LEVEL: 'silent' }, sandboxPort, '/sandbox'), sandboxPort);
    await sandbox.process.start();
    const env = {
      DATABASE_URL: database.url,
      ORDER_SHARD_URLS: '',
      TOKEN_SECRET: SECRET,
      TUANGOU_DATA_DIR: dataDir,
      SANDBOX_URL: sandbox.url,
      PUBLIC_URL: `http://127.0.0.1:${BASE_PORT}`,
      ORDER_PAYMENT_TIMEOUT_MS: String(PAYMENT_TIMEOUT_MS),
      // A killed checkout's holds are released after its lease (and a margin): seconds here, not minutes.
      TUANGOU_CHECKOUT_LEASE_MS: String(CHECKOUT_LEASE_MS),
      // Each buyer checks out as fast as the API answers, and leaves some orders to time out.
      CHECKOUT_RATE_LIMIT: '1000000',
      CHECKOUT_MAX_OPEN_ORDERS_PER_BUYER: '1000000',
      CHECKOUT_MAX_UNPAID_UNITS_PER_SKU: '1000000',
      LOG_LEVEL: 'silent',
    };
    // The API serves requests and notifications only; the worker runs the relay, the jobs and the event consumers.
    api = new Process('api', ['start', '--no-demo', '--no-worker'], env, BASE_PORT);
    worker = new Process('worker', ['worker'], env, undefined);
    await api.start();
    await worker.start();
  }, 120_000);

  afterAll(async () => {
    await api?.kill();
    await worker?.kill();
    await sandbox?.process.kill();
    await db?.destroy();
    await database?.drop();
  });

  const tokens = Array.from({ length: BUYERS }, (_, b) => signToken(SECRET, { role: 'buyer', subject: String(b + 1) }, Date.now()));

  /** A request to the API that outlives the API being killed: retried until it answers. */
  async function call(buyer: number, method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }> {
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${BASE_PORT}${path}`, {
          method,
          headers: { authorization: `Bearer ${tokens[buyer - 1]}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...(key && { 'idempotency-key': key }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        if (response.status >= 500 || response.status === 503) {
          await sleep(200);
          continue;
        }
        return { status: response.status, body: await response.json() };
      } catch {
        await sleep(200);
      }
    }
    throw new Error(`${method} ${path} never answered`);
  }

  async function buyerLoop(buyer: number, running: () => boolean, stats: Record<string, number>): Promise<void> {
    let n = 0;
    while (running()) {
      const items = activitySkuIds.filter(() => Math.random() < 0.6).map((id) => ({ activitySkuId: id, quantity: 1 + rand(2) }));
      if (items.length === 0) items.push({ activitySkuId: activitySkuIds[rand(activitySkuIds.length)]!, quantity: 1 });
      const extra = rand(4) === 0 ? { couponIds: [couponOf.get(buyer)!] } : rand(4) === 0 ? { points: 200 } : {};
      const placed = await call(buyer, 'POST', '/orders', { leaderId, items, ...extra }, `crash-${buyer}-${n++}`);
      if (placed.status !== 201) {
        stats[`checkout_${placed.body.code}`] = (stats[`checkout_${placed.body.code}`] ?? 0) + 1;
        continue;
      }
      stats.orders = (stats.orders ?? 0) + 1;
      // One merchant: the checkout is one order.
      expect(placed.body.orders).toHaveLength(1);
      const orderNo = placed.body.orders[0].orderNo as string;
      const roll = rand(20);
      if (roll < 3) {
        await call(buyer, 'POST', `/orders/${orderNo}/cancel`);
        stats.cancels = (stats.cancels ?? 0) + 1;
      } else if (roll < 6) {
        stats.abandoned = (stats.abandoned ?? 0) + 1; // left to time out
      } else {
        const first = CHANNELS[rand(2)]!;
        const started = await call(buyer, 'POST', `/orders/${orderNo}/payments`, { channel: first, method: 'qr' });
        if (started.status !== 201) continue;
        if (roll < 8) {
          // 重复支付: the buyer opens the other channel too and pays both.
          await sandbox.keepNextCloseOpen();
          const other = await call(buyer, 'POST', `/orders/${orderNo}/payments`, { channel: first === 'alipay' ? 'wechat' : 'alipay', method: 'qr' });
          // Counted only when the channel really took the money (a refused Pay click is not a payment).
          if (other.status === 201 && (await sandbox.pay(other.body.channel, other.body.payNo))) stats.second_payments = (stats.second_payments ?? 0) + 1;
        }
        if (await sandbox.pay(first, started.body.payNo)) stats.paid = (stats.paid ?? 0) + 1;
      }
    }
  }

  it(
    `every invariant holds after ${KILLS} SIGKILLs`,
    async () => {
      const stats: Record<string, number> = {};
      let loading = true;
      let failed = false;
      const loops = Array.from({ length: BUYERS }, (_, b) =>
        buyerLoop(b + 1, () => loading && !failed, stats).catch((error) => {
          failed = true;
          throw error;
        }),
      );
      // Kill one of the two at a random moment, start it again, ten times over.
      const killed: string[] = [];
      for (let k = 0; k < KILLS && !failed; k++) {
        await sleep(1_000 + rand(2_000));
        const victim = rand(2) === 0 ? api : worker;
        await victim.kill();
        killed.push(victim.name);
        await sleep(rand(500));
        await victim.start();
      }
      // Stop the load: each buyer finishes the step it is in.
      loading = false;
      for (const result of await Promise.allSettled(loops)) if (result.status === 'rejected') throw result.reason;
      expect(killed).toHaveLength(KILLS);
      expect(stats.orders ?? 0).toBeGreaterThan(20);

      await untilNothingInFlight();
      // The consistency reconciler looks over what the crashes left: nothing may fail, and whatever it repairs is then checked too.
      const checker = await createApp(
        { databaseUrl: database.url, orderShardUrls: [database.url], port: 0, host: '127.0.0.1', dataDir, tokenSecret: SECRET, paymentTimeout_ms: PAYMENT_TIMEOUT_MS, nodeId: 9999 },
        { migrate: false, channels: channelSettingsForSandbox(sandboxKeysIn(dataDir), sandbox.url), reconcileInterval_ms: 0, log: pino({ level: 'silent' }) },
      );
      try {
        const pass = await runReconcilePass(checker, checker.payments);
        expect(pass.failures).toEqual([]);
        stats.reconciler_repairs = pass.repairs.length;
        await untilQuiet(checker);
      } finally {
        await checker.close();
      }
      await untilNothingInFlight();
      await checkInvariants();
      // The load happened: invariants over no payments, no double payments, no cancels or no
      // timeouts would hold vacuously. Counted in the books, not by what the loops tried.
      const happened = await loadThatHappened();
      expect(happened, JSON.stringify({ happened, stats })).toEqual({ payments: expect.any(Number), doublePayments: expect.any(Number), cancels: expect.any(Number), timeouts: expect.any(Number) });
      for (const [what, count] of Object.entries(happened)) expect(count, `${what} in the crash test's load`).toBeGreaterThan(0);
      console.log(`[crash] kills ${killed.join(",")}; happened ${JSON.stringify(happened)}; ${JSON.stringify(stats)}`);
    },
    400_000,
  );

  /** Waits until nothing is in flight: no outbox rows, no open payment the channel took, no unfinished refund, no unpaid order past its time. */
  async function untilNothingInFlight(): Promise<void> {
    const deadline = Date.now() + QUIET_DEADLINE_MS;
    let last = '';
    while (Date.now() < deadline) {
      const outbox = await db.selectFrom('outbox_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      const pending = await db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'PENDING_PAYMENT').executeTakeFirstOrThrow();
      const refunds = await db.selectFrom('payment_refunds').select((eb) => eb.fn.countAll<number>().as('n')).where('status', 'in', ['REQUESTED', 'PROCESSING']).executeTakeFirstOrThrow();
      const open = await db.selectFrom('payment_orders').select(['pay_no', 'channel']).where('status', 'in', ['CREATED', 'CLOSED', 'FAILED']).execute();
      const taken = new Set((await sandbox.trades()).filter((t) => t.paid_at_ms !== undefined).map((t) => `${t.channel}:${t.payNo}`));
      const takenButOpen = open.filter((p) => taken.has(`${p.channel}:${p.pay_no}`)).length;
      // Checkouts killed between holding stock, coupons or points and writing their order: their verification is due after the lease.
      const verifications = await db.selectFrom('jobs').select('payload').where('kind', '=', 'checkout.verify-reservation').execute();
      const placed = new Set((await db.selectFrom('checkouts').select('checkout_no').execute()).map((o) => o.checkout_no));
      const crashedCheckouts = verifications.filter((j) => !placed.has(JSON.parse(j.payload).checkoutNo)).length;
      const undecided = await db.selectFrom('payment_orders').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '!=', 'CREATED').where('status', '!=', 'CLOSED').where('status', '!=', 'FAILED').where('disposition', 'is', null).executeTakeFirstOrThrow();
      last = JSON.stringify({ outbox: Number(outbox.n), pending: Number(pending.n), refunds: Number(refunds.n), takenButOpen, undecided: Number(undecided.n), crashedCheckouts });
      if (last === JSON.stringify({ outbox: 0, pending: 0, refunds: 0, takenButOpen: 0, undecided: 0, crashedCheckouts: 0 })) return;
      await sleep(1_000);
    }
    const stuck = await db.selectFrom('outbox_events').select(['event_type', 'attempts', 'last_error', 'dead_at_ms', 'locked_by', 'locked_until_ms', 'due_at_ms']).limit(5).execute();
    throw new Error(`was not quiet: ${last}; outbox sample ${JSON.stringify(stuck)}`);
  }

  async function loadThatHappened(): Promise<{ payments: number; doublePayments: number; cancels: number; timeouts: number }> {
    const payments = await db.selectFrom('payment_orders').select(['disposition']).where('status', 'in', ['SUCCEEDED', 'PARTLY_REFUNDED', 'REFUNDED']).execute();
    const cancelled = await db.selectFrom('orders').select(['cancel_reason']).where('status', '=', 'CANCELLED').execute();
    return {
      payments: payments.filter((p) => p.disposition === 'applied').length,
      doublePayments: payments.filter((p) => p.disposition === 'duplicate_payment').length,
      cancels: cancelled.filter((o) => o.cancel_reason === 'buyer_cancelled').length,
      timeouts: cancelled.filter((o) => o.cancel_reason === 'payment_timeout').length,
    };
  }

  async function checkInvariants(): Promise<void> {
    // Every payment the channel took paid its order, or was refunded in full, once.
    const payments = await db.selectFrom('payment_orders').selectAll().execute();
    const orders = new Map((await db.selectFrom('orders').selectAll().execute()).map((o) => [o.order_no, o]));
    // Coupons and points are held under the checkout's number; one merchant, so each checkout is one order.
    const ofCheckout = new Map([...orders.values()].map((o) => [o.checkout_no, o]));
    expect(ofCheckout.size).toBe(orders.size);
    const refunds = await db.selectFrom('payment_refunds').selectAll().execute();
    const trades = await sandbox.trades();
    for (const trade of trades) {
      if (trade.paid_at_ms === undefined) continue;
      const payment = payments.find((p) => p.pay_no === trade.payNo);
      expect(payment, `channel took ${trade.payNo} but we have no payment`).toBeDefined();
      expect(['SUCCEEDED', 'PARTLY_REFUNDED', 'REFUNDED']).toContain(payment!.status);
      const order = orders.get(payment!.order_no)!;
      if (payment!.disposition === 'applied') {
        expect(order.status).toBe('PAID');
        expect(order.payment_no).toBe(payment!.pay_no);
        expect(trade.refunded_fen).toBe(0);
      } else {
        expect(['duplicate_payment', 'order_cancelled']).toContain(payment!.disposition);
        const back = refunds.filter((r) => r.pay_no === payment!.pay_no);
        expect(back.map((r) => [r.reason, r.status, Number(r.amount_fen)])).toEqual([[payment!.disposition, 'SUCCEEDED', Number(payment!.amount_fen)]]);
        expect(trade.refunded_fen).toBe(Number(payment!.amount_fen));
      }
    }
    // No order is paid without money, and none by two payments.
    for (const order of orders.values()) {
      const applied = payments.filter((p) => p.order_no === order.order_no && p.disposition === 'applied');
      expect(applied.length).toBe(order.status === 'PAID' ? 1 : 0);
      if (order.status === 'PAID') expect(trades.find((t) => t.channel === applied[0]!.channel && t.payNo === applied[0]!.pay_no)?.paid_at_ms).toBeDefined();
    }
    // Every SKU's ledger balances and agrees with its reservations.
    for (const stock of await db.selectFrom('stock').selectAll().execute()) {
      expect(Number(stock.available) + Number(stock.reserved) + Number(stock.sold)).toBe(Number(stock.total));
      const rows = await db.selectFrom('stock_reservations').select(['state', 'quantity']).where('activity_sku_id', '=', stock.activity_sku_id).execute();
      const sum = (state: string) => rows.filter((r) => r.state === state).reduce((s, r) => s + Number(r.quantity), 0);
      expect(Number(stock.reserved)).toBe(sum('reserved'));
      expect(Number(stock.sold)).toBe(sum('confirmed'));
    }
    const paidUnits = new Map<number, number>();
    for (const line of await db.selectFrom('order_lines').innerJoin('orders', 'orders.order_no', 'order_lines.order_no').select(['activity_sku_id', 'quantity']).where('orders.status', '=', 'PAID').execute()) {
      paidUnits.set(line.activity_sku_id, (paidUnits.get(line.activity_sku_id) ?? 0) + Number(line.quantity));
    }
    for (const stock of await db.selectFrom('stock').selectAll().execute()) expect(Number(stock.sold)).toBe(paidUnits.get(stock.activity_sku_id) ?? 0);
    // No coupon is both used and available: used ones belong to paid orders, the rest to none.
    for (const coupon of await db.selectFrom('coupons').selectAll().execute()) {
      if (coupon.state === 'used') expect(ofCheckout.get(coupon.order_no!)?.status, `coupon ${coupon.id} used by ${coupon.order_no}`).toBe('PAID');
      else expect([coupon.state, coupon.order_no], `coupon ${coupon.id}`).toEqual(['available', null]);
    }
    // Points: each checkout's freeze was deducted (paid) or unfrozen (cancelled), exactly once.
    const journal = await db.selectFrom('points_journal').selectAll().execute();
    for (const order of orders.values()) {
      if (Number(order.points_used) === 0) continue;
      const moves = journal.filter((j) => j.order_no === order.checkout_no).map((j) => j.movement).sort();
      expect(moves).toEqual(order.status === 'PAID' ? ['deduct', 'freeze'] : ['freeze', 'unfreeze']);
    }
    for (const account of await db.selectFrom('points_accounts').selectAll().execute()) expect(Number(account.frozen), `points still frozen for buyer ${account.buyer_id}`).toBe(0);
    // Nothing waits in the outbox; no job or event was given up on.
    expect(await db.selectFrom('outbox_events').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('jobs').selectAll().where('dead_at_ms', 'is not', null).execute()).toEqual([]);
  }
});
