import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REQUEST_ID_LENGTH } from '../src/platform/http/server.ts';
import { availableEngines } from './support/engines.ts';
import { seedActivity, startHarness, writtenRows, type CatalogFixture, type Harness } from './support/harness.ts';
import { asAdmin, asBuyer } from './support/client.ts';

/**
 * Issue 10's defects at the HTTP edge, one regression each: request and connection limits (5),
 * canonical ids (8), security headers (9), who before what (10), unsafe text (11), returnUrl (12),
 * and what forgeries and oversized requests cost us in logs and answers (15).
 */
for (const engine of availableEngines()) {
  describe(`the HTTP edge on ${engine.name}`, () => {
    let h: Harness;
    let f: CatalogFixture;
    let url: string;
    const lines: Record<string, any>[] = [];
    beforeAll(async () => {
      const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      h = await startHarness(engine, {
        sandbox: {},
        log,
        config: { http: { requestTimeout_ms: 400, maxConnections: 40 }, trustProxy: true },
      });
      url = h.app.payments.publicUrl;
      f = await seedActivity(h.app, { skus: [{ price_fen: 1000, stock: 100 }] });
    });
    afterAll(async () => h?.close());


    it('5: a request that trickles its body, or sends nothing after its headers, is cut off with 408', async () => {
      const socket = await open(url);
      socket.write(`POST /admin/merchants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nAuthorization: Bearer ${h.adminToken()}\r\n\r\n{"na`);
      const answer = await untilClosed(socket);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(answer).toContain('"code":"request_timeout"');
      const silent = await open(url);
      silent.write('GET /activities HTTP/1.1\r\nHost: x\r\n');
      expect(await untilClosed(silent)).toMatch(/^HTTP\/1\.1 408/);
    });

    it('5: connections past the cap are refused', async () => {
      const sockets = await Promise.all(Array.from({ length: 40 }, () => open(url)));
      const extra = await open(url);
      expect(await untilClosed(extra)).toBe('');
      for (const s of sockets) s.destroy();
    });

    it('8: ids in paths and numbers in query strings are canonical decimal only', async () => {
      const activityId = f.activityId;
      for (const id of [`0x${activityId.toString(16)}`, `${activityId}e0`, `000${activityId}`, `+${activityId}`, `%20${activityId}`]) {
        const r = await asAdmin(h).updateActivity(id, { title: 'renamed by a hex id' });
        expect(r.status, id).toBe(400);
        expect(r.body).toMatchObject({ code: 'invalid_field', field: 'params.id' });
      }
      expect((await h.http.inject({ method: 'GET', url: `/activities/${activityId}` })).statusCode).toBe(200);
      const orders = await asBuyer(h, 1).orders('?limit=0x10');
      expect(orders.body).toMatchObject({ code: 'invalid_field', field: 'querystring.limit' });
      expect((await asBuyer(h, 1).orders('?limit=16')).status).toBe(200);
    });

    it('9: nosniff and frame protection everywhere, no-store on what is personal, HSTS on https', async () => {
      const open_ = await h.http.inject({ method: 'GET', url: '/activities' });
      expect(open_.headers['x-content-type-options']).toBe('nosniff');
      expect(open_.headers['x-frame-options']).toBe('DENY');
      expect(open_.headers['cache-control']).toBeUndefined();
      expect(open_.headers['strict-transport-security']).toBeUndefined();
      const mine = await asBuyer(h, 1).points();
      expect(mine.headers['cache-control']).toBe('no-store');
      const refused = await h.http.inject({ method: 'GET', url: '/points', headers: { authorization: 'Bearer nonsense' } });
      expect(refused.headers['cache-control']).toBe('no-store');
      const tls = await h.http.inject({ method: 'GET', url: '/activities', headers: { 'x-forwarded-proto': 'https' } });
      expect(tls.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      const docs = await h.http.inject({ method: 'GET', url: '/docs/json' });
      expect(docs.statusCode).toBe(200);
    });

    it('10: who may call is answered before what they sent', async () => {
      const bad = { name: 42, unknown: true };
      const anonymous = await h.http.inject({ method: 'POST', url: '/admin/merchants', payload: bad });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().code).toBe('unauthenticated');
      const buyer = await asBuyer(h, 1).post('/admin/merchants', bad);
      expect(buyer.status).toBe(403);
      const anonymousCart = await h.http.inject({ method: 'PATCH', url: '/cart/lines/0x1', payload: { quantity: 'many' } });
      expect(anonymousCart.statusCode).toBe(401);
      const byAdmin = await asAdmin(h).createMerchant(bad);
      expect(byAdmin.status).toBe(400);
    });

    it('11: control characters, bidi overrides and lone surrogates are refused and nothing is written', async () => {
      const before = await writtenRows(h.app);
      for (const name of ['Shop\u0000', 'Shop\u001b[31m', 'Shop\u202egnp.exe', 'Shop\u2066x', 'Shop\ud800', 'Shop\udc00x', 'Shop\u0085']) {
        const r = await asAdmin(h).post('/admin/merchants', JSON.stringify({ name }), { 'content-type': 'application/json' });
        expect(r.status, JSON.stringify(name)).toBe(400);
        expect(r.body).toMatchObject({ code: 'unsafe_text', field: 'name' });
      }
      const remark = await asBuyer(h, 2).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }], remark: 'leave at door\u202e' });
      expect(remark.status).toBe(400);
      expect(await writtenRows(h.app)).toEqual(before);
      // Ordinary text, new lines and every script still pass.
      const fine = await asAdmin(h).createMerchant({ name: '王记水果店 🍎' });
      expect(fine.status).toBe(201);
    });

    it('12: a returnUrl is https to a configured host; javascript: and other hosts are refused', async () => {
      const placed = await asBuyer(h, 3).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      const pay = (returnUrl: string) =>
        asBuyer(h, 3).startPayment(placed.body.orders[0].orderNo, 'alipay', 'page', { returnUrl });
      for (const bad of ['javascript:alert(1)', 'https://evil.example/paid', 'http://shop.example/paid', 'https://user:pw@shop.example/', 'data:text/html,hi', 'https://shop.example.evil.example/']) {
        const r = await pay(bad);
        expect(r.status, bad).toBe(422);
        expect(r.body).toMatchObject({ code: 'return_url_not_allowed', field: 'returnUrl' });
      }
      expect((await pay('https://shop.example/paid?order=1')).status).toBe(201);
    });

    it('15: a forged WeChat notification is a 401 SIGN_ERROR and one short log line', async () => {
      lines.length = 0;
      const r = await h.http.inject({
        method: 'POST',
        url: '/payments/notify/wechat',
        headers: { 'content-type': 'application/json', 'wechatpay-timestamp': String(Math.floor(Date.now() / 1000)), 'wechatpay-nonce': 'n', 'wechatpay-serial': 'S', 'wechatpay-signature': 'Zm9yZ2Vk' },
        payload: JSON.stringify({ id: 'x', resource: { ciphertext: 'AAAA', nonce: 'n', associated_data: 'transaction' } }),
      });
      expect(r.statusCode).toBe(401);
      expect(r.json()).toMatchObject({ code: 'SIGN_ERROR' });
      const logged = lines.filter((l) => l.msg === 'notification rejected: verification failed');
      expect(logged).toHaveLength(1);
      expect(logged[0]!.err).toBeUndefined();
      expect(JSON.stringify(logged[0]).length).toBeLessThan(600);
    });

    it('15: a long or odd x-request-id is replaced, a short plain one kept', async () => {
      lines.length = 0;
      const checkout = (requestId: string) =>
        asBuyer(h, 4).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] }, { key: `edge-${requestId.length}-${requestId.charCodeAt(3)}`, headers: { 'x-request-id': requestId } });
      for (const requestId of ['r'.repeat(5000), 'abc\u00e9', 'a b c', 'req-edge-1']) expect((await checkout(requestId)).status).toBeLessThan(500);
      const ids = lines.filter((l) => l.msg === 'checkout answered').map((l) => String(l.reqId));
      expect(ids).toHaveLength(4);
      expect(ids.filter((id) => id.length > 64 || id.includes(' '))).toEqual([]);
      expect(ids).toContain('req-edge-1');
    });

    it('15: an x-request-id of MAX_REQUEST_ID_LENGTH characters is kept; one character more is replaced', async () => {
      lines.length = 0;
      const atLimit = 'a'.repeat(MAX_REQUEST_ID_LENGTH);
      const past = 'b'.repeat(MAX_REQUEST_ID_LENGTH + 1);
      for (const requestId of [atLimit, past]) {
        const placed = await asBuyer(h, 5).checkout({ leaderId: f.leaderId, items: [{ activitySkuId: f.activitySkuIds[0]!, quantity: 1 }] }, { headers: { 'x-request-id': requestId } });
        expect(placed.status).toBe(201);
      }
      const ids = lines.filter((l) => l.msg === 'checkout answered').map((l) => String(l.reqId));
      expect(ids).toHaveLength(2);
      expect(ids[0]).toBe(atLimit);
      expect(ids[1]).not.toBe(past);
      expect(ids[1]!.length).toBeLessThanOrEqual(MAX_REQUEST_ID_LENGTH);
    });

    it("15: Fastify's and Node's own refusals use the error table and never echo the path", async () => {
      const longParam = await h.http.inject({ method: 'GET', url: `/activities/${'9'.repeat(200)}` });
      expect(longParam.statusCode).toBe(414);
      expect(longParam.json()).toEqual({ code: 'uri_too_long', message: expect.any(String) });
      const badUtf8 = await h.http.inject({ method: 'GET', url: '/orders/%ED%A0%80SECRET' });
      expect(badUtf8.statusCode).toBe(400);
      expect(badUtf8.body).not.toContain('SECRET');
      expect(badUtf8.json().code).toBe('invalid_request');
      const nowhere = await h.http.inject({ method: 'GET', url: '/no/such/SECRET' });
      expect(nowhere.json()).toMatchObject({ code: 'not_found' });
      expect(nowhere.body).not.toContain('SECRET');
      const socket = await open(url);
      socket.write(`GET /activities HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      const answer = await untilClosed(socket);
      expect(answer).toMatch(/^HTTP\/1\.1 431/);
      expect(answer).toContain('"code":"headers_too_large"');
    });
  });
}

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server writes until it closes the socket (the test's own timeout bounds the wait). */
function untilClosed(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (d) => (text += d));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve(text)));
}
