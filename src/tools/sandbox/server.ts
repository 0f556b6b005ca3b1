import Fastify from 'fastify';
import { z } from 'zod';
import { CHANNELS, type ChannelName } from '../../payments/channels/types.ts';
import type { BillEdit } from './bills.ts';
import { SandboxCore, type SandboxCoreOptions } from './core.ts';
import type { Faults } from './faults.ts';
import { SandboxError } from './trades.ts';
import type { SandboxChannelModule, SandboxServer } from './module.ts';

/** Largest request the sandbox takes, as the channels limit theirs. */
const MAX_SANDBOX_BODY_BYTES = 1024 * 1024;

export interface SandboxHandle {
  url: string;
  core: SandboxCore;
  server: SandboxServer;
  close(): Promise<void>;
}

/**
 * Starts one server that plays every channel given: each module's protocol routes, plus the
 * cashier page (where a person, or a test, clicks Pay) and the fault switches under /sandbox.
 */
export async function startSandbox(options: {
  modules: ReadonlyArray<{ module: SandboxChannelModule<any, any>; keys: unknown }>;
  host?: string;
  port?: number;
  core?: SandboxCoreOptions;
}): Promise<SandboxHandle> {
  const core = new SandboxCore(options.core);
  const server = Fastify({ logger: false, bodyLimit: MAX_SANDBOX_BODY_BYTES });
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  // A channel that is down answers nothing useful on its API (the cashier and control routes stay up).
  server.addHook('onRequest', async (request, reply) => {
    const channel = core.faults.down.find((downChannel) => request.url.startsWith(`/${downChannel}/`));
    if (channel) return reply.status(503).type('text/plain; charset=utf-8').send('Service Unavailable');
  });
  // The cashier pages mark trades paid with one click: never inside someone else's frame.
  server.addHook('onSend', async (_request, reply) => {
    void reply.header('x-frame-options', 'DENY').header('x-content-type-options', 'nosniff').header('content-security-policy', "frame-ancestors 'none'");
  });
  let url = '';
  const base = () => url;
  for (const { module, keys } of options.modules) module.register(server, core, keys, base);
  registerControlRoutes(server, core, base);
  server.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof SandboxError) return reply.status(409).send({ code: error.code, message: error.message });
    return reply.status(error.statusCode ?? (error.name === 'ZodError' ? 400 : 500)).send({ code: 'error', message: error.message });
  });
  await server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    url,
    core,
    server,
    close: async () => {
      core.stop();
      await server.close();
    },
  };
}

const channelParams = z.object({ channel: z.enum(CHANNELS), payNo: z.string().min(1).max(64) });

const faultsBody = z
  .object({
    drop: z.number().int().min(0).max(1000),
    delay_ms: z.number().int().min(0).max(3_600_000),
    duplicate: z.number().int().min(0).max(1000),
    reorder: z.boolean(),
    misSign: z.number().int().min(0).max(1000),
    failRefund: z.number().int().min(0).max(1000),
    keepPayableOnClose: z.number().int().min(0).max(1000),
    down: z.array(z.enum(CHANNELS)).max(CHANNELS.length),
  })
  .partial()
  .strict();

function json(raw: unknown): unknown {
  return typeof raw === 'string' && raw.length > 0 ? JSON.parse(raw) : {};
}

function registerControlRoutes(server: SandboxServer, core: SandboxCore, base: () => string): void {
  server.get('/sandbox', async () => ({ channels: CHANNELS, faults: core.faults, trades: core.listTrades().length }));

  server.get('/sandbox/cashier/:channel/:payNo', async (request, reply) => {
    const { channel, payNo } = channelParams.parse(request.params);
    // The number is a trade's, or a combined payment's (合单), whose sub-orders are paid with one click.
    const combined = core.combined(channel, payNo);
    const trades = combined ? core.tradesOf(combined) : [core.trade(channel, payNo)].filter((trade) => trade !== undefined);
    if (trades.length === 0) return reply.status(404).type('text/html; charset=utf-8').send(page('No such trade', `<p>${escape(channel)} has no trade ${escape(payNo)}.</p>`));
    const amount = (trades.reduce((sum, trade) => sum + trade.amount_fen, 0) / 100).toFixed(2);
    const action = `${base()}/sandbox/cashier/${channel}/${encodeURIComponent(payNo)}/pay`;
    const payable = trades.every((trade) => trade.state === 'WAIT_BUYER_PAY');
    const body = payable
      ? `<form method="post" action="${escape(action)}"><button type="submit" id="pay">Pay ¥${amount}</button></form>`
      : `<p id="state">This trade is ${escape(trades.map((trade) => trade.state).join(', '))}.</p>`;
    const parts = combined ? `<ul>${trades.map((trade) => `<li>${escape(trade.subject)} · ¥${(trade.amount_fen / 100).toFixed(2)}</li>`).join('')}</ul>` : '';
    return reply.type('text/html; charset=utf-8').send(page(`${channelTitle(channel)} cashier`, `<h2>${escape(trades[0]!.subject)}</h2>${parts}<p>¥${amount} · ${escape(payNo)}</p>${body}`));
  });

  // The Pay click. A browser's form post is sent back to the merchant's return page; a test gets JSON.
  server.post('/sandbox/cashier/:channel/:payNo/pay', async (request, reply) => {
    const { channel, payNo } = channelParams.parse(request.params);
    const combined = core.combined(channel, payNo);
    const trades = combined ? core.payCombined(channel, payNo) : [core.pay(channel, payNo)];
    const returnUrl = trades[0]!.returnUrl;
    if (String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded') && returnUrl) {
      return reply.redirect(returnUrl, 303);
    }
    if (!combined) return { channel, payNo, tradeNo: trades[0]!.tradeNo, state: trades[0]!.state, paid_at_ms: trades[0]!.paid_at_ms };
    return { channel, combineNo: payNo, state: 'SUCCESS', trades: trades.map((trade) => ({ payNo: trade.payNo, tradeNo: trade.tradeNo, state: trade.state, paid_at_ms: trade.paid_at_ms })) };
  });

  server.post('/sandbox/trades/:channel/:payNo/finish', async (request) => {
    const { channel, payNo } = channelParams.parse(request.params);
    const trade = core.finish(channel, payNo);
    return { state: trade.state };
  });

  // Every trade with what was refunded of it: what a test run against a sandbox process checks its books against.
  server.get('/sandbox/trades', async () => ({ trades: core.listTrades().map((trade) => ({ ...trade, refunded_fen: core.refunded_fen(trade) })) }));

  server.get('/sandbox/trades/:channel/:payNo', async (request, reply) => {
    const { channel, payNo } = channelParams.parse(request.params);
    const trade = core.trade(channel, payNo);
    return trade ?? reply.status(404).send({ code: 'trade_not_found' });
  });

  server.get('/sandbox/faults', async () => core.faults);
  server.post('/sandbox/faults', async (request) => core.setFaults(faultsBody.parse(json(request.body)) as Partial<Faults>));

  server.post('/sandbox/bill-edits', async (request) => {
    core.editBill(json(request.body) as BillEdit);
    return { ok: true };
  });
}

function channelTitle(channel: ChannelName): string {
  return { alipay: 'Alipay', wechat: 'WeChat Pay', unionpay: 'UnionPay', ccb: 'CCB LongPay' }[channel];
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)} (sandbox)</title></head><body><h1>${escape(title)} <small>sandbox</small></h1>${body}</body></html>`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);
}
