import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { mayAccessLesson, type TokenService } from '../auth/tokens.js';
import { ROLES } from '../domain/index.js';
import { LessoncastError } from '../errors.js';
import type { LessonDetail } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import { RoleSchema } from '../signalling/protocol.js';
import { requirePermission } from './authGuard.js';

const IdPattern = '^[A-Za-z0-9._:@-]{1,128}$';

const CreateLessonBody = Type.Object(
  {
    title: Type.String({ minLength: 1, maxLength: 200 }),
    subject: Type.Optional(Type.String({ maxLength: 100 })),
    instructorId: Type.Optional(Type.String({ pattern: IdPattern })),
    schools: Type.Optional(Type.Array(Type.String({ pattern: IdPattern }), { maxItems: 10000, uniqueItems: true })),
    record: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const MintBody = Type.Object(
  {
    role: RoleSchema,
    id: Type.String({ pattern: IdPattern }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    lessons: Type.Optional(Type.Union([Type.Literal('*'), Type.Array(Type.String({ pattern: IdPattern }), { maxItems: 1000 })])),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 31 * 24 * 3600 })),
  },
  { additionalProperties: false },
);

const LessonParams = Type.Object({ id: Type.String({ pattern: IdPattern }) });

export interface LessonRouteDeps {
  registry: LessonRegistry;
  tokens: TokenService;
  /** In a cluster: the detail of a lesson whose origin is another node, asked of that node. */
  detailElsewhere?(lessonId: string, node: string): Promise<LessonDetail>;
}

/** REST for lessons and tokens: create/list lessons, admin token minting. */
export function registerLessonRoutes(app: FastifyInstance, deps: LessonRouteDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { registry, tokens } = deps;

  r.post(
    '/api/lessons',
    { schema: { summary: 'Create a lesson on this node', body: CreateLessonBody }, preHandler: requirePermission(tokens, 'lesson.create') },
    async (req, reply) => {
      const who = req.principal!;
      const body: Static<typeof CreateLessonBody> = req.body;
      // An instructor creates lessons for themself; an admin names the instructor.
      const instructorId = who.role === 'admin' ? body.instructorId : who.id;
      if (!instructorId) throw new LessoncastError('INVALID_REQUEST', 'instructorId is required when an admin creates a lesson');
      if (who.role !== 'admin' && body.instructorId && body.instructorId !== who.id) {
        throw new LessoncastError('FORBIDDEN', 'an instructor creates lessons only for themself');
      }
      const lesson = await registry.create({ ...body, instructorId });
      req.log.info({ lesson: lesson.id, instructor: instructorId }, 'lesson created');
      return reply.status(201).send({ lesson: lesson.view(), schools: lesson.def.schools });
    },
  );

  r.get(
    '/api/lessons',
    { schema: { summary: 'The lessons of this node the caller may see' }, preHandler: requirePermission(tokens, 'lesson.join') },
    async (req) => {
      const who = req.principal!;
      const visible = registry.list().filter((l) => mayAccessLesson(who, l.id) || l.def.instructorId === who.id);
      return { lessons: visible.map((l) => ({ ...l.view(), participants: l.visibleParticipants().length })) };
    },
  );

  r.get(
    '/api/lessons/:id',
    { schema: { summary: 'One lesson with who is in it', params: LessonParams }, preHandler: requirePermission(tokens, 'lesson.join') },
    async (req) => {
      const who = req.principal!;
      const detail = await registry.resolve(req.params.id).then(
        (lesson) => lesson.detail(),
        (err: unknown) => {
          const node = err instanceof LessoncastError && err.code === 'LESSON_ELSEWHERE' ? err.details?.['node'] : undefined;
          if (typeof node !== 'string' || !deps.detailElsewhere) throw err;
          return deps.detailElsewhere(req.params.id, node);
        },
      );
      if (!mayAccessLesson(who, detail.lesson.id) && detail.lesson.instructorId !== who.id)
        throw new LessoncastError('FORBIDDEN', 'your token does not allow this lesson');
      return detail;
    },
  );

  r.post(
    '/api/tokens',
    { schema: { summary: 'Mint a token', body: MintBody }, preHandler: requirePermission(tokens, 'tokens.mint') },
    async (req, reply) => {
      const body = req.body;
      if (!ROLES.includes(body.role)) throw new LessoncastError('INVALID_REQUEST', 'unknown role');
      const minted = await tokens.mint({
        id: body.id,
        role: body.role,
        ...(body.name ? { name: body.name } : {}),
        ...(body.lessons ? { lessons: body.lessons } : {}),
        ...(body.ttlSeconds ? { ttlSeconds: body.ttlSeconds } : {}),
      });
      req.log.info({ role: body.role, subject: body.id, by: req.principal!.id }, 'token minted');
      return reply.status(201).send(minted);
    },
  );
}
