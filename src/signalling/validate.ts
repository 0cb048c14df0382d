import { Compile, type Validator } from 'typebox/compile';
import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';
import { LessoncastError } from '../errors.js';
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
  return (typeof id === 'number' && Number.isInteger(id) && id >= 0) || (typeof id === 'string' && id.length > 0 && id.length <= 64) ? id : null;
}

const pointerKey = (key: string): string => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;

/**
 * `path: message` of the first of a failed check's errors, or undefined when there are none. The
 * path points at the offending property, also when it is missing or unexpected.
 */
export function firstError(errors: TLocalizedValidationError[], schema?: TSchema): string | undefined {
  // A failed union lists its branches' errors first; the union's own error speaks for them.
  const branches = errors.filter((u) => u.keyword === 'anyOf').map((u) => `${u.schemaPath}/anyOf/`);
  // 'boolean' errors repeat an additionalProperties error per property, as "schema is false".
  const e = errors.find((x) => x.keyword !== 'boolean' && !branches.some((b) => x.schemaPath.startsWith(b)));
  if (!e) return undefined;
  switch (e.keyword) {
    case 'required':
      return `${e.instancePath}${pointerKey(e.params.requiredProperties[0]!)}: required property is missing`;
    case 'additionalProperties':
      return `${e.instancePath}${pointerKey(e.params.additionalProperties[0]!)}: unexpected property`;
    case 'anyOf':
      return `${e.instancePath || '/'}: ${unionMessage(e, errors)}`;
    case 'if':
      // "must match "then" schema" says nothing: the rule's own description does.
      return `${e.instancePath || '/'}: ${describedRule(schema, e.schemaPath) ?? message(e)}`;
    default:
      return `${e.instancePath || '/'}: ${message(e)}`;
  }
}

/** TypeBox's message, naming the values a literal or an enum wants ("must be equal to constant" does not). */
function message(e: TLocalizedValidationError): string {
  if (e.keyword === 'const') return `must be ${JSON.stringify(e.params.allowedValue)}`;
  if (e.keyword === 'enum') return `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return e.message;
}

/** What a failed union allows: its literals, or else what its branches wanted of the value itself. */
function unionMessage(union: TLocalizedValidationError, errors: TLocalizedValidationError[]): string {
  const prefix = `${union.schemaPath}/anyOf/`;
  const branchOf = (e: TLocalizedValidationError): string => e.schemaPath.slice(prefix.length).split('/')[0]!;
  const inside = errors.filter((e) => e.schemaPath.startsWith(prefix));
  const literals = inside.filter((e) => e.keyword === 'const');
  if (new Set(literals.map(branchOf)).size === new Set(inside.map(branchOf)).size) {
    return `must be one of ${literals.map((e) => JSON.stringify(e.params.allowedValue)).join(', ')}`;
  }
  // Errors deeper down (a property of an object branch) would need their own paths: left out.
  const own = new Set(inside.filter((e) => e.instancePath === union.instancePath).map(message));
  return own.size ? [...own].join(' or ') : union.message;
}

/** The description of the `then` of the if/then at `schemaPath` (a JSON pointer from the root). */
function describedRule(schema: TSchema | undefined, schemaPath: string): string | undefined {
  let node: unknown = schema;
  for (const key of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean)) node = (node as Record<string, unknown> | undefined)?.[key.replaceAll('~1', '/').replaceAll('~0', '~')];
  const rule = (node as { then?: { description?: unknown } } | undefined)?.then?.description;
  return typeof rule === 'string' ? rule : undefined;
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
  return { id: value.id, method, data: data as RequestData<Method> };
}
