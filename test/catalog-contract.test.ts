/**
 * One contract, two stores: the catalog on SQLite (node:sqlite, a file) and on PostgreSQL (a real
 * postgres of our own) must behave the same for schools, people, subjects, the timetable and its
 * conflicts, devices and revocations, the ledger, migrations, and a database that is gone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { v7 as uuidv7 } from 'uuid';
import { openCatalog, type CatalogConfig } from '../src/catalog/index.js';
import { SCHEMA_VERSION } from '../src/catalog/migrations.js';
import type { CatalogStore } from '../src/catalog/store.js';
import type { StoredLesson } from '../src/catalog/types.js';
import { LessoncastError } from '../src/errors.js';
import { addSample, emptyHistogram, emptyTally, LOSS_EDGES, type SchoolTallyState } from '../src/lessons/ledgerTally.js';
import { startPostgres } from './support/postgres.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const H = 3600_000;
const T0 = Date.parse('2027-02-01T09:00:00Z');

interface Store {
  name: string;
  /** A fresh, empty catalog; `handle()` opens it once more, as another node would (SQLite: the same handle, one node per file). */
  deployment(): Promise<{ handle(): Promise<CatalogStore>; close(): Promise<void> }>;
}

const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-catalog-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const pg = await startPostgres();
t.teardown(() => pg.close());

const config = (over: Partial<CatalogConfig>): CatalogConfig => ({
  url: '',
  sqlitePath: '',
  connectTimeoutSeconds: 3,
  maxConnections: 4,
  ...over,
});

let n = 0;
const stores: Store[] = [
  {
    name: 'sqlite',
    deployment: async () => {
      const store = await openCatalog(config({ sqlitePath: path.join(dir, `c${++n}.db`) }), silent);
      return { handle: async () => store, close: () => store.close() };
    },
  },
  {
    name: 'postgres',
    deployment: async () => {
      const url = await pg.database();
      const opened: CatalogStore[] = [];
      return {
        handle: async () => {
          const s = await openCatalog(config({ url }), silent);
          opened.push(s);
          return s;
        },
        close: async () => {
          for (const s of opened) await s.close();
        },
      };
    },
  },
];

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof LessoncastError ? err.code : `not a LessoncastError: ${String(err)}`;
  }
}

function lesson(over: Partial<StoredLesson> = {}): StoredLesson {
  return {
    id: uuidv7(),
    title: 'Physics',
    subject: 'physics',
    instructorId: 'teacher-1',
    schools: ['school-1'],
    record: true,
    seriesId: null,
    startsAt: T0,
    endsAt: T0 + H,
    state: 'created',
    createdAt: T0 - 24 * H,
    startedAt: null,
    endedAt: null,
    ...over,
  };
}

for (const s of stores) {
  t.test(s.name, async (t) => {
    t.test('migrations: at the current version, and again is a no-op', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      const again = await store.migrate();
      t.same(again, { from: SCHEMA_VERSION, to: SCHEMA_VERSION, applied: [] }, 'nothing left to apply');
    });

    t.test('schools, people, subjects: put, get, list, soft delete, come back', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      const first = await store.schools.put('school-1', { name: 'School 1', district: 'Yasamal', boards: 2 }, 1000);
      t.equal(first.created, true);
      t.match(first.entity, { id: 'school-1', name: 'School 1', district: 'Yasamal', boards: 2, createdAt: 1000, deletedAt: null });
      const renamed = await store.schools.put('school-1', { name: 'School One', district: 'Yasamal', boards: 3 }, 2000);
      t.equal(renamed.created, false, 'the second put replaces');
      t.match(renamed.entity, { name: 'School One', boards: 3, createdAt: 1000, updatedAt: 2000 });
      await store.schools.put('school-2', { name: 'School 2', district: 'Nasimi', boards: 1 });
      t.same(
        (await store.schools.list()).map((x) => x.id),
        ['school-1', 'school-2'],
      );

      const deleted = await store.schools.remove('school-1', 3000);
      t.equal(deleted.deletedAt, 3000, 'soft delete keeps the row with its time');
      t.same(
        (await store.schools.list()).map((x) => x.id),
        ['school-2'],
        'gone from the list',
      );
      t.same(
        (await store.schools.list({ includeDeleted: true })).map((x) => x.id),
        ['school-1', 'school-2'],
        'but kept',
      );
      t.equal(await code(store.schools.get('school-1')), 'SCHOOL_NOT_FOUND');
      t.equal(await code(store.schools.remove('school-1')), 'SCHOOL_NOT_FOUND', 'deleting twice');
      t.equal((await store.schools.find('school-1'))?.name, 'School One', 'find sees deleted ones');
      const back = await store.schools.put('school-1', { name: 'School One', district: 'Yasamal', boards: 3 }, 4000);
      t.equal(back.entity.deletedAt, null, 'putting it again brings it back');

      await store.people.put('teacher-1', { name: 'Aysel', role: 'instructor' });
      t.match(await store.people.get('teacher-1'), { name: 'Aysel', role: 'instructor' });
      t.equal(await code(store.people.get('nobody')), 'PERSON_NOT_FOUND');
      await store.subjects.put('physics', { name: 'Physics' });
      await store.subjects.remove('physics');
      t.equal(await code(store.subjects.get('physics')), 'SUBJECT_NOT_FOUND');
    });

    t.test('timetable: conflicts by instructor and by school, all or none', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      const a = lesson({ instructorId: 'teacher-1', schools: ['school-1', 'school-2'] });
      await store.schedule([a]);
      t.match(await store.getLesson(a.id), { ...a, schools: ['school-1', 'school-2'] }, 'stored as given');

      const sameTeacher = lesson({ startsAt: T0 + H / 2, endsAt: T0 + H, schools: ['school-9'] });
      t.equal(await code(store.schedule([sameTeacher])), 'INSTRUCTOR_BUSY');
      const sameSchool = lesson({ instructorId: 'teacher-2', startsAt: T0 - H / 2, endsAt: T0 + H / 2, schools: ['school-2'] });
      const err = await store.schedule([sameSchool]).catch((e: unknown) => e as LessoncastError);
      t.match(err, { code: 'SCHOOL_BUSY', details: { lessonId: a.id, schoolId: 'school-2' } }, 'names the lesson in the way');
      const backToBack = lesson({ startsAt: T0 + H, endsAt: T0 + 2 * H });
      await store.schedule([backToBack]);
      t.pass('a lesson may start when the last one ends');

      const other = lesson({ instructorId: 'teacher-3', schools: ['school-3'], startsAt: T0 + 3 * H, endsAt: T0 + 4 * H });
      const clash = lesson({ instructorId: 'teacher-3', schools: ['school-4'], startsAt: T0 + 3 * H, endsAt: T0 + 4 * H });
      t.equal(await code(store.schedule([other, clash])), 'INSTRUCTOR_BUSY', 'conflicts within one batch count');
      t.equal(await store.getLesson(other.id), undefined, 'and nothing of the batch is stored');

      t.equal(await code(store.cancelLesson(uuidv7())), 'LESSON_NOT_FOUND');
      t.equal((await store.cancelLesson(a.id)).state, 'cancelled');
      await store.schedule([sameTeacher]);
      t.pass('a cancelled lesson frees its slot');
      await store.setLessonState(sameTeacher.id, { state: 'live', startedAt: T0 + H, endedAt: null });
      t.equal(await code(store.cancelLesson(sameTeacher.id)), 'LESSON_STARTED', 'a live lesson is not cancelled');
      await store.setLessonState(sameTeacher.id, { state: 'ended', startedAt: T0 + H, endedAt: T0 + H + 60_000 });
      t.match(await store.getLesson(sameTeacher.id), { state: 'ended', startedAt: T0 + H, endedAt: T0 + H + 60_000 });
      await store.schedule([lesson({ startsAt: T0 + H / 2, endsAt: T0 + H })]);
      t.pass('an ended lesson frees the rest of its slot');
    });

    t.test('timetable: two nodes booking the same slot at once, one wins', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const [one, two] = [await d.handle(), await d.handle()];
      for (let round = 0; round < 5; round++) {
        const at = T0 + round * 10 * H;
        const results = await Promise.allSettled([
          one.schedule([lesson({ instructorId: 'teacher-x', schools: [`s-a-${round}`], startsAt: at, endsAt: at + H })]),
          two.schedule([lesson({ instructorId: 'teacher-x', schools: [`s-b-${round}`], startsAt: at + H / 2, endsAt: at + 2 * H })]),
        ]);
        t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: exactly one booked`);
        const lost = results.find((r) => r.status === 'rejected');
        t.equal(lost?.status === 'rejected' && (lost.reason as LessoncastError).code, 'INSTRUCTOR_BUSY');
      }
    });

    t.test('lessons: listed by slot, school, instructor and state', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      const morning = lesson({ schools: ['school-1'], startsAt: T0, endsAt: T0 + H });
      const noon = lesson({ instructorId: 'teacher-2', schools: ['school-2', 'school-3'], startsAt: T0 + 3 * H, endsAt: T0 + 4 * H });
      const tomorrow = lesson({ startsAt: T0 + 24 * H, endsAt: T0 + 25 * H });
      const adHoc = lesson({ startsAt: null, endsAt: null, createdAt: T0 + 5 * H, schools: [] });
      await store.schedule([tomorrow, noon, morning]);
      await store.addLesson(adHoc);
      const ids = (l: StoredLesson[]) => l.map((x) => x.id);
      t.same(ids(await store.listLessons({ from: T0 - H, to: T0 + 12 * H })), [morning.id, noon.id, adHoc.id], 'the day, in order');
      t.same(ids(await store.listLessons({ schoolId: 'school-3' })), [noon.id]);
      t.same(ids(await store.listLessons({ instructorId: 'teacher-2' })), [noon.id]);
      t.same(ids(await store.listLessons({ from: T0 + 30 * 60_000, to: T0 + 31 * 60_000 })), [morning.id], 'overlapping a minute');
      await store.setLessonState(adHoc.id, { state: 'ended', startedAt: T0 + 5 * H, endedAt: T0 + 6 * H });
      t.same(ids(await store.listLessons({ from: T0 + 7 * H })), [tomorrow.id], 'an ended unscheduled lesson is over after its end');
      t.same(ids(await store.listLessons({ states: ['ended'] })), [adHoc.id]);
      t.same(ids(await store.listLessons({ limit: 1 })), [morning.id], 'limit');
    });

    t.test('devices and revocations', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      await store.addDevice(
        { id: 'dev-1', schoolId: 'school-1', name: 'Board 1', createdAt: 10, lastSeenAt: null, revokedAt: null },
        'hash-1',
      );
      await store.addDevice(
        { id: 'dev-2', schoolId: 'school-2', name: 'Board 2', createdAt: 20, lastSeenAt: null, revokedAt: null },
        'hash-2',
      );
      t.match(await store.deviceWithCredential('dev-1'), { device: { id: 'dev-1', schoolId: 'school-1' }, credentialHash: 'hash-1' });
      t.same(
        (await store.listDevices('school-2')).map((x) => x.id),
        ['dev-2'],
      );
      await store.touchDevice('dev-1', 50);
      t.equal((await store.revokeDevice('dev-1', 100)).revokedAt, 100);
      t.equal((await store.revokeDevice('dev-1', 200)).revokedAt, 100, 'the first revocation stays');
      t.equal((await store.deviceWithCredential('dev-1'))?.device.lastSeenAt, 50);
      t.equal(await code(store.revokeDevice('nope')), 'DEVICE_NOT_FOUND');
      await store.addRevocation({ kind: 'person', subject: 'teacher-1', at: 100, reason: 'left' });
      await store.addRevocation({ kind: 'token', subject: 'jti-1', at: 150, reason: 'leaked' });
      await store.addRevocation({ kind: 'person', subject: 'teacher-1', at: 300, reason: 'again' });
      t.same(await store.listRevocations(), [
        { kind: 'token', subject: 'jti-1', at: 150, reason: 'leaked' },
        { kind: 'person', subject: 'teacher-1', at: 300, reason: 'again' },
      ]);
    });

    t.test('ledger: rows per lesson and school, a final row stays, ranges, paging, scope', async (t) => {
      const d = await s.deployment();
      t.teardown(() => d.close());
      const store = await d.handle();
      await store.schools.put('school-1', { name: 'Məktəb 1', district: 'Yasamal', boards: 2 });
      const morning = lesson({ schools: ['school-1', 'school-2'] });
      await store.schedule([morning]);
      const row = (schoolId: string, over: Partial<SchoolTallyState> = {}): SchoolTallyState => ({
        ...emptyTally(schoolId, true),
        ...over,
      });
      const loss = emptyHistogram(LOSS_EDGES);
      for (const v of [0, 0, 1, 4]) addSample(loss, LOSS_EDGES, v);
      await store.ledger.put(
        morning.id,
        T0,
        [row('school-1', { firstJoinedAt: T0, connectedMs: 60_000, loss }), row('school-2')],
        false,
        T0,
      );
      t.same(
        (await store.ledger.stored(morning.id)).rows.map((r) => r.schoolId),
        ['school-1', 'school-2'],
        'stored, for a resumed run',
      );
      const done = [
        row('school-1', { firstJoinedAt: T0, lastLeftAt: T0 + H, connectedMs: H, hands: 2, floorMs: 30_000, loss }),
        row('school-2'),
      ];
      await store.ledger.put(morning.id, T0, done, true, T0 + H);
      await store.ledger.put(morning.id, T0, [row('school-1', { connectedMs: 1 })], false, T0 + 2 * H);
      const rows = await store.ledger.lesson(morning.id);
      t.match(rows, [
        {
          lessonId: morning.id,
          lessonTitle: 'Physics',
          schoolId: 'school-1',
          schoolName: 'Məktəb 1',
          district: 'Yasamal',
          attendance: 'present',
          connectedMs: H,
          hands: 2,
          floorMs: 30_000,
          lossPctMean: 1.3,
          lossPctP95: 5,
          rttMsMean: null,
          qualitySamples: 4,
          final: true,
          updatedAt: T0 + H,
        },
        { schoolId: 'school-2', schoolName: null, attendance: 'absent', connectedMs: 0, firstJoinedAt: null, final: true },
      ]);
      const later = lesson({ startsAt: T0 + 24 * H, endsAt: T0 + 25 * H, schools: ['school-1'] });
      await store.ledger.put(later.id, T0 + 24 * H, [row('school-1')], true);
      const all = { from: T0 - H, to: T0 + 48 * H, scope: 'all' as const, limit: 10, offset: 0 };
      t.match(await store.ledger.search({ ...all, schoolId: 'school-1' }), {
        total: 2,
        rows: [{ lessonId: morning.id }, { lessonId: later.id }],
      });
      t.match(await store.ledger.search({ ...all, limit: 1, offset: 2 }), { total: 3, rows: [{ lessonId: later.id }] }, 'paged');
      t.equal((await store.ledger.search({ ...all, to: T0 })).total, 0, 'to is exclusive');
      t.equal((await store.ledger.search({ ...all, scope: [later.id] })).total, 1, 'a token listing lessons sees those');
      t.equal((await store.ledger.search({ ...all, scope: [] })).total, 0);
      const each: string[] = [];
      for await (const r of store.ledger.each({ from: all.from, to: all.to, scope: 'all' }, 2)) each.push(`${r.lessonId}/${r.schoolId}`);
      t.same(each, [`${morning.id}/school-1`, `${morning.id}/school-2`, `${later.id}/school-1`], 'every row, a page at a time');
    });

    t.test('a closed database answers CATALOG_UNAVAILABLE', async (t) => {
      const d = await s.deployment();
      const store = await d.handle();
      await d.close();
      t.equal(await code(store.ping()), 'CATALOG_UNAVAILABLE');
      t.equal(await code(store.schools.list()), 'CATALOG_UNAVAILABLE');
      t.equal(await code(store.schedule([lesson()])), 'CATALOG_UNAVAILABLE');
    });
  });
}

t.test('a database that cannot be reached stops the open with where and why, no password', async (t) => {
  const err = await openCatalog(config({ url: `postgres://lessoncast:s3cret@127.0.0.1:${pg.port + 1}/nope` }), silent).catch(
    (e: unknown) => e,
  );
  t.match(
    String((err as Error).message),
    /cannot open the catalog database at postgres:\/\/lessoncast:\*\*\*@127\.0\.0\.1:\d+\/nope: .*ECONNREFUSED/,
  );
  t.notMatch(String((err as Error).message), /s3cret/);
  const regular = path.join(dir, 'a-file');
  writeFileSync(regular, '');
  const file = await openCatalog(config({ sqlitePath: path.join(regular, 'catalog.db') }), silent).catch((e: unknown) => e);
  t.match(String((file as Error).message), /cannot open the catalog database at sqlite:.*a-file\/catalog\.db: (EEXIST|ENOTDIR)/);
});
