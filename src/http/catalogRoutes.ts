import type { FastifyInstance } from 'fastify';
import { Type, type Static, type TSchema } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { v7 as uuidv7 } from 'uuid';
import type { TokenService } from '../auth/tokens.js';
import type { CatalogStore, Directory } from '../catalog/store.js';
import { occurrences } from '../catalog/timetable.js';
import { PERSON_ROLES, type Revocation, type StoredLesson } from '../catalog/types.js';
import { LessoncastError } from '../errors.js';
import type { LessonRegistry } from '../lessons/registry.js';
import { requirePermission } from './authGuard.js';

export const ID_PATTERN = '^[A-Za-z0-9._:@-]{1,128}$';
const Id = Type.String({ pattern: ID_PATTERN });
const IdParams = Type.Object({ id: Id }, { additionalProperties: false });
const Name = Type.String({ minLength: 1, maxLength: 200 });
/** An instant with its offset: 2027-02-01T09:00:00Z, 2027-02-01T13:00+04:00. */
export const Instant = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,3})?)?(Z|[+-]\\d{2}:\\d{2})$' });
const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' });
const ListQuery = Type.Object(
  { deleted: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
  { additionalProperties: false },
);

const SchoolBody = Type.Object(
  {
    name: Name,
    district: Type.Optional(Type.String({ maxLength: 200 })),
    boards: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  },
  { additionalProperties: false },
);
const PersonBody = Type.Object({ name: Name, role: Type.Union(PERSON_ROLES.map((r) => Type.Literal(r))) }, { additionalProperties: false });
const SubjectBody = Type.Object({ name: Name }, { additionalProperties: false });
const TimetableBody = Type.Object(
  {
    title: Name,
    subjectId: Id,
    instructorId: Id,
    schools: Type.Array(Id, { minItems: 1, maxItems: 1000, uniqueItems: true }),
    startsAt: Instant,
    endsAt: Instant,
    record: Type.Optional(Type.Boolean()),
    weekly: Type.Optional(
      Type.Object(
        { until: Day, except: Type.Optional(Type.Array(Day, { maxItems: 100, uniqueItems: true })) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const TimetableQuery = Type.Object(
  {
    from: Type.Optional(Instant),
    to: Type.Optional(Instant),
    schoolId: Type.Optional(Id),
    instructorId: Type.Optional(Id),
  },
  { additionalProperties: false },
);

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const instant = (value: string, field: string): number => {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new LessoncastError('TIMETABLE_INVALID', `${field}: ${value} is not a time`, { field });
  return ms;
};

/** A lesson of the timetable as REST shows it (times as ISO strings). */
export function timetableView(l: StoredLesson) {
  return {
    ...l,
    startsAt: iso(l.startsAt),
    endsAt: iso(l.endsAt),
    createdAt: iso(l.createdAt),
    startedAt: iso(l.startedAt),
    endedAt: iso(l.endedAt),
  };
}

/** An entity of a directory as REST shows it (times as ISO strings). */
function entityView<T extends { createdAt: number; updatedAt: number; deletedAt: number | null }>(e: T) {
  return { ...e, createdAt: iso(e.createdAt), updatedAt: iso(e.updatedAt), deletedAt: iso(e.deletedAt) };
}

export interface CatalogRoutesDeps {
  catalog: CatalogStore;
  tokens: TokenService;
  registry: LessonRegistry;
  /** Stores a revocation and tells every node (deleting a person or a school revokes their tokens). */
  revoke(r: Revocation): Promise<void>;
  defaultLessonRecord: boolean;
}

/** REST for the catalog: schools, people, subjects (put, list, soft delete) and the timetable. */
export function registerCatalogRoutes(app: FastifyInstance, deps: CatalogRoutesDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { catalog, tokens } = deps;
  const read = requirePermission(tokens, 'catalog.read');
  const manage = requirePermission(tokens, 'catalog.manage');

  /** GET list, GET one, PUT (201 created / 200 replaced), DELETE (soft; `onDelete` after) of one directory. */
  const directory = <T extends { id: string; createdAt: number; updatedAt: number; deletedAt: number | null }, I, B extends TSchema>(
    base: string,
    key: string,
    dir: Directory<T, I>,
    body: B,
    input: (b: Static<B>) => I,
    onDelete?: (entity: T) => Promise<void>,
  ): void => {
    r.get(`/api/${base}`, { schema: { summary: `List ${base}`, querystring: ListQuery }, preHandler: read }, async (req) => ({
      [base]: (await dir.list({ includeDeleted: req.query.deleted === 'true' })).map(entityView),
    }));
    r.get(`/api/${base}/:id`, { schema: { summary: `One of the ${base}`, params: IdParams }, preHandler: read }, async (req) => ({
      [key]: entityView(await dir.get(req.params.id)),
    }));
    r.put(
      `/api/${base}/:id`,
      { schema: { summary: `Create or replace one of the ${base}`, params: IdParams, body }, preHandler: manage },
      async (req, reply) => {
        const { entity, created } = await dir.put(req.params.id, input(req.body as Static<B>));
        req.log.info({ [key]: entity.id, created, by: req.principal!.id }, `${key} saved`);
        return reply.status(created ? 201 : 200).send({ [key]: entityView(entity) });
      },
    );
    r.delete(
      `/api/${base}/:id`,
      { schema: { summary: `Delete one of the ${base} (soft: its recordings and history stay)`, params: IdParams }, preHandler: manage },
      async (req) => {
        const entity = await dir.remove(req.params.id);
        await onDelete?.(entity);
        req.log.info({ [key]: entity.id, by: req.principal!.id }, `${key} deleted`);
        return { [key]: entityView(entity) };
      },
    );
  };

  directory(
    'schools',
    'school',
    catalog.schools,
    SchoolBody,
    (b) => ({ name: b.name, district: b.district ?? '', boards: b.boards ?? 1 }),
    (s) => deps.revoke({ kind: 'school', subject: s.id, at: s.deletedAt!, reason: 'school deleted' }),
  );
  directory(
    'people',
    'person',
    catalog.people,
    PersonBody,
    (b) => ({ name: b.name, role: b.role }),
    (p) => deps.revoke({ kind: 'person', subject: p.id, at: p.deletedAt!, reason: 'person deleted' }),
  );
  directory('subjects', 'subject', catalog.subjects, SubjectBody, (b) => ({ name: b.name }));

  r.post(
    '/api/timetable',
    { schema: { summary: 'Schedule a lesson or a weekly series (conflicts refused)', body: TimetableBody }, preHandler: manage },
    async (req, reply) => {
      const b = req.body;
      const first = { startsAt: instant(b.startsAt, 'startsAt'), endsAt: instant(b.endsAt, 'endsAt') };
      const slots = occurrences(first, b.weekly);
      await catalog.subjects.get(b.subjectId);
      const instructor = await catalog.people.get(b.instructorId);
      if (instructor.role !== 'instructor')
        throw new LessoncastError('TIMETABLE_INVALID', `${b.instructorId} is ${instructor.role}, not an instructor`, {
          field: 'instructorId',
        });
      for (const schoolId of b.schools) {
        const school = await catalog.schools.find(schoolId);
        if (!school || school.deletedAt !== null) throw new LessoncastError('SCHOOL_NOT_FOUND', `no school ${schoolId}`, { schoolId });
      }
      const seriesId = b.weekly ? uuidv7() : null;
      const now = Date.now();
      const lessons: StoredLesson[] = slots.map((slot) => ({
        id: uuidv7(),
        title: b.title,
        subject: b.subjectId,
        instructorId: b.instructorId,
        schools: [...b.schools].sort(),
        record: b.record ?? deps.defaultLessonRecord,
        seriesId,
        startsAt: slot.startsAt,
        endsAt: slot.endsAt,
        state: 'created',
        createdAt: now,
        startedAt: null,
        endedAt: null,
      }));
      await catalog.schedule(lessons);
      req.log.info({ lessons: lessons.length, series: seriesId, instructor: b.instructorId, by: req.principal!.id }, 'lessons scheduled');
      return reply.status(201).send({ seriesId, lessons: lessons.map(timetableView) });
    },
  );

  r.get(
    '/api/timetable',
    { schema: { summary: 'The timetable between two times', querystring: TimetableQuery }, preHandler: read },
    async (req) => {
      const q = req.query;
      const from = q.from ? instant(q.from, 'from') : Date.now() - 12 * 3600_000;
      const to = q.to ? instant(q.to, 'to') : from + 7 * 24 * 3600_000;
      const lessons = await catalog.listLessons({
        from,
        to,
        ...(q.schoolId ? { schoolId: q.schoolId } : {}),
        ...(q.instructorId ? { instructorId: q.instructorId } : {}),
      });
      return { from: iso(from), to: iso(to), lessons: lessons.filter((l) => l.startsAt !== null).map(timetableView) };
    },
  );

  r.delete(
    '/api/timetable/:id',
    { schema: { summary: 'Cancel a scheduled lesson', params: IdParams }, preHandler: manage },
    async (req) => {
      const lesson = await catalog.cancelLesson(req.params.id);
      // A node holding it (someone opened it early) ends it: nobody may join a cancelled lesson.
      deps.registry.find(lesson.id)?.end(undefined, 'cancelled');
      req.log.info({ lesson: lesson.id, by: req.principal!.id }, 'lesson cancelled');
      return { lesson: timetableView(lesson) };
    },
  );
}
