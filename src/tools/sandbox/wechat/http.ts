import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { SandboxCore } from '../core.ts';
import { SandboxError } from '../trades.ts';
import type { SandboxServer } from '../module.ts';
import { authorizationProblem, platformHeaders, type MerchantIdentity, type PlatformSigner } from './signing.ts';

/** The platform's HTTP manners: every request authenticated, every answer signed, errors as {code, message}. */

export interface Answer {
  status: number;
  body?: unknown;
}

export function wechatError(status: number, code: string, message: string): Error & { answer: Answer } {
  return Object.assign(new Error(message), { answer: { status, body: { code, message } } });
}

export function parseBody<T>(schema: z.ZodType<T>, raw: string): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw wechatError(400, 'PARAM_ERROR', '请求体不是合法的JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw wechatError(400, 'PARAM_ERROR', `输入源"/body/${issue?.path.join('/') ?? ''}"有误: ${issue?.message ?? ''}`);
  }
  return parsed.data;
}

export function fromError(error: unknown): Answer {
  if (error && typeof error === 'object' && 'answer' in error) return (error as { answer: Answer }).answer;
  if (error instanceof SandboxError) {
    switch (error.code) {
      case 'trade_not_found':
        return { status: 404, body: { code: 'ORDER_NOT_EXIST', message: '订单不存在' } };
      case 'trade_exists':
        return { status: 403, body: { code: 'OUT_TRADE_NO_USED', message: '商户订单号重复' } };
      case 'refund_exceeds':
        return { status: 403, body: { code: 'NOT_ENOUGH', message: '申请退款金额超过订单可退金额' } };
      case 'not_refundable':
        return { status: 400, body: { code: 'INVALID_REQUEST', message: '订单状态不允许退款' } };
      default:
        return { status: 400, body: { code: 'INVALID_REQUEST', message: error.message } };
    }
  }
  return { status: 500, body: { code: 'SYSTEM_ERROR', message: String(error) } };
}

export type Handler = (request: FastifyRequest, raw: string) => Answer;

/** Registers a WeChat API route under /wechat: the merchant's signature is checked first, the answer signed last. */
export function routeMaker(server: SandboxServer, core: SandboxCore, merchant: MerchantIdentity, signer: PlatformSigner) {
  return (method: 'GET' | 'POST', path: string, handle: Handler) =>
    server.route({
      method,
      url: `/wechat${path}`,
      handler: async (request, reply) => {
        const raw = typeof request.body === 'string' ? request.body : '';
        let answer = authenticated(merchant, request, raw, core.now());
        if (!answer) {
          try {
            answer = handle(request, raw);
          } catch (error) {
            answer = fromError(error);
          }
        }
        return sendSigned(reply, signer, answer, core.now());
      },
    });
}

export function authenticated(merchant: MerchantIdentity, request: FastifyRequest, raw: string, now_ms: number): Answer | undefined {
  const authorization = request.headers.authorization;
  const problem = authorizationProblem(merchant, { method: request.method, url: request.url, body: raw, authorization }, now_ms);
  return problem ? { status: 401, body: { code: 'SIGN_ERROR', message: problem } } : undefined;
}

export function sendSigned(reply: FastifyReply, signer: PlatformSigner, answer: Answer, now_ms: number): FastifyReply {
  const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
  reply.status(answer.status).headers({ ...platformHeaders(signer, text, now_ms), 'Request-ID': randomUUID() });
  if (text) reply.type('application/json; charset=utf-8');
  return reply.send(text);
}

