import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { mayAccessLesson, type Principal, type TokenService } from '../auth/tokens.js';
import type { LedgerQuery, LedgerTable } from '../catalog/ledger.js';
import { csvLines, iso, ledgerView } from '../catalog/ledgerView.js';
import type { CatalogStore } from '../catalog/store.js';
import { LessoncastError } from '../errors.js';
import { requirePermission } from './authGuard.js';
import { ID_PATTERN } from './catalogRoutes.js';

const DAY = 24 * 3600_000;
/** The longest range one request covers: a school year and some. */
export const MAX_RANGE_DAYS = 400;
const DEFAULT_RANGE_DAYS = 31;

const Id = Type.String({ pattern: ID_PATTERN });
const IdParams = Type.Object({ id: Id }, { additionalProperties: false });
/** A UTC day (2027-02-01) or an instant with its offset (2027-02-01T09:00:00+04:00). */
const When = Type.String({ maxLength: 40 });
const RangeQuery = Type.Object(
  {
    from: Type.Optional(When),
    to: Type.Optional(When),
    limit: Type.Optional(Type.String({ pattern: '^(?:[1-9]\\d{0,2}|[1-4]\\d{3}|5000)$' })),
    offset: Type.Optional(Type.String({ pattern: '^\\d{1,7}$' })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])),
  },
  { additionalProperties: false },
);

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `from`/`to` as ms: a day is its UTC midnight, and `to` as a day includes that day. */
function when(value: string, field: 'from' | 'to'): number {
  const day = DAY_RE.test(value);
  const ms = day || INSTANT_RE.test(value) ? Date.parse(day ? `${value}T00:00:00Z` : value) : Number.NaN;
  // 2027-02-30 parses as 2 March: a day must read back as itself.
  if (Number.isNaN(ms) || (day && new Date(ms).toISOString().slice(0, 10) !== value))
    throw new LessoncastError('LEDGER_RANGE_INVALID', `${field}: ${value} is neither a day (2027-02-01) nor an instant with its offset`, {
      field,
    });
  return day && field === 'to' ? ms + DAY : ms;
}

/** The range asked for: default the last 31 days; `from` after `to`, or over 400 days, refused. */
export function ledgerRange(q: { from?: string; to?: string }, now = Date.now()): { from: number; to: number } {
  const to = q.to === undefined ? now : when(q.to, 'to');
  const from = q.from === undefined ? to - DEFAULT_RANGE_DAYS * DAY : when(q.from, 'from');
  if (from > to) throw new LessoncastError('LEDGER_RANGE_INVALID', 'from is after to', { field: 'from' });
  if (to - from > MAX_RANGE_DAYS * DAY)
    throw new LessoncastError('LEDGER_RANGE_INVALID', `a range covers at most ${MAX_RANGE_DAYS} days`, { field: 'to' });
  return { from, to };
}

/** The lessons a token sees: all (admin, or a token for any lesson) or those it lists. */
function scopeOf(who: Principal): 'all' | string[] {
  return who.role === 'admin' || who.lessons === '*' ? 'all' : who.lessons;
}

/**
 * REST for the per-school ledger (docs/catalog.md#the-ledger): a lesson's rows, one school's or
 * the region's over a date range, as JSON (paged) or CSV (the whole range). Readers of recordings
 * read it (archivist, control room, admin).
 */
export function registerLedgerRoutes(
  app: FastifyInstance,
  deps: { ledger: LedgerTable; catalog: CatalogStore; tokens: TokenService },
): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const read = requirePermission(deps.tokens, 'recordings.read');

  r.get(
    '/api/lessons/:id/ledger',
    { schema: { summary: "A lesson's ledger: one row per school", params: IdParams }, preHandler: read },
    async (req) => {
      const { id } = req.params;
      if (!mayAccessLesson(req.principal!, id)) throw new LessoncastError('FORBIDDEN', 'your token does not cover this lesson');
      const rows = await deps.ledger.lesson(id);
      if (rows.length === 0 && !(await deps.catalog.getLesson(id))) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
      return { lessonId: id, rows: rows.map(ledgerView) };
    },
  );

  const ranged = async (
    q: { from?: string; to?: string; limit?: string; offset?: string; format?: 'json' | 'csv' },
    who: Principal,
    reply: FastifyReply,
    schoolId: string | undefined,
  ) => {
    const { from, to } = ledgerRange(q);
    const query: Omit<LedgerQuery, 'limit' | 'offset'> = { from, to, scope: scopeOf(who), ...(schoolId ? { schoolId } : {}) };
    if (q.format === 'csv') {
      const name = `ledger-${schoolId ?? 'region'}-${iso(from)!.slice(0, 10)}-${iso(to)!.slice(0, 10)}.csv`;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('cache-control', 'no-store')
        .send(Readable.from(csvLines(deps.ledger.each(query))));
    }
    const limit = q.limit ? Number(q.limit) : 500;
    const offset = q.offset ? Number(q.offset) : 0;
    const { total, rows } = await deps.ledger.search({ ...query, limit, offset });
    return { ...(schoolId ? { schoolId } : {}), from: iso(from), to: iso(to), total, limit, offset, rows: rows.map(ledgerView) };
  };

  r.get(
    '/api/schools/:id/ledger',
    {
      schema: {
        summary: "One school's ledger over a date range (JSON, or CSV with ?format=csv)",
        params: IdParams,
        querystring: RangeQuery,
      },
      preHandler: read,
    },
    async (req, reply) => ranged(req.query, req.principal!, reply, req.params.id),
  );

  r.get(
    '/api/ledger',
    {
      schema: { summary: "Every school's ledger over a date range (JSON, or CSV with ?format=csv)", querystring: RangeQuery },
      preHandler: read,
    },
    async (req, reply) => ranged(req.query, req.principal!, reply, undefined),
  );
}
