/**
 * The archive index in the catalog database, on both engines (SQLite through node:sqlite, a real
 * PostgreSQL): every search answers exactly what reading every manifest answers (matchesSearch,
 * the scan's own rule), over hundreds of generated recordings and random queries; and the archive
 * keeps it in line with the folder (reconcile), rebuilds it (reindex) and searches the manifests
 * when the database does not answer.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ArchiveIndex, archiveIndexSchemas, archiveIndexSpanSchema } from '../src/catalog/archiveIndex.js';
import type { Database } from '../src/catalog/database.js';
import { PostgresDatabase } from '../src/catalog/postgres.js';
import { SqliteDatabase } from '../src/catalog/sqlite.js';
import { Archive, matchesSearch, type RecordingSearch, type RecordingSummary, type SearchScope } from '../src/recording/archive.js';
import { promisify } from 'node:util';
import { builtEntry } from './support/dist.js';
import { startTestServer } from './support/lessoncast.js';
import { makeRecording } from './support/recordingFixture.js';
import { startPostgres } from './support/postgres.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-index-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const pg = await startPostgres();
t.teardown(() => pg.close());

const engines: Array<{ name: string; open(): Promise<Database> }> = [
  { name: 'sqlite', open: async () => new SqliteDatabase(path.join(dir, `catalog-${randomUUID()}.sqlite`)) },
  {
    name: 'postgres',
    open: async () => new PostgresDatabase(await pg.database(), { connectTimeoutSeconds: 5, maxConnections: 4, log: quiet }),
  },
];

async function indexOn(db: Database, countCap?: number): Promise<ArchiveIndex> {
  await db.transaction(async (tx) => {
    for (const statement of archiveIndexSchemas(db.dialect)) await tx.run(statement);
  });
  return new ArchiveIndex(db, countCap);
}

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
}
const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

const TITLES = [
  'Levers',
  'Acids and bases',
  'Fractions 50% off',
  'Ədəbiyyat: şeir',
  'C_programming [intro]',
  'Robots*',
  'Maqnit sahəsi',
  'Photosynthesis',
];
const SUBJECTS = ['physics', 'Chemistry', 'math', 'Ədəbiyyat', 'informatics', 'biology'];
const SCHOOLS = Array.from({ length: 12 }, (_, i) => ({
  id: `school-${i + 1}`,
  name: pick(rng(i + 7), ['Northside', 'Riverside', 'Gəncə №5', 'Lənkəran', 'Hill_Top']) + ` ${i}`,
}));
const NOW = Date.parse('2026-06-01T12:00:00Z');

function summaries(n: number, seed: number): RecordingSummary[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    // Whole seconds on a few days, so that ties in startedAt happen and the id breaks them.
    const started = NOW - Math.floor(r() * 40) * 86_400_000 + Math.floor(r() * 6) * 3600_000;
    const ongoing = r() < 0.05;
    const schools = SCHOOLS.filter(() => r() < 0.2);
    return {
      id: `0193a4c2-${String(i).padStart(4, '0')}-7000-8000-${randomUUID().slice(-12)}`,
      title: `${pick(r, TITLES)} ${i % 7}`,
      subject: pick(r, SUBJECTS),
      instructorId: `teacher-${Math.floor(r() * 8)}`,
      state: ongoing ? 'recording' : 'complete',
      recovered: false,
      pinned: r() < 0.1,
      startedAt: new Date(started).toISOString(),
      endedAt: ongoing ? null : new Date(started + 45 * 60_000).toISOString(),
      durationSeconds: 2700,
      sizeBytes: 1000 + i,
      schools,
      invitedSchools: r() < 0.5 ? [pick(r, SCHOOLS).id] : [],
      tracks: [],
      faults: 0,
    };
  });
}

/** What the manifests answer: the scan's rule, its order (newest first, then id), its paging. */
function expected(all: RecordingSummary[], q: RecordingSearch, scope: SearchScope): { total: number; ids: string[] } {
  const hits = all
    .filter((s) => (scope === 'all' || scope.includes(s.id)) && matchesSearch(s, q, NOW))
    .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const offset = q.offset ?? 0;
  return { total: hits.length, ids: hits.slice(offset, offset + (q.limit ?? 100)).map((s) => s.id) };
}

function randomQuery(r: () => number, all: RecordingSummary[]): RecordingSearch {
  const q: RecordingSearch = {};
  if (r() < 0.3) q.from = new Date(NOW - Math.floor(r() * 45) * 86_400_000);
  if (r() < 0.3) q.to = new Date(NOW - Math.floor(r() * 45) * 86_400_000);
  if (r() < 0.25) q.instructor = `teacher-${Math.floor(r() * 9)}`;
  if (r() < 0.25) q.school = pick(r, SCHOOLS).id;
  if (r() < 0.2) q.subject = pick(r, SUBJECTS).toUpperCase();
  if (r() < 0.4) {
    // A piece of some recording's text, or of a school's name, in any case.
    const source = pick(r, [pick(r, all).title, pick(r, SCHOOLS).name, pick(r, SUBJECTS)]);
    const start = Math.floor(r() * source.length);
    const piece = source.slice(start, start + 1 + Math.floor(r() * 6));
    q.q = r() < 0.5 ? piece.toUpperCase() : piece;
  }
  if (r() < 0.5) q.limit = 1 + Math.floor(r() * 30);
  if (r() < 0.3) q.offset = Math.floor(r() * 40);
  return q;
}

for (const engine of engines) {
  t.test(`${engine.name}: every search answers what reading the manifests answers`, async (t) => {
    const db = await engine.open();
    t.teardown(() => db.close());
    const index = await indexOn(db);
    const all = summaries(400, 16);
    await index.put(all);
    const check = async (q: RecordingSearch, scope: SearchScope, label: string) => {
      const got = await index.search(q, scope, NOW);
      const want = expected(all, q, scope);
      return (
        t.equal(got.total, want.total, `${label}: total`) &&
        t.same(
          got.recordings.map((x) => x.id),
          want.ids,
          `${label}: the page, in order`,
        )
      );
    };
    // The edges by name: wildcard characters of GLOB and LIKE are plain text to a search, and so are
    // Azerbaijani letters in either case; one and two letters (below a trigram) still search.
    for (const q of ['50%', '_prog', '[intro]', 'robots*', 'ƏDƏB', 'şeir', 'gəncə №5', 'a', 'le', 'no such thing', 'hill_top'])
      await check({ q, limit: 1000 }, 'all', `text "${q}"`);
    await check({ limit: 1000 }, 'all', 'everything');
    await check({ from: new Date(NOW + 86_400_000), limit: 1000 }, 'all', 'from tomorrow: nothing ongoing lasts that long');
    await check({ subject: 'CHEMISTRY', limit: 1000 }, 'all', 'subject in any case');
    const some = all.filter((_, i) => i % 9 === 0).map((s) => s.id);
    await check({ limit: 1000 }, some, "a token's lessons");
    await check({ q: 'e', limit: 1000 }, [], 'a token with no lessons sees nothing');
    const r = rng(2026);
    let agreed = 0;
    for (let i = 0; i < 150; i++) {
      const q = randomQuery(r, all);
      if (await check(q, r() < 0.2 ? some : 'all', `query ${i} ${JSON.stringify(q)}`)) agreed++;
    }
    t.equal(agreed, 150, 'all 150 random queries agree with the manifests');
    const full = await index.search({ limit: 1 }, 'all', NOW);
    t.same(
      full.recordings[0],
      expected(all, { limit: 1 }, 'all').ids[0] && all.find((s) => s.id === full.recordings[0]!.id),
      'a hit is the summary as put',
    );
  });

  t.test(`${engine.name}: a broad search stops counting at the cap; a narrow one counts every match`, async (t) => {
    const db = await engine.open();
    t.teardown(() => db.close());
    const index = await indexOn(db, 20);
    const all = summaries(200, 8);
    await index.put(all);
    for (const [label, q] of [
      ['everything', { limit: 5, offset: 30 }],
      ['a date range', { from: new Date(NOW - 400 * 86_400_000), to: new Date(NOW), limit: 5 }],
    ] as Array<[string, RecordingSearch]>) {
      const got = await index.search(q, 'all', NOW);
      const want = expected(all, q, 'all');
      t.ok(want.total > 20, `${label}: more matches than the cap (${want.total})`);
      t.match(got, { total: 20, totalCapped: true }, `${label}: total is the cap, said to be capped`);
      t.same(
        got.recordings.map((x) => x.id),
        want.ids,
        `${label}: the page is still the right one`,
      );
    }
    const school = all.find((s) => s.invitedSchools.length > 0)!.invitedSchools[0]!;
    for (const [label, q] of [
      ['a school', { school, limit: 5 }],
      ['text', { q: 'e', limit: 5 }],
      ['an instructor', { instructor: all[0]!.instructorId, limit: 5 }],
      ['a subject', { subject: all[0]!.subject, limit: 5 }],
    ] as Array<[string, RecordingSearch]>) {
      const got = await index.search(q, 'all', NOW);
      const want = expected(all, q, 'all');
      t.equal(got.total, want.total, `${label}: exact total (${want.total})`);
      t.notOk(got.totalCapped, `${label}: not capped`);
      t.same(
        got.recordings.map((x) => x.id),
        want.ids,
        `${label}: the page`,
      );
    }
  });

  t.test(`${engine.name}: version 5 fills the ends of a school's rows from the recordings`, async (t) => {
    const db = await engine.open();
    t.teardown(() => db.close());
    const index = await indexOn(db);
    const all = summaries(200, 11);
    await index.put(all);
    // Rows as version 4 left them: no end; then version 5's fill.
    await db.run('UPDATE recording_schools SET ended_at = NULL');
    await db.run(archiveIndexSpanSchema(db.dialect)[1]!);
    const school = all.find((s) => s.invitedSchools.length > 0)!.invitedSchools[0]!;
    const q: RecordingSearch = { school, from: new Date(NOW - 20 * 86_400_000), to: new Date(NOW), limit: 1000 };
    const got = await index.search(q, 'all', NOW);
    const want = expected(all, q, 'all');
    t.ok(want.total > 0, `the school has recordings in the range (${want.total})`);
    t.same(
      { total: got.total, ids: got.recordings.map((x) => x.id) },
      want,
      "a school's search by dates after the fill agrees with the manifests",
    );
  });

  t.test(`${engine.name}: put replaces, remove removes, states and clear`, async (t) => {
    const db = await engine.open();
    t.teardown(() => db.close());
    const index = await indexOn(db);
    const [a, b] = summaries(2, 3);
    await index.put([a!, b!]);
    await index.put([
      { ...a!, title: 'Renamed lesson', schools: [{ id: 'school-99', name: 'Elsewhere' }], invitedSchools: [], state: 'complete' },
    ]);
    t.same(
      (await index.search({ q: 'renamed' }, 'all')).recordings.map((x) => x.id),
      [a!.id],
      'the new title is found',
    );
    t.equal((await index.search({ q: a!.title }, 'all')).recordings.filter((x) => x.id === a!.id).length, 0, 'the old one is not');
    t.same(
      (await index.search({ school: 'school-99' }, 'all')).recordings.map((x) => x.id),
      [a!.id],
      'its schools replaced',
    );
    t.equal((await index.states()).size, 2, 'one row per recording');
    await index.remove([a!.id]);
    t.same([...(await index.states()).keys()], [b!.id], 'removed');
    t.equal((await index.search({ q: 'renamed' }, 'all')).total, 0, 'and its text with it');
    await index.clear();
    t.equal((await index.search({}, 'all')).total, 0, 'cleared');
  });
}

t.test('the archive keeps its index in line with the folder, rebuilds it, and searches the manifests without it', async (t) => {
  const folder = mkdtempSync(path.join(dir, 'recordings-'));
  const db = new SqliteDatabase(path.join(dir, 'archive-index.sqlite'));
  t.teardown(() => db.close());
  const index = await indexOn(db);
  const archive = new Archive({ recordingsDir: folder, ffmpegPath: '/usr/bin/ffmpeg', log: quiet, isLive: () => false });
  const make = (id: string, title: string, state: 'recording' | 'complete' = 'complete') =>
    makeRecording(folder, { id, title, seconds: 0, state, startedAt: new Date(Date.now() - 3600_000) });
  const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  await make(a, 'Levers');
  await make(b, 'Pulleys');
  await make(c, 'Gears', 'recording');
  archive.useIndex(index);
  const titles = async (scope: SearchScope = 'all') => (await archive.list({}, scope)).recordings.map((r) => r.title).sort();
  t.same(await titles(), ['Gears', 'Levers', 'Pulleys'], 'before the first reconcile, the manifests answer');
  t.equal((await index.states()).size, 0, 'and the index is still empty');

  const first = await archive.reconcile();
  t.match(first, { added: 3, removed: 0, refreshed: 0, total: 3 }, 'the first reconcile adds what is on disk');
  t.same(await titles(), ['Gears', 'Levers', 'Pulleys'], 'the index answers the same');

  // Behind the archive's back: one recording appears (another node, a restore), one disappears,
  // and the one being written ends.
  await make(d, 'Springs');
  await rm(path.join(folder, b), { recursive: true });
  await make(c, 'Gears', 'complete');
  const second = await archive.reconcile();
  t.match(second, { added: 1, removed: 1, refreshed: 1, total: 3 }, 'the next one notices all three');
  t.same(await titles(), ['Gears', 'Levers', 'Springs']);
  t.equal((await index.states()).get(c), 'complete', 'the ended recording is complete in the index');
  const third = await archive.reconcile();
  t.match(third, { added: 0, removed: 0, refreshed: 0, total: 3 }, 'a quiet folder reads no manifest');

  await archive.setPinned(a, true, { id: 'ops', role: 'admin' });
  t.equal((await archive.list({ q: 'levers' })).recordings[0]?.pinned, true, 'a pin reaches the index at once');
  await archive.delete(d, { id: 'ops', role: 'admin' });
  t.same(await titles(), ['Gears', 'Levers'], 'a deletion too');
  t.same(await titles([a]), ['Levers'], "a token's lessons");

  await index.put([{ ...(await archive.summary(a)), title: 'Wrong title' }]);
  const rebuilt = await archive.reindex();
  t.match(rebuilt, { added: 2, removed: 0, total: 2 }, 'reindex rebuilds from the manifests');
  t.same(await titles(), ['Gears', 'Levers'], 'what the index had wrong is gone');

  await db.close();
  t.same(await titles(), ['Gears', 'Levers'], 'with its database gone, the archive searches the manifests');
  await t.rejects(archive.reconcile(), 'a reconcile then fails (and is logged by the timer), nothing else');
});

t.test('a running server indexes what lands in its folder, and `lessoncast recordings reindex` rebuilds its index', async (t) => {
  const s = await startTestServer({ recording: { indexScanSeconds: 1 } });
  t.teardown(() => s.close());
  const folder = s.server.config.recording.dir;
  const id = randomUUID();
  // Behind the server's back: a recording restored from a backup.
  await makeRecording(folder, { id, title: 'Restored: tides', seconds: 0, state: 'complete' });
  const token = await s.token('archivist', 'archivist-1');
  const search = async () =>
    (await (await fetch(`${s.url}/api/recordings?q=tides`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      total: number;
      recordings: Array<{ id: string }>;
    };
  const deadline = Date.now() + 10_000;
  while ((await s.internals.catalog.archiveIndex.states()).get(id) === undefined && Date.now() < deadline) await sleep(200);
  t.equal((await s.internals.catalog.archiveIndex.states()).get(id), 'complete', 'the index found it within a few passes');
  t.same(
    (await search()).recordings.map((r) => r.id),
    [id],
    'and the archive finds it',
  );

  // The command works on the same folder and catalog, server running or not.
  const { stdout } = await run(process.execPath, [builtEntry('cli'), 'recordings', 'reindex'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LESSONCAST_RECORDING_DIR: folder,
      LESSONCAST_CATALOG_SQLITE_PATH: s.server.config.catalog.sqlitePath,
    },
  });
  t.match(stdout, /^reindexed 1 recordings of .* into sqlite:.* in \d+\.\d s\n$/, stdout.trim());
  t.same(
    (await search()).recordings.map((r) => r.id),
    [id],
    'still found after the rebuild',
  );
});
