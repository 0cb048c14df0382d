/**
 * The web pages without a browser: every string exists in both languages with the same
 * placeholders, every key the pages name exists, the school list parser, the lesson a board
 * joins, and how the pages are served (headers that keep tokens and third parties out, a clear 503 unbuilt).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildHttpApp } from '../src/http/app.js';
import { registerWebRoutes, WEB_PAGES } from '../src/http/webRoutes.js';
import { parseSchools } from '../web/src/lib/schools.js';
import { EARLY_MS, lessonOfTheMoment, type BoardLesson } from '../web/src/pages/classroom/boardRules.js';
import { LINK_LAYERS } from '../src/domain/index.js';
import { buildWeb } from './support/browser.js';
import { rawRequest } from './support/http.js';
import { startTestServer } from './support/lessoncast.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'web');
const en = JSON.parse(readFileSync(path.join(web, 'src/i18n/en.json'), 'utf8')) as Record<string, string>;
const az = JSON.parse(readFileSync(path.join(web, 'src/i18n/az.json'), 'utf8')) as Record<string, string>;

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => f.endsWith(ext) && statSync(f).isFile());
}

t.test('both languages have the same keys, each with the same placeholders and some text', async (t) => {
  t.same(Object.keys(az).sort(), Object.keys(en).sort(), 'same keys');
  const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const [k, v] of Object.entries(en)) {
    t.ok(v.trim() && az[k]?.trim(), `${k} has text in both`);
    t.same(placeholders(az[k] ?? ''), placeholders(v), `${k} placeholders match`);
  }
});

t.test('every string the pages name exists', async (t) => {
  const named = new Set<string>();
  for (const f of filesUnder(path.join(web, 'static'), '.html')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/data-i18n(?:-title|-label|-placeholder|-doc-title)?="([^"]+)"/g)) named.add(m[1]!);
  }
  const namespaces = new Set(Object.keys(en).map((k) => k.split('.')[0]));
  for (const f of filesUnder(path.join(web, 'src'), '.ts')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/'([a-z]+\.[A-Za-z0-9.]+)'/g))
      if (namespaces.has(m[1]!.split('.')[0])) named.add(m[1]!);
  }
  t.ok(named.size > 150, `${named.size} keys named by the pages`);
  const missing = [...named].filter((k) => !(k in en));
  t.same(missing, [], 'none missing');
  // Keys built at run time from a value.
  for (const rule of ['packetLoss', 'schoolDisconnected', 'recordingFault', 'audioOnly'])
    t.ok(`alert.${rule}` in en && `alert.${rule}.cleared` in en, `alert texts for ${rule}`);
  for (const state of ['created', 'live', 'ended']) t.ok(`state.${state}` in en, `state text for ${state}`);
  for (const layer of LINK_LAYERS) t.ok(`link.${layer}` in en, `layer text for ${layer}`);
});

t.test('the invited schools list', async (t) => {
  t.same(parseSchools('school-1, School No. 1\n\n  school-2 \nschool-1, again\n'), {
    schools: [
      { id: 'school-1', name: 'School No. 1' },
      { id: 'school-2', name: 'school-2' },
    ],
    bad: [],
  });
  t.same(parseSchools('bad id, X\nok-1,Məktəb №1').bad, ['bad id, X'], 'ids follow the API rule; names may be any text');
  t.same(parseSchools('ok-1,Məktəb №1').schools, [{ id: 'ok-1', name: 'Məktəb №1' }]);
});

t.test('the lesson a school board joins by itself', async (t) => {
  const now = Date.parse('2027-02-01T09:00:00Z');
  const at = (min: number) => new Date(now + min * 60_000).toISOString();
  const lesson = (id: string, state: BoardLesson['state'], from: number, to: number): BoardLesson => ({
    id,
    title: id,
    state,
    startsAt: at(from),
    endsAt: at(to),
  });
  const later = lesson('later', 'created', 120, 165);
  const soon = lesson('soon', 'created', EARLY_MS / 60_000 - 1, 60);
  const over = lesson('over', 'created', -90, -45);
  t.equal(lessonOfTheMoment([later, over], now), undefined, 'none due: it waits (a lesson whose slot passed is not joined)');
  t.equal(lessonOfTheMoment([later, soon, over], now)?.id, 'soon', 'one due within the early window');
  t.equal(lessonOfTheMoment([soon, lesson('late', 'live', -200, -150)], now)?.id, 'late', 'a live lesson wins, even past its slot');
  t.equal(
    lessonOfTheMoment([lesson('gone', 'cancelled', -5, 40), lesson('done', 'ended', -60, 30)], now),
    undefined,
    'never a cancelled or ended one',
  );
});

async function appWith(dir: string) {
  const app = await buildHttpApp({ logLevel: 'silent', maxMessageBytes: 65536, readiness: [], isDraining: () => false });
  await registerWebRoutes(app, { dir, publicUrl: () => 'https://lessons.example:8443' });
  await app.ready();
  return app;
}

t.test('pages are served with headers that keep tokens and third parties out', async (t) => {
  buildWeb();
  const app = await appWith(path.join(web, 'dist'));
  t.teardown(() => app.close());
  for (const route of Object.keys(WEB_PAGES)) {
    const res = await app.inject({ url: route, headers: { host: 'lessons.example:8443' } });
    t.equal(res.statusCode, 200, `${route} is served`);
    t.match(res.headers['content-type'], /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    t.match(csp, /default-src 'self'/, `${route}: only this server's resources`);
    t.match(csp, /connect-src 'self' wss:\/\/lessons\.example:8443;/, `${route}: sockets to the public URL only`);
    t.equal(res.headers['referrer-policy'], 'no-referrer');
    t.notMatch(res.body, /https?:\/\//, `${route} loads nothing from elsewhere`);
  }
  const css = await app.inject({ url: '/assets/style.css' });
  t.equal(css.statusCode, 200);
  t.match(css.headers['content-type'], /^text\/css/);
  const br = await app.inject({ url: '/assets/studio.js', headers: { 'accept-encoding': 'br, gzip' } });
  t.equal(br.headers['content-encoding'], 'br', 'scripts go out pre-compressed');
  t.equal((await app.inject({ url: '/assets/../../package.json' })).statusCode, 404, 'nothing outside the assets');
  const hostile = await app.inject({ url: '/studio', headers: { host: 'x"; script-src *' } });
  t.notMatch(String(hostile.headers['content-security-policy']), /script-src \*/, 'a strange Host header cannot widen the policy');
  const evil = await app.inject({ url: '/studio', headers: { host: 'evil.example:666' } });
  t.notMatch(String(evil.headers['content-security-policy']), /evil/, 'nor can a plausible one');
});

t.test("a real server's policy names where it listens, whatever Host the request names", async (t) => {
  buildWeb();
  const s = await startTestServer();
  t.teardown(() => s.close());
  const { host } = new URL(s.url);
  for (const route of ['/studio', '/control']) {
    const res = await rawRequest(s.url, 'GET', route, { host: 'evil.example:666' });
    t.equal(res.status, 200, `${route} is served`);
    const csp = res.headers['content-security-policy'] ?? '';
    t.match(csp, `connect-src 'self' ws://${host};`, `${route}: sockets to ${host} (the derived public URL) only`);
    t.notMatch(csp, /evil/, `${route}: the Host header is not in the policy`);
  }
});

t.test('without a build, pages answer 503 with what to do', async (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'lessoncast-web-'));
  const app = await appWith(empty);
  t.teardown(async () => {
    await app.close();
    rmSync(empty, { recursive: true, force: true });
  });
  const res = await app.inject({ url: '/classroom' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), { code: 'UNAVAILABLE', detail: /build-web/ });
});
