import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LessoncastError } from '../errors.js';
import type { Metrics } from '../monitor/metrics.js';

/**
 * `/metrics` in Prometheus text format. Node-level numbers only (no lesson or school ids). With
 * `metrics.token` set, a scrape must send it as `Authorization: Bearer <token>` (Prometheus'
 * `authorization` / `bearer_token`); empty leaves it open, for a network that restricts it
 * (see docs/monitoring.md). Needs the AuthThrottle registered first.
 */
export function registerMetricsRoutes(app: FastifyInstance, deps: { metrics: Metrics; token: string }): void {
  const expected = deps.token ? digest(deps.token) : undefined;
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text format); Bearer metrics.token when set' } }, async (req, reply) => {
    // A wrong token counts against the address's failure budget like any other credential
    // (auth.maxFailuresPerAddress): past it, RATE_LIMITED, so the token cannot be guessed at line rate.
    if (expected) {
      await app.authThrottle.attempt(req, async () => {
        if (presents(req, expected)) return;
        void reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw new LessoncastError('UNAUTHENTICATED', 'send Authorization: Bearer <metrics.token>');
      });
    }
    const text = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(text);
  });
}

/** Both sides hashed to one length, so the comparison takes the same time whatever was sent. */
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function presents(req: FastifyRequest, expected: Buffer): boolean {
  const header = req.headers.authorization ?? '';
  return header.startsWith('Bearer ') && timingSafeEqual(digest(header.slice(7).trim()), expected);
}
