import Fastify, { type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { asLessoncastError, LessoncastError } from '../errors.js';
import { loggerOptions } from './logging.js';

export type HttpApp = FastifyInstance;

export interface ReadinessCheck {
  name: string;
  /** Resolves to a problem description, or undefined when fine. `degraded` checks do not make the node unready. */
  check(): Promise<string | undefined>;
  degraded?: boolean;
}

export interface HttpAppOptions {
  logLevel: string;
  maxMessageBytes: number;
  readiness: ReadinessCheck[];
  /** While draining, /readyz answers 503 so load balancers stop sending users. */
  isDraining(): boolean;
}

/** The Fastify app with what every route shares: logging, problem+json errors, health endpoints, WebSocket support. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<HttpApp> {
  const app = Fastify({
    logger: loggerOptions(opts.logLevel),
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  });

  // Frames above maxMessageBytes get a typed MESSAGE_TOO_LARGE reply and the connection goes on;
  // only far larger frames (a hard cap that bounds memory) make ws close the socket (code 1009).
  await app.register(websocket, { options: { maxPayload: Math.max(opts.maxMessageBytes * 4, 1024 * 1024) } });

  app.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number; code?: string }, req, reply) => {
    let e: LessoncastError;
    if (err.validation) e = new LessoncastError('INVALID_REQUEST', err.message);
    else if (err instanceof LessoncastError) e = err;
    else if (err.statusCode && err.statusCode < 500) e = new LessoncastError('INVALID_REQUEST', err.message);
    else e = asLessoncastError(err);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    void reply
      .status(e.status)
      .type('application/problem+json')
      .send({ type: `urn:lessoncast:error:${e.code}`, title: e.code, status: e.status, detail: e.message, code: e.code, ...(e.details && e.status < 500 ? { details: e.details } : {}) });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).type('application/problem+json').send({ type: 'urn:lessoncast:error:NOT_FOUND', title: 'NOT_FOUND', status: 404, code: 'NOT_FOUND', detail: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.get('/healthz', async () => ({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }));

  app.get('/readyz', async (_req, reply) => {
    const results = await Promise.all(
      opts.readiness.map(async (c) => {
        const problem = await c.check().catch((err: Error) => err.message);
        return { name: c.name, ok: problem === undefined, degraded: Boolean(c.degraded), problem };
      }),
    );
    const failing = results.filter((r) => !r.ok && !r.degraded);
    const degraded = results.filter((r) => !r.ok && r.degraded);
    const draining = opts.isDraining();
    const status = draining ? 'draining' : failing.length ? 'unready' : degraded.length ? 'degraded' : 'ready';
    void reply.status(draining || failing.length ? 503 : 200);
    return { status, checks: Object.fromEntries(results.map((r) => [r.name, r.ok ? 'ok' : r.problem])) };
  });

  return app;
}
