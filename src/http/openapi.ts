import type { FastifyInstance, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { ROLE_PERMISSIONS, type Permission } from '../auth/permissions.js';
import { ROLES } from '../domain/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after registerOpenApi, one entry per method. */
    routeList(): Array<{ method: string; url: string }>;
  }
}

/** Where the generated description is served. */
export const OPENAPI_PATH = '/api/openapi.json';

/**
 * A preHandler that checks a permission says which one, so that the OpenAPI document states who
 * may call each route from the same value that enforces it (not from a second, hand-kept table).
 */
export interface PermissionCheck {
  readonly permission?: Permission;
  /** Also opened by an `?access=` capability link (archive files, the MP4). */
  readonly accessLink?: boolean;
}

export function markPermission<F extends object>(handler: F, permission: Permission, accessLink = false): F & PermissionCheck {
  return Object.assign(handler, { permission, accessLink });
}

const problem = {
  type: 'object' as const,
  description: 'application/problem+json (docs/rest.md#errors)',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string' as const, example: 'urn:lessoncast:error:FORBIDDEN' },
    title: { type: 'string' as const },
    status: { type: 'integer' as const },
    code: { type: 'string' as const, description: 'stable error code' },
    detail: { type: 'string' as const, description: 'for people; may change' },
    details: { type: 'object' as const, additionalProperties: true },
  },
};

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** Groups for the document, by the path a route lives under (first match wins). */
const TAGS: ReadonlyArray<{ name: string; prefix: RegExp; description: string }> = [
  {
    name: 'ledger',
    prefix: /^\/api\/(ledger|lessons\/[^/]+\/ledger|schools\/[^/]+\/ledger)/,
    description: 'Per-school attendance and quality of each lesson (docs/catalog.md#the-ledger)',
  },
  { name: 'lessons', prefix: /^\/api\/(lessons|tokens)/, description: 'Lessons and tokens (docs/rest.md)' },
  {
    name: 'catalog',
    prefix: /^\/api\/(schools|people|subjects|timetable|devices|revocations)/,
    description: 'Schools, people, subjects, the timetable, boards and revocation (docs/catalog.md)',
  },
  { name: 'live', prefix: /^\/api\/live/, description: "The control room's live view (docs/monitoring.md)" },
  { name: 'archive', prefix: /^\/api\/recordings/, description: 'Recordings: search, files, download, verify (docs/recording.md)' },
  { name: 'signalling', prefix: /^\/ws$/, description: 'The WebSocket protocol (docs/protocol.md)' },
  {
    name: 'operations',
    prefix: /^\/(healthz|readyz|metrics|api\/openapi\.json)$/,
    description: 'Health, readiness, metrics, this document',
  },
  { name: 'pages', prefix: /^\//, description: 'The web pages (docs/web.md)' },
];

const rolesWith = (p: Permission): string[] => ROLES.filter((r) => ROLE_PERMISSIONS[r].has(p));

function permissionOf(route: RouteOptions): PermissionCheck | undefined {
  const handlers = [route.preHandler ?? []].flat() as PermissionCheck[];
  return handlers.find((h) => h.permission);
}

/**
 * Registers @fastify/swagger, which collects every route added after it, and serves the OpenAPI
 * 3.1 document it generates from the routes' TypeBox schemas at /api/openapi.json. Each route's
 * permission (and the roles that hold it) and the problem+json errors are added from the code.
 * Register it before any route.
 */
export async function registerOpenApi(app: FastifyInstance, info: { version: string }): Promise<void> {
  // Every route as Fastify got it (HEAD twins included), whatever the document shows: what the
  // test compares the document with, so that no route goes undescribed unnoticed.
  const routes: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  app.decorate('routeList', () => [...routes]);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'lessoncast',
        version: info.version,
        description:
          'The REST side of lessoncast. Bodies, queries and paths are validated against these schemas exactly ' +
          '(no extra fields, no coercion). Answers and error codes per endpoint: docs/rest.md; the WebSocket ' +
          'protocol of /ws and /api/live/feed: docs/protocol.md.',
      },
      tags: TAGS.map(({ name, description }) => ({ name, description })),
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        schemas: { Problem: problem },
      },
    },
    transform: ({ schema, url, route }) => {
      const s: Record<string, unknown> = { ...(schema as Record<string, unknown> | undefined) };
      const check = permissionOf(route);
      const notes: string[] = [];
      if (!s['tags']) s['tags'] = [TAGS.find((t) => t.prefix.test(url))?.name ?? 'pages'];
      if (route.websocket) {
        // @fastify/websocket hides its routes from the document; ours are part of the API.
        delete s['hide'];
        s['x-websocket'] = true;
        notes.push('WebSocket endpoint: connect with `Upgrade: websocket`; a plain GET answers 426 UPGRADE_REQUIRED.');
      }
      if (check?.permission) {
        s['security'] = check.accessLink ? [{ bearer: [] }, {}] : [{ bearer: [] }];
        s['x-permission'] = check.permission;
        notes.push(`Needs \`${check.permission}\` (${rolesWith(check.permission).join(', ')}).`);
        if (check.accessLink) notes.push('Or, without the header, an `?access=` link from POST /api/recordings/{id}/access.');
      }
      if (notes.length) s['description'] = [s['description'], ...notes].filter(Boolean).join(' ');
      return { schema: s, url };
    },
    transformObject: (doc) => {
      const spec = 'openapiObject' in doc ? doc.openapiObject : doc.swaggerObject;
      // Every operation may answer a problem; those with a permission also 401/403/429.
      for (const item of Object.values(spec.paths ?? {}) as Array<Record<string, Record<string, unknown>>>) {
        for (const op of Object.values(item)) {
          const responses = (op['responses'] ??= {}) as Record<string, unknown>;
          if (op['x-websocket']) {
            delete responses['200'];
            responses['101'] = { description: 'Switching Protocols: the WebSocket is open; the first message must authenticate' };
            responses['426'] = problemResponse('UPGRADE_REQUIRED: a plain GET');
          }
          if ('x-permission' in op) {
            responses['401'] ??= problemResponse('UNAUTHENTICATED or TOKEN_EXPIRED');
            responses['403'] ??= problemResponse('FORBIDDEN: the role lacks the permission, or the token does not cover that lesson');
            responses['429'] ??= problemResponse('RATE_LIMITED: too many failed authentications from this address (Retry-After)');
          }
          responses['4XX'] ??= problemResponse('a client error (docs/rest.md#errors)');
          responses['5XX'] ??= problemResponse('INTERNAL, UNAVAILABLE or SHUTTING_DOWN');
        }
      }
      return spec;
    },
  });
  app.get(OPENAPI_PATH, { schema: { summary: 'This OpenAPI 3.1 document' } }, async (_req, reply) =>
    reply.header('cache-control', 'no-cache').send(app.swagger()),
  );
}
