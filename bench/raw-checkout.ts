import SQLite from 'better-sqlite3';
import pg from 'pg';

/**
 * The raw reference: the row writes of one checkout (and of relaying its event), done
 * straight through the driver with prepared statements — no HTTP, no validation, no Kysely.
 * What the application adds on top is the price of being an application.
 *   T0 claim key · T1 reserve stock + verification job · T2 counter + order + line + event + job + key response
 *   T3 relay: lock event, clear cart lines, delete event
 */
export interface RawTarget {
  run(i: number): Promise<void>;
  close(): Promise<void>;
}

const CHECKOUT = `insert into checkouts (checkout_no, buyer_id, leader_id, currency, order_count, items_total_fen, discount_total_fen, shipping_fen, payable_fen, coupon_ids, points_used, created_at_ms, expires_at_ms)
  values (?, ?, 1, 'CNY', 1, 990, 0, 0, 990, null, 0, ?, ?)`;
// The raw reference's one order takes its checkout's number (the two live in different tables).
const ORDER = `insert into orders (order_no, checkout_no, merchant_id, buyer_id, leader_id, status, version, currency, items_total_fen, discount_total_fen, shipping_fen, payable_fen, remark, payment_no, paid_fen, cancel_reason, created_at_ms, updated_at_ms, expires_at_ms, paid_at_ms, cancelled_at_ms)
  values (?, ?, 1, ?, 1, 'PENDING_PAYMENT', 0, 'CNY', 990, 0, 0, 990, null, null, null, null, ?, ?, ?, null, null)`;
const LINE = `insert into order_lines (order_no, line_no, activity_id, activity_sku_id, sku_id, merchant_id, title, inventory_mode, unit_price_fen, quantity, subtotal_fen, discount_fen, shipping_fen, payable_fen, discounts, price_segments)
  values (?, 1, 1, ?, 1, 1, 'raw', 'on_order', 990, 1, 990, 0, 0, 990, null, '[{"quantity":1,"unitPrice_fen":990,"basis":"activity"}]')`;
const EVENT = `insert into outbox_events (event_id, event_type, aggregate_id, payload, created_at_ms, due_at_ms, locked_until_ms, locked_by, attempts, last_error, dead_at_ms)
  values (?, 'order.placed', ?, '{}', ?, ?, 0, null, 0, null, null)`;
const JOB = `insert into jobs (kind, job_key, payload, created_at_ms, due_at_ms, locked_until_ms, locked_by, attempts, max_attempts, last_error, dead_at_ms)
  values ('order.expire', ?, '{}', ?, ?, 0, null, 0, 20, null, null)`;

const orderNo = (prefix: string, i: number) => `${prefix}${String(i).padStart(12, '0')}`.slice(0, 23).padEnd(23, '0');

export function rawSqlite(path: string, activitySkuId: number): RawTarget {
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const s = {
    key: db.prepare(`insert into idempotency_keys (buyer_id, idem_key, request_hash, checkout_no, state, response_status, response_body, locked_until_ms, created_at_ms) values (?, ?, 'h', ?, 'in_progress', null, null, ?, ?) on conflict do nothing`),
    reserve: db.prepare(`update stock set available = available - 1, reserved = reserved + 1, updated_at_ms = ? where activity_sku_id = ? and available >= 1`),
    reservation: db.prepare(`insert into stock_reservations (order_no, activity_sku_id, quantity, state, created_at_ms, updated_at_ms) values (?, ?, 1, 'reserved', ?, ?)`),
    counter0: db.prepare(`insert into purchase_counters (buyer_id, activity_sku_id, quantity) values (?, ?, 0) on conflict do nothing`),
    counter: db.prepare(`update purchase_counters set quantity = quantity + 1 where buyer_id = ? and activity_sku_id = ?`),
    checkout: db.prepare(CHECKOUT),
    order: db.prepare(ORDER),
    line: db.prepare(LINE),
    event: db.prepare(EVENT),
    job: db.prepare(JOB),
    done: db.prepare(`update idempotency_keys set state = 'completed', response_status = 201, response_body = '{}' where buyer_id = ? and idem_key = ?`),
    lock: db.prepare(`update outbox_events set locked_until_ms = ?, locked_by = 'raw', attempts = attempts + 1 where aggregate_id = ?`),
    cart: db.prepare(`delete from cart_lines where buyer_id = ? and activity_sku_id = ?`),
    unevent: db.prepare(`delete from outbox_events where aggregate_id = ?`),
  };
  const t1 = db.transaction((no: string, now: number) => {
    s.reservation.run(no, activitySkuId, now, now);
    s.reserve.run(now, activitySkuId);
    s.job.run(`checkout.verify-reservation:${no}`, now, now + 180_000);
  });
  const t2 = db.transaction((no: string, buyer: number, key: string, now: number) => {
    s.counter0.run(buyer, activitySkuId);
    s.counter.run(buyer, activitySkuId);
    s.checkout.run(no, buyer, now, now + 900_000);
    s.order.run(no, no, buyer, now, now, now + 900_000);
    s.line.run(no, activitySkuId);
    s.event.run(`raw-${no}`, no, now, now);
    s.job.run(`order.expire:${no}`, now, now + 900_000);
    s.done.run(buyer, key);
  });
  const t3 = db.transaction((no: string, buyer: number, now: number) => {
    s.lock.run(now + 30_000, no);
    s.cart.run(buyer, activitySkuId);
    s.unevent.run(no);
  });
  return {
    async run(i) {
      const now = Date.now();
      const no = orderNo('9', i);
      const buyer = 1 + (i % 100_000);
      const key = `raw-${i}`;
      s.key.run(buyer, key, no, now + 30_000, now);
      t1(no, now);
      t2(no, buyer, key, now);
      t3(no, buyer, now);
    },
    async close() {
      db.close();
    },
  };
}

export function rawPostgres(url: string, activitySkuId: number, connections: number): RawTarget {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  pool.on('error', (error) => console.error(`raw pool: ${error.message}`));
  const n = (sql: string) => {
    let i = 0;
    return sql.replace(/\?/g, () => `$${++i}`);
  };
  const tx = async (work: (c: pg.PoolClient) => Promise<void>) => {
    const c = await pool.connect();
    try {
      await c.query('begin');
      await work(c);
      await c.query('commit');
    } catch (e) {
      await c.query('rollback');
      throw e;
    } finally {
      c.release();
    }
  };
  return {
    async run(i) {
      const now = Date.now();
      const no = orderNo('8', i);
      const buyer = 1 + (i % 100_000);
      const key = `raw-${i}`;
      await pool.query(n(`insert into idempotency_keys (buyer_id, idem_key, request_hash, checkout_no, state, response_status, response_body, locked_until_ms, created_at_ms) values (?, ?, 'h', ?, 'in_progress', null, null, ?, ?) on conflict do nothing`), [buyer, key, no, now + 30_000, now]);
      await tx(async (c) => {
        await c.query(n(`insert into stock_reservations (order_no, activity_sku_id, quantity, state, created_at_ms, updated_at_ms) values (?, ?, 1, 'reserved', ?, ?)`), [no, activitySkuId, now, now]);
        await c.query(n(`update stock set available = available - 1, reserved = reserved + 1, updated_at_ms = ? where activity_sku_id = ? and available >= 1`), [now, activitySkuId]);
        await c.query(n(JOB), [`checkout.verify-reservation:${no}`, now, now + 180_000]);
      });
      await tx(async (c) => {
        await c.query(n(`insert into purchase_counters (buyer_id, activity_sku_id, quantity) values (?, ?, 0) on conflict do nothing`), [buyer, activitySkuId]);
        await c.query(n(`update purchase_counters set quantity = quantity + 1 where buyer_id = ? and activity_sku_id = ?`), [buyer, activitySkuId]);
        await c.query(n(CHECKOUT), [no, buyer, now, now + 900_000]);
        await c.query(n(ORDER), [no, no, buyer, now, now, now + 900_000]);
        await c.query(n(LINE), [no, activitySkuId]);
        await c.query(n(EVENT), [`raw-${no}`, no, now, now]);
        await c.query(n(JOB), [`order.expire:${no}`, now, now + 900_000]);
        await c.query(n(`update idempotency_keys set state = 'completed', response_status = 201, response_body = '{}' where buyer_id = ? and idem_key = ?`), [buyer, key]);
      });
      await tx(async (c) => {
        await c.query(n(`update outbox_events set locked_until_ms = ?, locked_by = 'raw', attempts = attempts + 1 where aggregate_id = ?`), [now + 30_000, no]);
        await c.query(n(`delete from cart_lines where buyer_id = ? and activity_sku_id = ?`), [buyer, activitySkuId]);
        await c.query(n(`delete from outbox_events where aggregate_id = ?`), [no]);
      });
    },
    async close() {
      await pool.end();
    },
  };
}
