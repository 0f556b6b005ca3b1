import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { verifyToken, type Principal, type Role } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

export function readPrincipal(request: FastifyRequest, secret: string, now_ms: number): Principal | undefined {
  const header = request.headers.authorization;
  if (!header?.startsWith('Bearer ')) return undefined;
  return verifyToken(secret, header.slice('Bearer '.length).trim(), now_ms);
}

/** The caller, if their role is one of `roles`. */
export function authorize(request: FastifyRequest, ...roles: Role[]): Principal {
  const principal = request.principal;
  if (!principal) throw new AppError('unauthenticated');
  if (!roles.includes(principal.role)) throw new AppError('forbidden');
  return principal;
}

/** The caller's numeric id, for buyers, merchants and leaders. */
export function subjectId(principal: Principal): number {
  const id = Number(principal.subject);
  if (!Number.isSafeInteger(id) || id <= 0) throw new AppError('unauthenticated', { message: 'The token subject is not an id.' });
  return id;
}
