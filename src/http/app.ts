import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from 'fastify';
import websocket from '@fastify/websocket';
import { LessoncastError, type ErrorCode } from '../errors.js';
import { clientErrorFields, loggerOptions } from './logging.js';
import { isDisconnect, sendProblem, toProblem, writeProblem } from './problems.js';
import { CLOSE_FACTOR } from '../signalling/frames.js';
import { registerOpenApi } from './openapi.js';

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
  /** Told the code of every client error answered (a 4xx, a malformed request or WebSocket frame): /metrics counts them. */
  onClientError?(code: ErrorCode): void;
  /** Serve HTTPS (and WSS) with this certificate chain and key; every answer then carries HSTS. Absent = plain HTTP. */
  https?: { cert: Buffer; key: Buffer; hstsMaxAgeSeconds: number };
  /** Reverse proxies whose X-Forwarded-* headers are believed (http.trustProxy); empty = none, the socket's address counts. */
  trustProxy?: readonly string[];
  /** lessoncast's version, for the OpenAPI document. */
  version?: string;
}

/** The Fastify app with what every route shares: logging, problem+json errors, health endpoints, WebSocket support. */
export async function buildHttpApp(opts: HttpAppOptions): Promise<HttpApp> {
  /**
   * One log line per error: the server's own failures at error with the stack; a client's mistake
   * without one (at `level`) and counted, so a misbehaving client cannot fill the logs with traces.
   */
  const logged = (log: FastifyBaseLogger, err: unknown, e: LessoncastError, level: 'debug' | 'warn'): LessoncastError => {
    if (e.status >= 500) log.error({ err }, 'request failed');
    else {
      log[level](clientErrorFields(e, err), 'client error');
      opts.onClientError?.(e.code);
    }
    return e;
  };
  // A refused request: its own "request completed" line already says so at info.
  const answer = (err: unknown, req: FastifyRequest, reply: FastifyReply): void =>
    sendProblem(reply, logged(req.log, err, toProblem(err), 'debug'));

  const hsts = opts.https ? `max-age=${opts.https.hstsMaxAgeSeconds}` : undefined;
  const app = Fastify({
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    trustProxy: opts.trustProxy?.length ? [...opts.trustProxy] : false,
    logger: loggerOptions(opts.logLevel),
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // A URL Fastify's router cannot take (bad percent-encoding, a parameter past maxParamLength).
    frameworkErrors: answer,
    // What Node's HTTP parser refuses before Fastify sees a request (a header past 16 KB, a
    // malformed request line): answered on the socket, as no reply object exists yet.
    clientErrorHandler(err, socket) {
      // Once answered, what the client still sends (the rest of that header) is not another error.
      if (isDisconnect(err) || socket.destroyed || socket.writableEnded) return;
      writeProblem(socket, logged(app.log, err, toProblem(err), 'warn'), hsts ? { 'strict-transport-security': hsts } : {});
    },
  });

  // Before any route: @fastify/swagger describes the routes added after it.
  await registerOpenApi(app, { version: opts.version ?? '0.0.0' });

  // Frames above maxMessageBytes get a typed MESSAGE_TOO_LARGE reply and the connection goes on;
  // only frames past CLOSE_FACTOR × that (the hard cap that bounds what one client makes us buffer)
  // make ws close the socket (code 1009), as docs/protocol.md says.
  await app.register(websocket, {
    options: { maxPayload: opts.maxMessageBytes * CLOSE_FACTOR },
    // Errors on an open socket, and errors a socket handler threw.
    errorHandler(err, socket, req) {
      const code = (err as { code?: string }).code;
      if (isDisconnect(err)) return void req.log.debug({ code }, 'websocket peer gone');
      logged(req.log, err, toProblem(err), 'warn');
      // A client that broke the protocol (WS_ERR_*) is being closed by ws itself, with the code
      // that says why (1007, 1009); cutting the socket would lose that close frame.
      if (!code?.startsWith('WS_ERR_')) socket.terminate();
    },
  });
  // HSTS on every HTTPS answer, set on the raw response before Fastify routes it, so 404s,
  // framework errors and WebSocket refusals carry it too. Never on plain HTTP.
  if (hsts) app.server.prependListener('request', (_req, res) => res.setHeader('strict-transport-security', hsts));
  app.addHook('onRoute', (route) => {
    if (route.websocket) route.onRequest = [route.onRequest ?? []].flat().concat(upgradeRequired);
  });
  app.addHook('onRequest', async (_req, reply) => {
    void reply.header('x-content-type-options', 'nosniff');
  });

  app.setErrorHandler(answer);

  app.setNotFoundHandler((req, reply) =>
    answer(new LessoncastError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`), req, reply),
  );

  app.get('/healthz', { schema: { summary: 'Liveness: the process answers' } }, async () => ({
    status: 'ok',
    uptimeSeconds: Math.round(process.uptime()),
  }));

  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: 200 ready or degraded, 503 unready or draining, with each check' } },
    async (_req, reply) => {
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
    },
  );

  return app;
}

/** A WebSocket endpoint fetched without an upgrade: say what it is (426), not an empty 404. */
const upgradeRequired: onRequestHookHandler = (req, reply, done) => {
  if (req.ws) return done();
  void reply.header('upgrade', 'websocket');
  done(new LessoncastError('UPGRADE_REQUIRED', `${req.url.split('?')[0]} is a WebSocket endpoint: connect with Upgrade: websocket`));
};
