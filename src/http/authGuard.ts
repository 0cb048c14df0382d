import type { FastifyReply, FastifyRequest } from 'fastify';
import { can, type Permission } from '../auth/permissions.js';
import type { Principal, TokenService } from '../auth/tokens.js';
import { LessoncastError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** A preHandler that verifies the bearer token and checks one permission. */
export function requirePermission(tokens: TokenService, permission: Permission) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) throw new LessoncastError('UNAUTHENTICATED', 'send Authorization: Bearer <token>');
    const principal = await tokens.verify(token);
    if (!can(principal.role, permission)) throw new LessoncastError('FORBIDDEN', `a ${principal.role} may not do this`);
    req.principal = principal;
  };
}
