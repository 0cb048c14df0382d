import type { FastifyServerOptions } from 'fastify';
import type { LessoncastError } from '../errors.js';

/** Query parameters that carry credentials; their values never reach a log line. */
const SECRET_PARAMS = /([?&](?:token|access_token|access|secret)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[redacted]');
}

/** pino options for Fastify: structured, with tokens and credentials redacted. */
export function loggerOptions(level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'token', '*.token', 'secret', '*.secret'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        ip: req.ip,
      }),
    },
  };
}

/**
 * A client's mistake (a 4xx answer, a malformed request or WebSocket frame) as log fields: our
 * code, what was wrong and the library's own code when it raised it; no stack trace, as the
 * server did nothing wrong.
 */
export function clientErrorFields(e: LessoncastError, cause?: unknown): Record<string, unknown> {
  const raw = (cause as { code?: unknown } | undefined)?.code;
  return { code: e.code, status: e.status, detail: e.message, ...(typeof raw === 'string' && raw !== e.code ? { cause: raw } : {}) };
}
