import { Compile, type Validator } from 'typebox/compile';
import { LessoncastError } from '../errors.js';
import { firstError } from '../schemaErrors.js';
import { METHODS, RequestEnvelope, RequestSchemas, type Method, type RequestData } from './protocol.js';

const envelopeCheck = Compile(RequestEnvelope);
const dataChecks = Object.fromEntries(METHODS.map((m) => [m, Compile(RequestSchemas[m])])) as Record<Method, Validator>;

export interface ParsedRequest<M extends Method = Method> {
  id: number | string;
  method: M;
  data: RequestData<M>;
}

/** The id to answer with, if one can be read at all from a rejected message. */
export function salvageId(value: unknown): number | string | null {
  if (typeof value !== 'object' || value === null) return null;
  const id = (value as { id?: unknown }).id;
  return (typeof id === 'number' && Number.isInteger(id) && id >= 0) || (typeof id === 'string' && id.length > 0 && id.length <= 64)
    ? id
    : null;
}

const rejection = (check: Validator, value: unknown): string => firstError(check.Errors(value), check.Type()) ?? 'invalid';

/**
 * Text frame → a request whose data matches its method's schema, or a
 * LessoncastError (INVALID_MESSAGE for the envelope, INVALID_REQUEST for data).
 */
export function parseRequest(text: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LessoncastError('INVALID_MESSAGE', 'message is not JSON');
  }
  if (!envelopeCheck.Check(value)) {
    throw new LessoncastError('INVALID_MESSAGE', `not a request envelope (${rejection(envelopeCheck, value)})`);
  }
  const method = value.method as Method;
  if (!Object.hasOwn(RequestSchemas, method)) {
    throw new LessoncastError('INVALID_MESSAGE', `unknown method "${value.method.slice(0, 64)}"`, { methods: METHODS });
  }
  const data = value.data ?? {};
  const check = dataChecks[method];
  if (!check.Check(data)) throw new LessoncastError('INVALID_REQUEST', `bad data for ${method}: ${rejection(check, data)}`);
  return { id: value.id, method, data: data };
}
