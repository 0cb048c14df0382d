import type { FastifyReply, FastifyRequest } from 'fastify';
import { aRole, can, type Permission } from '../auth/permissions.js';
import type { Principal, TokenService } from '../auth/tokens.js';
import { LessoncastError } from '../errors.js';
import { markPermission } from './openapi.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** A preHandler that verifies the bearer token and checks one permission. */
export function requirePermission(tokens: TokenService, permission: Permission) {
  return markPermission(async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    req.principal = permitted(await bearerPrincipal(req, reply, tokens), permission);
  }, permission);
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
  return withRetryAfter(reply, verifyToken(req, tokens, token));
}

/**
 * The one check of a token, wherever it came from: REST's bearer header and the `authenticate`
 * message of /ws and /api/live/feed (server.ts hands it to their door). It runs within the
 * address's failure budget (AuthThrottle) and fails as UNAUTHENTICATED, TOKEN_EXPIRED or
 * RATE_LIMITED (details.retryAfterSeconds), which REST answers as problem+json and the sockets as
 * error replies and close codes.
 */
export function verifyToken(req: FastifyRequest, tokens: TokenService, token: string): Promise<Principal> {
  return req.server.authThrottle.attempt(req, () => tokens.verify(token));
}

/** Runs another credential check (an `?access=` capability) through the address's failure budget; a refusal carries Retry-After. */
export function throttled<T>(req: FastifyRequest, reply: FastifyReply, verify: () => Promise<T>): Promise<T> {
  return withRetryAfter(reply, req.server.authThrottle.attempt(req, verify));
}

/** REST's part of a RATE_LIMITED refusal: the Retry-After header. */
async function withRetryAfter<T>(reply: FastifyReply, attempt: Promise<T>): Promise<T> {
  try {
    return await attempt;
  } catch (err) {
    if (err instanceof LessoncastError && err.code === 'RATE_LIMITED')
      void reply.header('retry-after', String(err.details?.['retryAfterSeconds']));
    throw err;
  }
}
