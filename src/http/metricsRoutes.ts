import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../monitor/metrics.js';

/**
 * `/metrics` in Prometheus text format. Unauthenticated like most exporters:
 * it carries node-level numbers only (no lesson or school ids); restrict it at
 * the network (see docs/monitoring.md).
 */
export function registerMetricsRoutes(app: FastifyInstance, deps: { metrics: Metrics }): void {
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.render();
    return reply.type(deps.metrics.contentType).send(text);
  });
}
