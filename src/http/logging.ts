import type { FastifyServerOptions } from 'fastify';

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
