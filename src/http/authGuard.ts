import type { FastifyReply, FastifyRequest } from 'fastify';
import { aRole, can, type Permission } from '../auth/permissions.js';
import type { Principal, TokenService } from '../auth/tokens.js';
import { LessoncastError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** A preHandler that verifies the bearer token and checks one permission. */
export function requirePermission(tokens: TokenService, permission: Permission) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    req.principal = permitted(await bearerPrincipal(req, reply, tokens), permission);
  };
}

/** The principal, when its role has the permission; FORBIDDEN otherwise. */
export function permitted(principal: Principal, permission: Permission): Principal {
  if (!can(principal.role, permission)) throw new LessoncastError('FORBIDDEN', `${aRole(principal.role)} may not do this`);
  return principal;
}

/** Who the request's `Authorization: Bearer` token speaks for. Tokens are taken from that header only, never from the URL. */
export async function bearerPrincipal(req: FastifyRequest, reply: FastifyReply, tokens: TokenService): Promise<Principal> {
  const header = req.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  if (!token) throw new LessoncastError('UNAUTHENTICATED', 'send Authorization: Bearer <token>');
  return throttled(req, reply, () => tokens.verify(token));
}

/** Runs an authentication through the address's failure budget (AuthThrottle); a refusal carries Retry-After. */
export async function throttled<T>(req: FastifyRequest, reply: FastifyReply, verify: () => Promise<T>): Promise<T> {
  try {
    return await req.server.authThrottle.attempt(req, verify);
  } catch (err) {
    if (err instanceof LessoncastError && err.code === 'RATE_LIMITED') void reply.header('retry-after', String(err.details?.['retryAfterSeconds']));
    throw err;
  }
}
