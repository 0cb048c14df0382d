/**
 * Errors are values with codes. Each code maps once to an HTTP status
 * (problem+json) and is sent as-is in WebSocket error replies.
 */
export const ERROR_STATUS = {
  INVALID_MESSAGE: 400,
  INVALID_REQUEST: 400,
  MESSAGE_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  NOT_IN_LESSON: 409,
  ALREADY_JOINED: 409,
  OUT_OF_ORDER: 409,
  LESSON_NOT_FOUND: 404,
  LESSON_NOT_LIVE: 409,
  LESSON_ENDED: 410,
  NOT_FOUND: 404,
  TRANSPORT_NOT_FOUND: 404,
  PRODUCER_NOT_FOUND: 404,
  CONSUMER_NOT_FOUND: 404,
  CANNOT_CONSUME: 422,
  MEDIA_REJECTED: 422,
  FLOOR_BUSY: 409,
  RECORDING_NOT_FOUND: 404,
  RECORDING_BUSY: 409,
  RANGE_NOT_SATISFIABLE: 416,
  SHUTTING_DOWN: 503,
  UNAVAILABLE: 503,
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
