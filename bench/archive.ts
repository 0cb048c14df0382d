/**
 * The archive at a region's size (issue 16 §4): 200,000 recordings (200 schools × 6 lessons ×
 * 180 days) as manifests on disk, indexed in SQLite and in PostgreSQL. Per engine: the reindex
 * time (every manifest read, summarised and written), then a mix of the searches the archive
 * page and the ministry make, each kind timed many times (p50, p95, max). For comparison: one
 * search by reading every manifest (no index), and what one real 45-minute lesson's manifest
 * (3 tracks of 2 s segments) costs to read, from which a reindex of real manifests is projected.
 *
 *   npx tsx bench/archive.ts [--recordings 200000] [--queries 40] [--engines sqlite,postgres]
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ArchiveIndex, archiveIndexSchemas } from '../src/catalog/archiveIndex.js';
import type { Database } from '../src/catalog/database.js';
import { PostgresDatabase } from '../src/catalog/postgres.js';
import { SqliteDatabase } from '../src/catalog/sqlite.js';
import { Archive, type RecordingSearch } from '../src/recording/archive.js';
import type { RecordingManifest } from '../src/recording/manifest.js';
import { startPostgres } from '../test/support/postgres.js';
import { machine, percentile, saveResult, table } from './lib.js';

export interface ArchiveBenchOptions {
  recordings: number;
  /** Timed runs of each kind of search. */
  queries: number;
  engines: Array<'sqlite' | 'postgres'>;
}
export const defaultArchiveOptions: ArchiveBenchOptions = { recordings: 200_000, queries: 40, engines: ['sqlite', 'postgres'] };

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const SUBJECTS = [
  'physics',
  'chemistry',
  'biology',
  'mathematics',
  'informatics',
  'robotics',
  'astronomy',
  'ecology',
  'geography',
  'engineering',
  'art',
  'music',
];
const TOPICS = [
  'levers',
  'pulleys',
  'acids',
  'cells',
  'fractions',
  'sensors',
  'planets',
  'rivers',
  'circuits',
  'bridges',
  'colour',
  'rhythm',
  'magnets',
  'gears',
  'algorithms',
];
const SCHOOLS = 200;
const INSTRUCTORS = 60;
const DAY = 86_400_000;
const FIRST_DAY = Date.parse('2026-01-12T00:00:00Z');

/** A deterministic generator: the same archive every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
}

function uuidFor(i: number): string {
  const h = i.toString(16).padStart(12, '0');
  return `01950000-0000-7000-8000-${h}`;
}

/** Recording i of the region: a school day, a period, an instructor teaching 1–4 schools. */
function manifestFor(i: number, r: () => number): RecordingManifest {
  const day = Math.floor(i / ((SCHOOLS * 6) / 3)) % 180; // ~400 lessons a day (3 schools per lesson on average)
  const started = FIRST_DAY + Math.floor((day * 7) / 5) * DAY + (8 + Math.floor(r() * 6)) * 3600_000 + Math.floor(r() * 3600) * 1000;
  const ended = started + 45 * 60_000;
  const subject = SUBJECTS[Math.floor(r() * SUBJECTS.length)]!;
  const topic = TOPICS[Math.floor(r() * TOPICS.length)]!;
  const schools = Array.from(new Set(Array.from({ length: 1 + Math.floor(r() * 4) }, () => 1 + Math.floor(r() * SCHOOLS))));
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    format: 'lessoncast-recording',
    version: 1,
    lessonId: uuidFor(i),
    title: `${subject[0]!.toUpperCase()}${subject.slice(1)}: ${topic} ${1 + (i % 9)}`,
    subject,
    instructorId: `teacher-${1 + Math.floor(r() * INSTRUCTORS)}`,
    invitedSchools: schools.map((n) => `school-${n}`),
    state: 'complete',
    recovered: false,
    startedAt: iso(started),
    endedAt: iso(ended),
    endReason: 'ended by the instructor',
    segmentSeconds: 2,
    playlist: 'index.m3u8',
    tracks: [],
    attendance: schools.map((n) => ({
      participantId: `school-${n}`,
      role: 'classroom',
      name: `School ${n} of district ${1 + (n % 12)}`,
      intervals: [{ joinedAt: iso(started + 30_000), leftAt: iso(ended) }],
    })),
    events: [],
    faults: 0,
    updatedAt: iso(ended),
  };
}

/** A real lesson's manifest: 45 min, camera + voice + screen, 2 s segments (1,350 per track). */
function fullManifest(i: number): RecordingManifest {
  const m = manifestFor(i, rng(i));
  const started = Date.parse(m.startedAt);
  const sha = 'a'.repeat(64);
  m.tracks = (['camera', 'voice', 'screen'] as const).map((id) => ({
    id,
    kind: id === 'voice' ? 'audio' : 'video',
    role: 'instructor',
    source: id === 'voice' ? 'microphone' : id,
    playlist: `${id}/index.m3u8`,
    codec: id === 'voice' ? 'Opus' : 'H264',
    codecs: id === 'voice' ? 'opus' : 'avc1.42e01f',
    container: 'fmp4',
    runs: [
      {
        index: 1,
        producerId: 'p',
        participantId: m.instructorId,
        sourceCodec: id === 'voice' ? 'Opus' : 'H264',
        transcoded: false,
        startedAt: m.startedAt,
        offsetSeconds: 0.3,
        endedAt: m.endedAt,
        endReason: 'lesson ended',
        init: { uri: `${id}/r001-init.mp4`, size: 800, sha256: sha },
        pid: null,
      },
    ],
    segments: Array.from({ length: 1350 }, (_, k) => ({
      uri: `${id}/r001-${String(k).padStart(5, '0')}.m4s`,
      run: 1,
      startSeconds: 0.3 + k * 2,
      duration: 2,
      size: 300_000,
      sha256: sha,
      programDateTime: new Date(started + 300 + k * 2000).toISOString(),
    })),
  }));
  return m;
}

/** The searches people make, each a function of a random draw. */
const KINDS: Array<{ kind: string; make(r: () => number): RecordingSearch }> = [
  { kind: 'newest page', make: () => ({ limit: 50 }) },
  {
    kind: 'school, one month',
    make: (r) => {
      const from = FIRST_DAY + Math.floor(r() * 220) * DAY;
      return { school: `school-${1 + Math.floor(r() * SCHOOLS)}`, from: new Date(from), to: new Date(from + 30 * DAY), limit: 50 };
    },
  },
  { kind: 'school, whole year', make: (r) => ({ school: `school-${1 + Math.floor(r() * SCHOOLS)}`, limit: 50 }) },
  {
    kind: 'instructor, one term',
    make: (r) => ({
      instructor: `teacher-${1 + Math.floor(r() * INSTRUCTORS)}`,
      from: new Date(FIRST_DAY),
      to: new Date(FIRST_DAY + 120 * DAY),
      limit: 50,
    }),
  },
  {
    kind: 'subject, one week',
    make: (r) => ({
      subject: SUBJECTS[Math.floor(r() * SUBJECTS.length)]!,
      from: new Date(FIRST_DAY + 70 * DAY),
      to: new Date(FIRST_DAY + 77 * DAY),
      limit: 50,
    }),
  },
  { kind: 'text, a topic', make: (r) => ({ q: TOPICS[Math.floor(r() * TOPICS.length)]!, limit: 50 }) },
  { kind: 'text, a school name', make: (r) => ({ q: `School ${1 + Math.floor(r() * SCHOOLS)} of`, limit: 50 }) },
  {
    kind: 'text + month + school',
    make: (r) => ({
      q: TOPICS[Math.floor(r() * TOPICS.length)]!,
      school: `school-${1 + Math.floor(r() * SCHOOLS)}`,
      from: new Date(FIRST_DAY + 30 * DAY),
      to: new Date(FIRST_DAY + 60 * DAY),
      limit: 50,
    }),
  },
  { kind: 'deep page (offset 10,000)', make: () => ({ limit: 50, offset: 10_000 }) },
];

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, performance.now() - t0];
}

export async function runArchiveBench(opts: ArchiveBenchOptions = defaultArchiveOptions) {
  // The generated archive is kept between runs (removing 200,000 folders takes longer than writing
  // them): /var/tmp/lessoncast-archive-bench/<n>, reused when complete. PostgreSQL's cluster lives
  // beside it, out of /tmp.
  const base = path.join('/var/tmp', 'lessoncast-archive-bench');
  const folder = path.join(base, String(opts.recordings));
  const complete = path.join(folder, '.complete');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const work = mkdtempSync(path.join(base, 'run-'));
  chmodSync(work, 0o755); // PostgreSQL runs as its own user
  process.env['TMPDIR'] = work;
  try {
    const r = rng(16);
    const [, writeMs] = await timed(async () => {
      if (existsSync(complete)) return;
      rmSync(folder, { recursive: true, force: true });
      mkdirSync(folder);
      for (let i = 0; i < opts.recordings; i++) {
        const m = manifestFor(i, r);
        mkdirSync(path.join(folder, m.lessonId));
        writeFileSync(path.join(folder, m.lessonId, 'manifest.json'), JSON.stringify(m));
      }
      writeFileSync(complete, '');
    });
    console.log(`${opts.recordings} manifests in ${folder} (${(writeMs / 1000).toFixed(1)} s to write; reused when already there)`);

    // What one real lesson's manifest costs to read and summarise (the reindex's unit of work).
    const real = mkdtempSync(path.join(work, 'real-'));
    const full = fullManifest(1);
    mkdirSync(path.join(real, full.lessonId));
    writeFileSync(path.join(real, full.lessonId, 'manifest.json'), JSON.stringify(full));
    const realReads: number[] = [];
    for (let k = 0; k < 30; k++) {
      const fresh = new Archive({ recordingsDir: real, ffmpegPath: '', log: quiet, isLive: () => false });
      realReads.push((await timed(() => fresh.summary(full.lessonId)))[1]);
    }
    realReads.sort((a, b) => a - b);
    const realMs = percentile(realReads, 50);
    const realBytes = JSON.stringify(full).length;

    const pg = opts.engines.includes('postgres') ? await startPostgres() : undefined;
    const engines: Array<{ name: string; db: Database }> = [];
    for (const name of opts.engines) {
      const db =
        name === 'sqlite'
          ? new SqliteDatabase(path.join(work, 'catalog.sqlite'))
          : new PostgresDatabase(await pg!.database(), { connectTimeoutSeconds: 10, maxConnections: 4, log: quiet });
      await db.transaction(async (tx) => {
        for (const s of archiveIndexSchemas(db.dialect)) await tx.run(s);
      });
      engines.push({ name, db });
    }

    const rows: Array<Record<string, string | number>> = [];
    const perEngine: Record<
      string,
      {
        reindexS: number;
        p95Ms: number;
        kinds: Array<{ kind: string; p50: number; p95: number; max: number; hits: number; capped: boolean }>;
      }
    > = {};
    for (const { name, db } of engines) {
      const archive = new Archive({ recordingsDir: folder, ffmpegPath: '', log: quiet, isLive: () => false });
      archive.useIndex(new ArchiveIndex(db));
      const [report, reindexMs] = await timed(() => archive.reindex());
      console.log(`${name}: reindex of ${report.total} recordings in ${(reindexMs / 1000).toFixed(1)} s`);
      const kinds: (typeof perEngine)[string]['kinds'] = [];
      const all: number[] = [];
      const qr = rng(7);
      for (const k of KINDS) {
        await archive.list(k.make(qr)); // warm: the first of a kind plans it
        const times: number[] = [];
        let hits = 0;
        let capped = false;
        for (let i = 0; i < opts.queries; i++) {
          const [res, ms] = await timed(() => archive.list(k.make(qr)));
          times.push(ms);
          hits += res.total;
          capped ||= res.totalCapped === true;
        }
        times.sort((a, b) => a - b);
        all.push(...times);
        kinds.push({
          kind: k.kind,
          p50: percentile(times, 50),
          p95: percentile(times, 95),
          max: times[times.length - 1]!,
          hits: Math.round(hits / opts.queries),
          capped,
        });
      }
      all.sort((a, b) => a - b);
      perEngine[name] = { reindexS: reindexMs / 1000, p95Ms: percentile(all, 95), kinds };
    }
    for (const k of KINDS) {
      const row: Record<string, string | number> = { search: k.kind };
      for (const name of opts.engines) {
        const x = perEngine[name]!.kinds.find((y) => y.kind === k.kind)!;
        row[`${name} p50 ms`] = x.p50.toFixed(1);
        row[`${name} p95 ms`] = x.p95.toFixed(1);
        row[`${name} max`] = x.max.toFixed(1);
      }
      const first = perEngine[opts.engines[0]!]!.kinds.find((y) => y.kind === k.kind)!;
      // A broad search counts up to the cap (RecordingPage.totalCapped): "10000+".
      row['matches'] = first.capped ? `${first.hits}+` : first.hits;
      rows.push(row);
    }
    console.log(table(rows));
    for (const name of opts.engines)
      console.log(
        `${name}: every search p95 ${perEngine[name]!.p95Ms.toFixed(1)} ms (target ≤ 50); reindex ${perEngine[name]!.reindexS.toFixed(1)} s`,
      );

    // The same search without an index: every manifest read (the archive before this issue).
    const scanArchive = new Archive({ recordingsDir: folder, ffmpegPath: '', log: quiet, isLive: () => false });
    const [, scanMs] = await timed(() => scanArchive.list({ school: 'school-17', limit: 50 }));
    console.log(`without an index: one school search over ${opts.recordings} manifests took ${(scanMs / 1000).toFixed(1)} s`);
    const projectedS = (realMs * opts.recordings) / 1000;
    console.log(
      `a real 45-min manifest (${(realBytes / 1024).toFixed(0)} KiB, 3 × 1,350 segments) reads and summarises in ${realMs.toFixed(1)} ms: ` +
        `a reindex of ${opts.recordings} real manifests would spend ~${(projectedS / 60).toFixed(0)} min reading them`,
    );

    for (const { db } of engines) await db.close();
    await pg?.close();
    const data = {
      options: opts,
      writeS: writeMs / 1000,
      engines: perEngine,
      scanS: scanMs / 1000,
      realManifest: { bytes: realBytes, readMs: realMs, projectedReindexS: projectedS },
    };
    const file = saveResult('archive', data);
    return { file, ...data };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { recordings: { type: 'string' }, queries: { type: 'string' }, engines: { type: 'string' } } });
  console.log(`archive bench on ${machine().cpuModel}, ${machine().cores} cores, Node ${machine().node}, ${new Date().toISOString()}`);
  await runArchiveBench({
    recordings: Number(values.recordings ?? defaultArchiveOptions.recordings),
    queries: Number(values.queries ?? defaultArchiveOptions.queries),
    engines: (values.engines?.split(',') as ArchiveBenchOptions['engines']) ?? defaultArchiveOptions.engines,
  });
}
