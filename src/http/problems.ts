import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { asLessoncastError, LessoncastError, type ErrorCode } from '../errors.js';

/**
 * Every HTTP error lessoncast answers is `application/problem+json` with one of our codes,
 * including those Fastify, Node's HTTP parser and ws raise themselves (their own codes are
 * not part of the API, docs/rest.md lists ours).
 */
const FOREIGN_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_BAD_URL: 'BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'URL_TOO_LONG',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 'MESSAGE_TOO_LARGE',
};

/** The peer went away: nothing to answer, nobody's mistake worth a log line above debug. */
const DISCONNECTS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

type ForeignError = Error & { code?: string; statusCode?: number; validation?: unknown };

export function isDisconnect(err: unknown): boolean {
  return DISCONNECTS.has(String((err as ForeignError | undefined)?.code));
}

/** Any error as one of ours: a client's mistake keeps its 4xx meaning, anything else is INTERNAL. */
export function toProblem(err: unknown): LessoncastError {
  if (err instanceof LessoncastError) return err;
  const e = (err ?? {}) as ForeignError;
  const code = e.validation ? 'INVALID_REQUEST' : (e.code && FOREIGN_CODES[e.code]) || prefixCode(e.code);
  if (code) return new LessoncastError(code, e.message);
  if (e.statusCode && e.statusCode < 500) return new LessoncastError('INVALID_REQUEST', e.message);
  return asLessoncastError(err);
}

/** Node's HTTP parser (HPE_*) and ws (WS_ERR_*) name what the client sent wrong. */
function prefixCode(code: string | undefined): ErrorCode | undefined {
  if (code?.startsWith('HPE_')) return 'BAD_HTTP_REQUEST';
  if (code?.startsWith('WS_ERR_')) return 'INVALID_MESSAGE';
  return undefined;
}

export function problemBody(e: LessoncastError): Record<string, unknown> {
  return {
    type: `urn:lessoncast:error:${e.code}`,
    title: e.code,
    status: e.status,
    detail: e.message,
    code: e.code,
    ...(e.details && e.status < 500 ? { details: e.details } : {}),
  };
}

export function sendProblem(reply: FastifyReply, e: LessoncastError): void {
  void reply.status(e.status).header('x-content-type-options', 'nosniff').type('application/problem+json').send(problemBody(e));
}

/**
 * The same answer written on a bare socket, for errors Node's HTTP parser raises before Fastify
 * has a request (an oversized header, a malformed request line): then the connection closes.
 */
export function writeProblem(socket: Duplex, e: LessoncastError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(problemBody(e));
  const head = [
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}`,
    'content-type: application/problem+json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'x-content-type-options: nosniff',
    'connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}
