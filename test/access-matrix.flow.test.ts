import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuyer } from '../src/buyers/index.ts';
import { signToken, DEFAULT_TOKEN_TTL_S, type Principal } from '../src/platform/http/tokens.ts';
import { availableEngines } from './support/engines.ts';
import { newKey, seedActivity, signClaims, startHarness, type CatalogFixture, type Harness } from './support/harness.ts';
import { readOperations, urlOf, validSample, type Operation } from './support/openapi.ts';
import { asBuyer, payAtCashier } from './support/client.ts';
import { untilQuiet } from './support/quiet.ts';

/**
 * Who may call what, for every operation of the OpenAPI document: each is called with no token,
 * bad tokens and each role, on its owner's resources and on another owner's, and the answer's
 * status must be the one this table says. An operation in the document without a row fails the
 * test, so a new endpoint cannot ship without someone deciding who may call it.
 *
 * The columns:
 *  anonymous          no token
 *  badSignature       an admin token signed with another secret
 *  expired            an admin token past its lifetime
 *  tampered           a valid admin token with the last character of its signature changed
 *  aliasSubject       a buyer token whose subject is "0x…", the owner's id in hexadecimal
 *  anonymousBadInput  no token and a bad body (or, without one, a bad path parameter): 401 before any 400
 *  merchant, leader   tokens of those roles (subjects 1)
 *  buyer              the owner of the order or payment the path names, or just a buyer
 *  otherBuyer         another buyer on the owner's order or payment (only where the path names one): 404, never theirs
 *  admin              the platform's admin
 *
 * Requests carry a valid body (the smallest the schema allows) and a fresh Idempotency-Key; the
 * checkout, order and payment are buyer A's paid checkout of one order, the cart line one in A's cart. Answers are
 * compared by status code.
 */

type Column = 'anonymous' | 'badSignature' | 'expired' | 'tampered' | 'aliasSubject' | 'anonymousBadInput' | 'merchant' | 'leader' | 'buyer' | 'otherBuyer' | 'admin';
type Row = Partial<Record<Column, number>>;

const COLUMNS: Column[] = ['anonymous', 'badSignature', 'expired', 'tampered', 'aliasSubject', 'anonymousBadInput', 'merchant', 'leader', 'buyer', 'otherBuyer', 'admin'];

/** Path parameters that name a buyer's own resource (a checkout, an order, a payment, a line of the cart): calls on another buyer's must answer 404. */
const OWNED_PARAMETERS = new Set(['checkoutNo', 'orderNo', 'payNo', 'activitySkuId']);

// Row builders for the common shapes; the numbers that differ are written out in each row.
// A subject that is not an id in canonical decimal ("0x1") makes the token invalid: 401 on every protected route.
const tokens = { anonymous: 401, badSignature: 401, expired: 401, tampered: 401, aliasSubject: 401 };
/** Public: anyone, any token (a bad token is ignored, not refused). */
const open = (ok: number, badInput?: number): Row => ({
  anonymous: ok,
  badSignature: ok,
  expired: ok,
  tampered: ok,
  aliasSubject: ok,
  ...(badInput !== undefined && { anonymousBadInput: badInput }),
  merchant: ok,
  leader: ok,
  buyer: ok,
  admin: ok,
});
const adminOnly = (admin: number, options: { badInput?: boolean } = {}): Row => ({
  ...tokens,
  ...(options.badInput !== false && { anonymousBadInput: 401 }),
  merchant: 403,
  leader: 403,
  buyer: 403,
  admin,
});
const buyerOnly = (buyer: number, options: { badInput?: boolean; otherBuyer?: number } = {}): Row => ({
  ...tokens,
  ...(options.badInput !== false && { anonymousBadInput: 401 }),
  merchant: 403,
  leader: 403,
  buyer,
  ...(options.otherBuyer !== undefined && { otherBuyer: options.otherBuyer }),
  admin: 403,
});

const EXPECTED: Record<string, Row> = {
  // catalog (public)
  'GET /activities': open(200),
  'GET /activities/{id}': open(200, 400),
  'GET /leaders': open(200),
  // admin: catalog
  'POST /admin/merchants': adminOnly(201),
  'GET /admin/merchants': adminOnly(200, { badInput: false }),
  'PATCH /admin/merchants/{merchantId}': adminOnly(200),
  'GET /admin/merchants/{merchantId}/channel-accounts': adminOnly(200),
  'PUT /admin/merchants/{merchantId}/channel-accounts/{channel}': adminOnly(200),
  // Removing an account the merchant has not is harmless, so the admin's answer does not depend on order.
  'DELETE /admin/merchants/{merchantId}/channel-accounts/{channel}': adminOnly(200),
  'POST /admin/leaders': adminOnly(201),
  'POST /admin/products': adminOnly(201),
  'PATCH /admin/skus/{id}': adminOnly(200),
  'POST /admin/activities': adminOnly(201),
  'PATCH /admin/activities/{id}': adminOnly(200),
  'POST /admin/activity-skus/{id}/stock-adjustments': adminOnly(201),
  'GET /admin/activity-skus/{id}/stock-adjustments': adminOnly(200),
  'PATCH /admin/activity-skus/{id}': adminOnly(200),
  // the buyer's cart
  'GET /cart': buyerOnly(200, { badInput: false }),
  'POST /cart/lines': buyerOnly(200),
  'PATCH /cart/lines/{activitySkuId}': buyerOnly(200, { otherBuyer: 404 }),
  'DELETE /cart/lines/{activitySkuId}': buyerOnly(200, { otherBuyer: 404 }),
  'POST /cart/selection': buyerOnly(200),
  'POST /cart/preview': buyerOnly(200),
  // orders
  'POST /orders': buyerOnly(201),
  'GET /orders': buyerOnly(200, { badInput: false }),
  'GET /orders/{orderNo}': { ...buyerOnly(200, { otherBuyer: 404 }), admin: 200 },
  // The order is paid and its price has not dropped: the owner is told why not, the other buyer only 404.
  'POST /orders/{orderNo}/lines/{lineNo}/price-protection': buyerOnly(409, { otherBuyer: 404 }),
  'POST /orders/{orderNo}/cancel': buyerOnly(409, { otherBuyer: 404 }),
  // checkouts: the buyer's submission, one order per merchant; read, cancelled and paid as one
  'GET /checkouts': buyerOnly(200, { badInput: false }),
  'GET /checkouts/{checkoutNo}': { ...buyerOnly(200, { otherBuyer: 404 }), admin: 200 },
  // The checkout is paid: it can no longer be cancelled, nor paid again.
  'POST /checkouts/{checkoutNo}/cancel': buyerOnly(409, { otherBuyer: 404 }),
  'POST /checkouts/{checkoutNo}/payments': buyerOnly(409, { otherBuyer: 404 }),
  // The channels that can pay the checkout: the buyer's own question about the buyer's own checkout.
  'GET /checkouts/{checkoutNo}/cashier': buyerOnly(200, { otherBuyer: 404 }),
  // payments
  'POST /orders/{orderNo}/payments': buyerOnly(409, { otherBuyer: 404 }),
  'GET /orders/{orderNo}/payments': { ...buyerOnly(200, { otherBuyer: 404 }), admin: 200 },
  'GET /payments/channels': open(200),
  'GET /payments/{payNo}': { ...buyerOnly(200, { otherBuyer: 404 }), admin: 200 },
  'POST /orders/{orderNo}/refunds': buyerOnly(201, { otherBuyer: 404 }),
  'POST /admin/orders/{orderNo}/refunds': { ...adminOnly(201), otherBuyer: 403 },
  // The payment paid its order: there is nothing unapplied to refund.
  'POST /admin/payments/{payNo}/refunds': { ...adminOnly(409), otherBuyer: 403 },
  'GET /admin/reconciliations': adminOnly(200, { badInput: false }),
  'GET /admin/reconciliations/{id}': adminOnly(404),
  // promotions, coupons, points
  'GET /admin/promotions': adminOnly(200, { badInput: false }),
  'POST /admin/promotions': adminOnly(201),
  'PUT /admin/promotions/{id}': adminOnly(200),
  'POST /admin/shipping-rules': adminOnly(201),
  'GET /admin/coupon-templates': adminOnly(200, { badInput: false }),
  'POST /admin/coupon-templates': adminOnly(201),
  'POST /admin/coupon-templates/{id}/issue': adminOnly(200),
  'GET /coupons': buyerOnly(200, { badInput: false }),
  'GET /points': buyerOnly(200, { badInput: false }),
  'POST /admin/points/grants': adminOnly(201),
  // events, consistency
  'GET /admin/dead-letters': adminOnly(200, { badInput: false }),
  'POST /admin/dead-letters/{id}/replay': adminOnly(404),
  'GET /admin/consistency/repairs': adminOnly(200, { badInput: false }),
  // access
  'POST /admin/token-revocations': adminOnly(201),
  // A channel's notification carries no token: it is verified by its signature, and answered in the
  // channel's protocol (Alipay: 200 "failure" for a notification that does not verify).
  'POST /payments/notify/{channel}': open(200, 400),
};

/**
 * Cells that answer wrongly today, each a numbered defect of issue 10 being fixed on another
 * branch. The table above holds the right answer; while a defect is listed, its cells may also
 * answer what they answer today (`today`: a status, or "as" another column of the same row).
 * Remove an entry when its fix is merged.
 */
const fixedElsewhere: { issue10Item: number; what: string; column: Column; keys?: string[]; today: number | { as: Column } }[] = [
];

/**
 * The token with the last character of its signature changed to one that decodes to the same
 * bytes (the last base64url character of 32 bytes carries 2 unused bits): not the token that was signed.
 */
function tamperLastCharacter(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(token[token.length - 1]!);
  return token.slice(0, -1) + alphabet[last ^ 1];
}

interface Owned {
  buyerId: number;
  checkoutNo: string;
  orderNo: string;
  payNo: string;
  activitySkuId: number;
}

for (const engine of availableEngines()) {
  describe(`who may call what, for every operation of the OpenAPI document, on ${engine.name}`, () => {
    let h: Harness;
    let catalog: CatalogFixture;
    let operations: Operation[];
    let otherBuyer: number;

    beforeAll(async () => {
      h = await startHarness(engine, { sandbox: {} });
      catalog = await seedActivity(h.app, { skus: [{ price_fen: 1200, stock: 100_000 }] });
      otherBuyer = (await createBuyer(h.app.db, { name: 'Buyer B' }, h.app.now())).id;
      operations = await readOperations(h);
    });
    afterAll(async () => h?.close());

    const freshBuyer = async () => (await createBuyer(h.app.db, { name: 'Buyer' }, h.app.now())).id;

    /** A paid order of a buyer of its own, the payment that paid it, and a line in the buyer's cart. */
    async function paidOrder(): Promise<Owned> {
      const buyerId = await freshBuyer();
      const placed = await asBuyer(h, buyerId).checkout({ leaderId: catalog.leaderId, items: [{ activitySkuId: catalog.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status).toBe(201);
      expect(placed.body.orders).toHaveLength(1);
      const checkoutNo = placed.body.checkoutNo as string;
      const orderNo = placed.body.orders[0].orderNo as string;
      const channel = 'alipay';
      const method = h.app.payments.channels.get(channel)!.methods[0]!;
      const started = await asBuyer(h, buyerId).startPayment(orderNo, channel, method);
      expect(started.status).toBe(201);
      const payNo = started.body.payNo as string;
      expect((await payAtCashier(h, channel, payNo))).toBe(200);
      for (let i = 0; i < 3; i++) {
        await h.sandbox!.core.untilDelivered();
        await untilQuiet(h);
      }
      const order = await asBuyer(h, buyerId).order(orderNo);
      expect(order.body.status).toBe('PAID');
      const activitySkuId = catalog.activitySkuIds[0]!;
      const added = await asBuyer(h, buyerId).cart.add(activitySkuId, 1);
      expect(added.status).toBe(200);
      return { buyerId, checkoutNo, orderNo, payNo, activitySkuId };
    }

    function tokenFor(column: Column, owner: number): string | undefined {
      const admin: Principal = { role: 'admin', subject: 'admin' };
      switch (column) {
        case 'anonymous':
        case 'anonymousBadInput':
          return undefined;
        case 'badSignature':
          return signToken('not-the-secret-of-this-platform-at-all', admin, h.clock.now());
        case 'expired':
          return h.token(admin, { issuedAgo_ms: DEFAULT_TOKEN_TTL_S * 1000 + 60_000 });
        case 'tampered':
          return tamperLastCharacter(h.adminToken());
        case 'aliasSubject':
          return signClaims({ role: 'buyer', sub: `0x${owner.toString(16)}` }, h.clock.now());
        case 'merchant':
          return h.token({ role: 'merchant', subject: '1' });
        case 'leader':
          return h.token({ role: 'leader', subject: '1' });
        case 'buyer':
          return h.buyerToken(owner);
        case 'otherBuyer':
          return h.buyerToken(otherBuyer);
        case 'admin':
          return h.adminToken();
      }
    }

    async function call(op: Operation, column: Column, owner: number, owned: Owned | undefined): Promise<number | undefined> {
      const pathValues: Record<string, string> = {};
      for (const p of op.parameters.filter((p) => p.in === 'path')) {
        const ownedValue = owned && OWNED_PARAMETERS.has(p.name) ? String(owned[p.name as 'checkoutNo' | 'orderNo' | 'payNo' | 'activitySkuId']) : undefined;
        pathValues[p.name] = ownedValue ?? String(validSample(p.schema));
      }
      let body: string | undefined = op.body ? JSON.stringify(validSample(op.body)) : undefined;
      if (column === 'anonymousBadInput') {
        const pathParameter = op.parameters.find((p) => p.in === 'path');
        if (op.body) body = JSON.stringify('not an object');
        else if (pathParameter) pathValues[pathParameter.name] = 'x';
        else return undefined;
      }
      const token = tokenFor(column, owner);
      const response = await h.http.inject({
        method: op.method as 'GET',
        url: urlOf(op, pathValues),
        headers: {
          ...(token && { authorization: `Bearer ${token}` }),
          ...(op.method !== 'GET' && { 'idempotency-key': newKey() }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { payload: body }),
      });
      return response.statusCode;
    }

    it('has a row for every operation in the document, and a row only for those', () => {
      const keys = operations.map((op) => op.key);
      expect(keys.filter((key) => !(key in EXPECTED)), 'operations without a row: decide who may call them').toEqual([]);
      expect(Object.keys(EXPECTED).filter((key) => !keys.includes(key)), 'rows of operations the document no longer has').toEqual([]);
      // Where the path names a buyer's own resource the row says what another buyer gets, and only there.
      const owns = (op: Operation) => op.parameters.some((p) => p.in === 'path' && OWNED_PARAMETERS.has(p.name));
      expect(operations.filter((op) => owns(op) !== (EXPECTED[op.key]?.otherBuyer !== undefined)).map((op) => op.key)).toEqual([]);
    });

    it('answers every cell as the table says', async () => {
      const mismatches: string[] = [];
      const actualRows: Record<string, Row> = {};
      for (const op of operations) {
        const owns = op.parameters.some((p) => p.in === 'path' && OWNED_PARAMETERS.has(p.name));
        // Cells that cannot change anything share one paid order; the others get one each, so
        // one cell's refund or cancel is not the next cell's state.
        const shared = owns ? await paidOrder() : undefined;
        const sharedBuyer = shared?.buyerId ?? (await freshBuyer());
        const actual: Row = {};
        for (const column of COLUMNS) {
          if (column === 'otherBuyer' && !owns) continue;
          const own = owns && ['buyer', 'admin', 'tampered', 'aliasSubject'].includes(column) ? await paidOrder() : shared;
          const status = await call(op, column, own?.buyerId ?? sharedBuyer, own);
          if (status !== undefined) actual[column] = status;
        }
        actualRows[op.key] = actual;
        const expected = EXPECTED[op.key];
        if (!expected) continue;
        for (const column of COLUMNS) {
          const want = expected[column];
          const got = actual[column];
          if (want === got) continue;
          const listed = fixedElsewhere.find((d) => d.column === column && (!d.keys || d.keys.includes(op.key)));
          const today = listed && (typeof listed.today === 'number' ? listed.today : actual[listed.today.as]);
          if (listed && got === today) continue;
          mismatches.push(`${op.key} ${column}: expected ${want ?? '(no cell)'}, answered ${got ?? '(no cell)'}`);
        }
      }
      expect(mismatches, `answers of this run:\n${JSON.stringify(actualRows, null, 1)}`).toEqual([]);
    });
  });
}
