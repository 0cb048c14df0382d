import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { mayAccessLesson, type TokenService } from '../auth/tokens.js';
import { LessoncastError } from '../errors.js';
import type { LiveState } from '../live/liveState.js';
import type { LessonHistory } from '../monitor/history.js';
import { visibleSnapshot } from '../signalling/liveFeed.js';
import { requirePermission } from './authGuard.js';

/** Ids that are also safe folder names (no leading dot, no slash). */
const SafeId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$' });

const HistoryParams = Type.Object({ id: SafeId });
const HistoryQuery = Type.Object(
  {
    school: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._:@-]{1,128}$' })),
    since: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:\\d{2})$' })),
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$' })),
  },
  { additionalProperties: false },
);

const MAX_HISTORY = 100_000;
const DEFAULT_HISTORY = 20_000;

/** The control room's REST: live snapshot across nodes and a lesson's quality history (the live feed WebSocket is signalling's LiveFeed). */
export function registerLiveRoutes(app: FastifyInstance, deps: { tokens: TokenService; live: LiveState; history: LessonHistory }): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { tokens, live, history } = deps;

  r.get(
    '/api/live',
    {
      schema: { summary: 'The live view of every node: lessons, schools, quality, alerts' },
      preHandler: requirePermission(tokens, 'live.read'),
    },
    async (req) => visibleSnapshot(await live.snapshot(), req.principal!),
  );

  r.get(
    '/api/live/lessons/:id/history',
    {
      schema: { summary: "A lesson's quality history on this node", params: HistoryParams, querystring: HistoryQuery },
      preHandler: requirePermission(tokens, 'live.read'),
    },
    async (req) => {
      const { id } = req.params;
      if (!mayAccessLesson(req.principal!, id)) throw new LessoncastError('FORBIDDEN', 'your token does not allow this lesson');
      if (!history.has(id)) throw new LessoncastError('NOT_FOUND', `no live history of lesson ${id} here`);
      const since = req.query.since ? new Date(req.query.since) : undefined;
      if (since && Number.isNaN(since.getTime())) throw new LessoncastError('INVALID_REQUEST', 'since is not a valid time');
      const limit = Math.min(MAX_HISTORY, req.query.limit ? Number(req.query.limit) : DEFAULT_HISTORY);
      return history.read(id, {
        ...(req.query.school ? { school: req.query.school } : {}),
        ...(since ? { since: since.toISOString() } : {}),
        limit,
      });
    },
  );
}
