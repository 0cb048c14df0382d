/**
 * Schema errors as people read them: shared by the wire (request data), the recording manifests
 * and anything else checked against a TypeBox schema.
 */
import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';

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
  for (const key of schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean))
    node = (node as Record<string, unknown> | undefined)?.[key.replaceAll('~1', '/').replaceAll('~0', '~')];
  const rule = (node as { then?: { description?: unknown } } | undefined)?.then?.description;
  return typeof rule === 'string' ? rule : undefined;
}
