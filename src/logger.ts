/**
 * The slice of pino's logger every part of lessoncast writes to: structured fields first, then
 * the message. The app's pino logger is one; tests and the CLI pass small ones of their own.
 */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}
