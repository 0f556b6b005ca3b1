import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { Principal, Role, VerifiedToken } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: VerifiedToken | undefined;
  }
}

/** The caller, if their role is one of `roles`. */
export function authorize(request: FastifyRequest, ...roles: Role[]): VerifiedToken {
  const principal = request.principal;
  if (!principal) throw new AppError('unauthenticated');
  if (!roles.includes(principal.role)) throw new AppError('forbidden');
  return principal;
}

/** The caller's numeric id, for buyers, merchants and leaders: canonical decimal only ("0x1", "1e0", " 1" are not ids). */
export function subjectId(principal: Principal): number {
  const id = /^[1-9][0-9]{0,15}$/.test(principal.subject) ? Number(principal.subject) : NaN;
  if (!Number.isSafeInteger(id)) throw new AppError('unauthenticated', { message: 'The token subject is not an id.' });
  return id;
}
