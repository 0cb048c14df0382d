/**
 * Errors are values with codes. Each code maps once to an HTTP status
 * (problem+json) and is sent as-is in WebSocket error replies.
 */
export const ERROR_STATUS = {
  INVALID_MESSAGE: 400,
  INVALID_REQUEST: 400,
  MESSAGE_TOO_LARGE: 413,
  // HTTP-level refusals (malformed or oversized requests, a plain GET of a WebSocket endpoint);
  // src/http/problems.ts maps Fastify's and Node's own errors onto them (docs/rest.md).
  BAD_URL: 400,
  BAD_HTTP_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  BODY_TOO_LARGE: 413,
  URL_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UPGRADE_REQUIRED: 426,
  HEADERS_TOO_LARGE: 431,
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  /** The token, its device, or its person or school was revoked (docs/catalog.md). */
  TOKEN_REVOKED: 401,
  FORBIDDEN: 403,
  NOT_IN_LESSON: 409,
  ALREADY_JOINED: 409,
  OUT_OF_ORDER: 409,
  LESSON_NOT_FOUND: 404,
  LESSON_NOT_LIVE: 409,
  LESSON_ENDED: 410,
  /** Many nodes: another node is the lesson's origin (details.node); signalling relays there by itself. */
  LESSON_ELSEWHERE: 409,
  NOT_FOUND: 404,
  TRANSPORT_NOT_FOUND: 404,
  PRODUCER_NOT_FOUND: 404,
  CONSUMER_NOT_FOUND: 404,
  CANNOT_CONSUME: 422,
  MEDIA_REJECTED: 422,
  FLOOR_BUSY: 409,
  RECORDING_NOT_FOUND: 404,
  /** The lesson is not being recorded, so it has no live HLS for one-way viewers; details.reason says why. */
  NOT_RECORDING: 409,
  RECORDING_BUSY: 409,
  RANGE_NOT_SATISFIABLE: 416,
  /** A conditional GET of a recording's file (If-Match, If-Unmodified-Since) that does not hold. */
  PRECONDITION_FAILED: 412,
  /** Too many attempts in too little time (failed authentications, lesson actions); details.retryAfterSeconds when known. */
  RATE_LIMITED: 429,
  /** A per-participant cap (transports, producers, consumers) is reached; details name it. */
  LIMIT_REACHED: 409,
  // The catalog (docs/catalog.md).
  SCHOOL_NOT_FOUND: 404,
  PERSON_NOT_FOUND: 404,
  SUBJECT_NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  /** A timetable entry that cannot be: it ends before it starts, lasts too long, a series past its bounds; details.field. */
  TIMETABLE_INVALID: 422,
  /** The instructor teaches another lesson in that slot; details.lessonId. */
  INSTRUCTOR_BUSY: 409,
  /** A school is in another lesson in that slot; details.lessonId, details.schoolId. */
  SCHOOL_BUSY: 409,
  /** A live or ended lesson cannot be cancelled or moved. */
  LESSON_STARTED: 409,
  /** A ledger date range that cannot be: not a date, from after to, longer than allowed; details.field. */
  LEDGER_RANGE_INVALID: 422,
  /** The catalog database does not answer; the request may be retried. */
  CATALOG_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  UNAVAILABLE: 503,
  /** Another node of the cluster did not answer in time (docs/cluster.md); the request may be retried. */
  CLUSTER_TIMEOUT: 504,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class LessoncastError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'LessoncastError';
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const fail = (code: ErrorCode, message: string, details?: Record<string, unknown>): never => {
  throw new LessoncastError(code, message, details);
};

/** Any thrown value as a LessoncastError; unknown errors become INTERNAL (message kept for logs only). */
export function asLessoncastError(err: unknown): LessoncastError {
  if (err instanceof LessoncastError) return err;
  return new LessoncastError('INTERNAL', 'internal error', { cause: err instanceof Error ? err.message : String(err) });
}
