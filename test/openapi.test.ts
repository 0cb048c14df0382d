import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ROLE_PERMISSIONS, type Permission } from '../src/auth/permissions.js';
import { ROLES } from '../src/domain/index.js';
import { OPENAPI_PATH } from '../src/http/openapi.js';
import { startTestServer } from './support/lessoncast.js';

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  'x-permission'?: Permission;
  'x-websocket'?: boolean;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: Record<string, unknown> }>;
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { description: string }>;
}
type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

/** Fastify's `/a/:id/files/*` as OpenAPI writes it. */
const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
/** Routes deliberately left out of the document, each for a reason. */
const UNDOCUMENTED = new Map([['/assets/*', "the web pages' static files (scripts, styles), not an API"]]);

t.test('GET /api/openapi.json describes every route the server serves, from the route schemas', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const res = await fetch(`${s.url}${OPENAPI_PATH}`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  const doc = (await res.json()) as Doc;
  t.equal(doc.openapi, '3.1.0');
  const pkg = JSON.parse(readFileSync(path.resolve('package.json'), 'utf8')) as { version: string };
  t.same(doc.info, { ...doc.info, title: 'lessoncast', version: pkg.version }, 'title and version from package.json');

  const served = s.internals.app.routeList().filter((r) => r.method !== 'HEAD');
  t.ok(served.length >= 25, `the server has its routes (${served.length})`);
  const missing: string[] = [];
  for (const r of served) {
    if (UNDOCUMENTED.has(r.url)) continue;
    const op = doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()];
    if (!op) missing.push(`${r.method} ${r.url}`);
    else t.ok(op.summary && op.tags?.length, `${r.method} ${r.url} has a summary and a tag`);
  }
  t.same(missing, [], 'every route the server serves is in the document');
  const servedKeys = new Set(served.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
  for (const [p, item] of Object.entries(doc.paths))
    for (const m of Object.keys(item)) t.ok(servedKeys.has(`${m} ${p}`), `${m.toUpperCase()} ${p} in the document is served`);

  // The WebSocket endpoints are part of the API, though @fastify/websocket hides its routes.
  for (const ws of ['/ws', '/api/live/feed']) {
    const op = doc.paths[ws]?.['get'];
    t.ok(op?.['x-websocket'], `${ws} is marked a WebSocket endpoint`);
    t.ok(op?.responses['101'] && op.responses['426'], `${ws} answers 101 or 426`);
  }

  // Bodies come from the TypeBox schemas that validate them: exact, no extra fields.
  const create = doc.paths['/api/lessons']!['post']!;
  const body = create.requestBody!.content['application/json']!.schema;
  t.equal(body['additionalProperties'], false, 'POST /api/lessons: no field beyond the listed ones');
  t.same(body['required'], ['title']);
  t.ok((body['properties'] as Record<string, unknown>)['schools'], 'its fields are listed');
  const list = doc.paths['/api/recordings']!['get']!;
  t.ok(
    list.parameters?.some((p) => p.in === 'query' && p.name === 'limit' && p.schema['pattern']),
    'query parameters with their patterns',
  );
  t.ok(doc.components.schemas['Problem'], 'errors are described as problem+json');
  t.ok(doc.components.securitySchemes['bearer'], 'bearer tokens are the security scheme');
});

t.test('the permission each operation states is the one the server enforces', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const doc = (await (await fetch(`${s.url}${OPENAPI_PATH}`)).json()) as Doc;
  const fill = (p: string): string => p.replace('{id}', '0193a4c2-5b7e-7c41-9d2a-4f7e0c1b2a3d').replace('{*}', 'index.m3u8');
  let checked = 0;
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      // A body is validated before the token is looked at; the token check of those is covered by marking.
      if (op.requestBody || op['x-websocket']) continue;
      const permission = op['x-permission'];
      const url = `${s.url}${fill(p)}`;
      const anonymous = await fetch(url, { method: method.toUpperCase() });
      if (permission) {
        t.equal(anonymous.status, 401, `${method.toUpperCase()} ${p} refuses a request without a token`);
        t.ok(op.security?.length && op.responses['401'] && op.responses['403'], `${p} states its security and refusals`);
        const roles = ROLES.filter((r) => ROLE_PERMISSIONS[r].has(permission));
        t.match(op.description, new RegExp(`Needs \`${permission.replace('.', '\\.')}\` \\(${roles.join(', ')}\\)`));
        const outsider = ROLES.find((r) => !ROLE_PERMISSIONS[r].has(permission));
        if (outsider) {
          const refused = await fetch(url, {
            method: method.toUpperCase(),
            headers: { authorization: `Bearer ${await s.token(outsider, 'someone')}` },
          });
          t.equal(refused.status, 403, `${method.toUpperCase()} ${p} refuses ${outsider}`);
        }
        checked++;
      } else {
        t.not(anonymous.status, 401, `${method.toUpperCase()} ${p} states no permission and asks for none`);
        t.notOk(op.security, `${p} lists no security`);
      }
    }
  }
  t.ok(checked >= 8, `operations with a permission checked against the server (${checked})`);
});

t.test('docs/rest.md points to the document', async (t) => {
  const rest = readFileSync(path.resolve('docs/rest.md'), 'utf8');
  t.match(rest, OPENAPI_PATH);
});
