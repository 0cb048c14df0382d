import { LessoncastError } from '../errors.js';
import { ArchiveIndex } from './archiveIndex.js';
import { LedgerTable } from './ledger.js';
import type { Logger } from '../logger.js';
import { nullableNumber, type Database, type Param, type Row, type Sql } from './database.js';
import { migrate, type MigrationOutcome } from './migrations.js';
import { checkConflicts } from './timetable.js';
import type {
  Device,
  LessonChange,
  LessonQuery,
  Person,
  PersonRole,
  Revocation,
  RevocationKind,
  School,
  StoredLesson,
  StoredLessonState,
  Subject,
} from './types.js';

/** The most rows one list returns. */
export const MAX_LIST = 5000;
const CHUNK = 500;

/** Any failure of the engine (gone, timed out, refused) as the one code clients see; ours pass as they are. */
function unavailable(err: unknown, log: Logger | undefined, what: string): LessoncastError {
  if (err instanceof LessoncastError) return err;
  log?.warn({ err: err instanceof Error ? err.message : String(err), op: what }, 'catalog operation failed');
  return new LessoncastError('CATALOG_UNAVAILABLE', 'the catalog database does not answer; try again shortly');
}

interface EntityShape<T, I> {
  table: string;
  notFound: 'SCHOOL_NOT_FOUND' | 'PERSON_NOT_FOUND' | 'SUBJECT_NOT_FOUND';
  /** Columns besides id and the times, in order. */
  columns: string[];
  values(input: I): Param[];
  read(row: Row): Omit<T, 'id' | 'createdAt' | 'updatedAt' | 'deletedAt'>;
}

/** One directory of the catalog (schools, people, subjects): put, get, list, soft delete. */
export class Directory<T extends { id: string; createdAt: number; updatedAt: number; deletedAt: number | null }, I> {
  constructor(
    private readonly store: CatalogStore,
    private readonly shape: EntityShape<T, I>,
  ) {}

  private entity(row: Row): T {
    return {
      id: String(row['id']),
      ...this.shape.read(row),
      createdAt: Number(row['created_at']),
      updatedAt: Number(row['updated_at']),
      deletedAt: row['deleted_at'] === null ? null : Number(row['deleted_at']),
    } as T;
  }

  /** Creates or replaces one; a soft-deleted one comes back. `created` tells which. */
  put(id: string, input: I, now = Date.now()): Promise<{ entity: T; created: boolean }> {
    const { table, columns } = this.shape;
    return this.store.guarded(`put ${table}`, (db) =>
      db.transaction(async (tx) => {
        const [before] = await tx.all(`SELECT id FROM ${table} WHERE id = ?`, [id]);
        await tx.run(
          `INSERT INTO ${table} (id, ${columns.join(', ')}, created_at, updated_at, deleted_at) VALUES (?, ${columns.map(() => '?').join(', ')}, ?, ?, NULL)
           ON CONFLICT (id) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}, updated_at = excluded.updated_at, deleted_at = NULL`,
          [id, ...this.shape.values(input), now, now],
        );
        const [row] = await tx.all(`SELECT * FROM ${table} WHERE id = ?`, [id]);
        return { entity: this.entity(row!), created: !before };
      }),
    );
  }

  /** One, deleted ones too (their deletedAt says so). */
  find(id: string): Promise<T | undefined> {
    return this.store.guarded(`get ${this.shape.table}`, async (db) => {
      const [row] = await db.all(`SELECT * FROM ${this.shape.table} WHERE id = ?`, [id]);
      return row ? this.entity(row) : undefined;
    });
  }

  /** One that is not deleted, else its NOT_FOUND code. */
  async get(id: string): Promise<T> {
    const found = await this.find(id);
    if (!found || found.deletedAt !== null)
      throw new LessoncastError(this.shape.notFound, `no ${this.shape.table.replace(/s$/, '')} ${id}`);
    return found;
  }

  list(opts: { includeDeleted?: boolean } = {}): Promise<T[]> {
    return this.store.guarded(`list ${this.shape.table}`, async (db) =>
      (
        await db.all(
          `SELECT * FROM ${this.shape.table}${opts.includeDeleted ? '' : ' WHERE deleted_at IS NULL'} ORDER BY id LIMIT ${MAX_LIST}`,
        )
      ).map((r) => this.entity(r)),
    );
  }

  /** Soft delete: the row stays (recordings and the ledger refer to it). NOT_FOUND when absent or deleted already. */
  async remove(id: string, now = Date.now()): Promise<T> {
    const changed = await this.store.guarded(`delete ${this.shape.table}`, (db) =>
      db.run(`UPDATE ${this.shape.table} SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, [now, now, id]),
    );
    if (changed === 0) throw new LessoncastError(this.shape.notFound, `no ${this.shape.table.replace(/s$/, '')} ${id}`);
    return (await this.find(id))!;
  }
}

export interface SchoolInput {
  name: string;
  district: string;
  boards: number;
}
export interface PersonInput {
  name: string;
  role: PersonRole;
}
export interface SubjectInput {
  name: string;
}

const LESSON_COLUMNS = 'id, title, subject, instructor_id, record, series_id, starts_at, ends_at, state, created_at, started_at, ended_at';

/**
 * The region's catalog over one database engine (SQLite or PostgreSQL: the same SQL). Every
 * failure of the engine surfaces as CATALOG_UNAVAILABLE. More tables (the archive index, the
 * ledger) come as further migrations and further methods here.
 */
export class CatalogStore {
  readonly schools: Directory<School, SchoolInput>;
  readonly people: Directory<Person, PersonInput>;
  readonly subjects: Directory<Subject, SubjectInput>;
  /** The archive's index (recording/ searches through it). */
  readonly archiveIndex: ArchiveIndex;
  /** The per-school ledger (src/lessons/ledgerRecorder.ts writes it). */
  readonly ledger: LedgerTable;

  constructor(
    private readonly db: Database,
    private readonly log?: Logger,
  ) {
    this.archiveIndex = new ArchiveIndex(db);
    this.ledger = new LedgerTable((what, fn) => this.guarded(what, fn));
    this.schools = new Directory<School, SchoolInput>(this, {
      table: 'schools',
      notFound: 'SCHOOL_NOT_FOUND',
      columns: ['name', 'district', 'boards'],
      values: (s) => [s.name, s.district, s.boards],
      read: (r) => ({ name: String(r['name']), district: String(r['district']), boards: Number(r['boards']) }),
    });
    this.people = new Directory<Person, PersonInput>(this, {
      table: 'people',
      notFound: 'PERSON_NOT_FOUND',
      columns: ['name', 'role'],
      values: (p) => [p.name, p.role],
      read: (r) => ({ name: String(r['name']), role: String(r['role']) as PersonRole }),
    });
    this.subjects = new Directory<Subject, SubjectInput>(this, {
      table: 'subjects',
      notFound: 'SUBJECT_NOT_FOUND',
      columns: ['name'],
      values: (s) => [s.name],
      read: (r) => ({ name: String(r['name']) }),
    });
  }

  get engine(): 'sqlite' | 'postgres' {
    return this.db.dialect.name;
  }

  get where(): string {
    return this.db.where;
  }

  /** Runs `fn` on the database; an engine failure becomes CATALOG_UNAVAILABLE (logged with `what`). */
  async guarded<T>(what: string, fn: (db: Database) => Promise<T>): Promise<T> {
    try {
      return await fn(this.db);
    } catch (err) {
      throw unavailable(err, this.log, what);
    }
  }

  /** Applies the migrations this database lacks. Errors are the engine's own (start reports them as they are). */
  migrate(): Promise<MigrationOutcome> {
    return migrate(this.db);
  }

  /** Resolves when the database answers. */
  async ping(): Promise<void> {
    await this.guarded('ping', (db) => db.all('SELECT 1 AS one'));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // -- lessons ---------------------------------------------------------------------

  /** Stores a lesson without a slot check (a lesson opened at once has no slot). */
  async addLesson(lesson: StoredLesson): Promise<void> {
    await this.guarded('add lesson', (db) => db.transaction((tx) => insertLessons(tx, [lesson])));
  }

  /**
   * Puts lessons into the timetable, all or none: refused with INSTRUCTOR_BUSY or SCHOOL_BUSY when
   * one overlaps a lesson holding its slot. The check and the insert run under the catalog's write
   * lock, so two nodes cannot book the same slot at once.
   */
  async schedule(lessons: StoredLesson[]): Promise<void> {
    if (lessons.length === 0) return;
    const from = Math.min(...lessons.map((l) => l.startsAt!));
    const to = Math.max(...lessons.map((l) => l.endsAt!));
    await this.guarded('schedule lessons', (db) =>
      db.transaction(async (tx) => {
        const existing = await selectLessons(
          tx,
          `starts_at < ? AND ends_at > ? AND state IN ('created', 'live') ORDER BY starts_at LIMIT ${MAX_LIST * 4}`,
          [to, from],
        );
        checkConflicts(lessons, existing);
        await insertLessons(tx, lessons);
      }),
    );
  }

  async getLesson(id: string): Promise<StoredLesson | undefined> {
    return this.guarded('get lesson', async (db) => (await selectLessons(db, 'id = ?', [id]))[0]);
  }

  /** Lessons by slot (scheduled) or by life (opened at once), school, instructor, state; oldest first. */
  listLessons(q: LessonQuery = {}): Promise<StoredLesson[]> {
    const where: string[] = [];
    const params: Param[] = [];
    const from = q.from ?? -8.64e15;
    const to = q.to ?? 8.64e15;
    where.push(
      '((starts_at IS NOT NULL AND starts_at < ? AND ends_at > ?) OR (starts_at IS NULL AND created_at < ? AND COALESCE(ended_at, ?) > ?))',
    );
    params.push(to, from, to, to, from);
    if (q.schoolId !== undefined) {
      where.push('id IN (SELECT lesson_id FROM lesson_schools WHERE school_id = ?)');
      params.push(q.schoolId);
    }
    if (q.instructorId !== undefined) {
      where.push('instructor_id = ?');
      params.push(q.instructorId);
    }
    if (q.states?.length) {
      where.push(`state IN (${q.states.map(() => '?').join(', ')})`);
      params.push(...q.states);
    }
    const limit = Math.min(q.limit ?? 1000, MAX_LIST);
    return this.guarded('list lessons', (db) =>
      selectLessons(db, `${where.join(' AND ')} ORDER BY COALESCE(starts_at, created_at), id LIMIT ${limit}`, params),
    );
  }

  /** What a live lesson reports (went live, ended); NOT found is no error: the lesson may predate the catalog. */
  async setLessonState(id: string, change: LessonChange): Promise<void> {
    await this.guarded('set lesson state', (db) =>
      db.run(`UPDATE lessons SET state = ?, started_at = ?, ended_at = ? WHERE id = ? AND state <> 'cancelled'`, [
        change.state,
        change.startedAt,
        change.endedAt,
        id,
      ]),
    );
  }

  /** Takes a lesson out of the timetable before it happens (LESSON_STARTED once it went live). */
  cancelLesson(id: string): Promise<StoredLesson> {
    return this.guarded('cancel lesson', (db) =>
      db.transaction(async (tx) => {
        const [lesson] = await selectLessons(tx, 'id = ?', [id]);
        if (!lesson) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
        if (lesson.state === 'cancelled') return lesson;
        if (lesson.state !== 'created')
          throw new LessoncastError('LESSON_STARTED', `lesson ${id} is ${lesson.state}; only a lesson not yet live can be cancelled`);
        await tx.run(`UPDATE lessons SET state = 'cancelled' WHERE id = ?`, [id]);
        return { ...lesson, state: 'cancelled' as StoredLessonState };
      }),
    );
  }

  // -- devices and revocations -----------------------------------------------------------

  async addDevice(device: Device, credentialHash: string): Promise<void> {
    await this.guarded('add device', (db) =>
      db.run(
        'INSERT INTO devices (id, school_id, name, credential_hash, created_at, last_seen_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)',
        [device.id, device.schoolId, device.name, credentialHash, device.createdAt],
      ),
    );
  }

  /** A device and the hash of its credential. */
  async deviceWithCredential(id: string): Promise<{ device: Device; credentialHash: string } | undefined> {
    const [row] = await this.guarded('get device', (db) => db.all('SELECT * FROM devices WHERE id = ?', [id]));
    return row ? { device: deviceOf(row), credentialHash: String(row['credential_hash']) } : undefined;
  }

  async listDevices(schoolId?: string): Promise<Device[]> {
    const rows = await this.guarded('list devices', (db) =>
      schoolId === undefined
        ? db.all(`SELECT * FROM devices ORDER BY created_at, id LIMIT ${MAX_LIST}`)
        : db.all(`SELECT * FROM devices WHERE school_id = ? ORDER BY created_at, id LIMIT ${MAX_LIST}`, [schoolId]),
    );
    return rows.map(deviceOf);
  }

  /** Marks a device revoked (once: the first time stays) and returns it; DEVICE_NOT_FOUND when unknown. */
  async revokeDevice(id: string, now = Date.now()): Promise<Device> {
    await this.guarded('revoke device', (db) => db.run('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id]));
    const found = await this.deviceWithCredential(id);
    if (!found) throw new LessoncastError('DEVICE_NOT_FOUND', `no device ${id}`);
    return found.device;
  }

  async touchDevice(id: string, now = Date.now()): Promise<void> {
    await this.guarded('touch device', (db) => db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [now, id]));
  }

  /** Records a revocation; one for the same subject again moves its time forward. */
  async addRevocation(r: Revocation): Promise<void> {
    await this.guarded('add revocation', (db) =>
      db.run(
        `INSERT INTO revocations (kind, subject, at, reason) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, subject) DO UPDATE SET at = excluded.at, reason = excluded.reason`,
        [r.kind, r.subject, r.at, r.reason],
      ),
    );
  }

  async listRevocations(): Promise<Revocation[]> {
    const rows = await this.guarded('list revocations', (db) => db.all('SELECT * FROM revocations ORDER BY at'));
    return rows.map((r) => ({
      kind: String(r['kind']) as RevocationKind,
      subject: String(r['subject']),
      at: Number(r['at']),
      reason: String(r['reason']),
    }));
  }
}

function deviceOf(r: Row): Device {
  return {
    id: String(r['id']),
    schoolId: String(r['school_id']),
    name: String(r['name']),
    createdAt: Number(r['created_at']),
    lastSeenAt: nullableNumber(r['last_seen_at']),
    revokedAt: nullableNumber(r['revoked_at']),
  };
}

async function insertLessons(tx: Sql, lessons: StoredLesson[]): Promise<void> {
  for (const l of lessons) {
    await tx.run(`INSERT INTO lessons (${LESSON_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      l.id,
      l.title,
      l.subject,
      l.instructorId,
      l.record ? 1 : 0,
      l.seriesId,
      l.startsAt,
      l.endsAt,
      l.state,
      l.createdAt,
      l.startedAt,
      l.endedAt,
    ]);
    for (const school of l.schools) await tx.run('INSERT INTO lesson_schools (lesson_id, school_id) VALUES (?, ?)', [l.id, school]);
  }
}

/** Lessons matching a WHERE clause (with its ORDER/LIMIT), each with its schools. */
async function selectLessons(sql: Sql, where: string, params: Param[]): Promise<StoredLesson[]> {
  const rows = await sql.all(`SELECT ${LESSON_COLUMNS} FROM lessons WHERE ${where}`, params);
  const schools = new Map<string, string[]>();
  for (let i = 0; i < rows.length; i += CHUNK) {
    const ids = rows.slice(i, i + CHUNK).map((r) => String(r['id']));
    const links = await sql.all<{ lesson_id: string; school_id: string }>(
      `SELECT lesson_id, school_id FROM lesson_schools WHERE lesson_id IN (${ids.map(() => '?').join(', ')}) ORDER BY school_id`,
      ids,
    );
    for (const l of links) {
      const list = schools.get(l.lesson_id) ?? [];
      list.push(l.school_id);
      schools.set(l.lesson_id, list);
    }
  }
  return rows.map((r) => ({
    id: String(r['id']),
    title: String(r['title']),
    subject: String(r['subject']),
    instructorId: String(r['instructor_id']),
    schools: schools.get(String(r['id'])) ?? [],
    record: Number(r['record']) === 1,
    seriesId: typeof r['series_id'] === 'string' ? r['series_id'] : null,
    startsAt: nullableNumber(r['starts_at']),
    endsAt: nullableNumber(r['ends_at']),
    state: String(r['state']) as StoredLessonState,
    createdAt: Number(r['created_at']),
    startedAt: nullableNumber(r['started_at']),
    endedAt: nullableNumber(r['ended_at']),
  }));
}
