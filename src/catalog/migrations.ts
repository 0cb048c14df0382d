import { LessoncastError } from '../errors.js';
import { archiveIndexSchema, archiveIndexSpanSchema } from './archiveIndex.js';
import type { Database, Dialect } from './database.js';
import { ledgerSchema } from './ledger.js';

export interface Migration {
  version: number;
  name: string;
  /** Statements, applied in order inside one transaction with the version's row. */
  up(d: Dialect): string[];
}

/**
 * The catalog's schema, version by version. Never edit a released one: add the next. Archive
 * index and the admin page's needs come as more versions here and more methods on CatalogStore.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'schools, people, subjects, timetable',
    up: (d) => [
      `CREATE TABLE schools (id TEXT PRIMARY KEY, name TEXT NOT NULL, district TEXT NOT NULL, boards INTEGER NOT NULL,
        created_at ${d.bigint} NOT NULL, updated_at ${d.bigint} NOT NULL, deleted_at ${d.bigint})`,
      `CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
        created_at ${d.bigint} NOT NULL, updated_at ${d.bigint} NOT NULL, deleted_at ${d.bigint})`,
      `CREATE TABLE subjects (id TEXT PRIMARY KEY, name TEXT NOT NULL,
        created_at ${d.bigint} NOT NULL, updated_at ${d.bigint} NOT NULL, deleted_at ${d.bigint})`,
      `CREATE TABLE lessons (id TEXT PRIMARY KEY, title TEXT NOT NULL, subject TEXT NOT NULL, instructor_id TEXT NOT NULL,
        record INTEGER NOT NULL, series_id TEXT, starts_at ${d.bigint}, ends_at ${d.bigint}, state TEXT NOT NULL,
        created_at ${d.bigint} NOT NULL, started_at ${d.bigint}, ended_at ${d.bigint})`,
      'CREATE INDEX lessons_slot ON lessons (starts_at, ends_at)',
      'CREATE INDEX lessons_instructor ON lessons (instructor_id, starts_at)',
      'CREATE INDEX lessons_state ON lessons (state, created_at)',
      // Invited schools need not be in `schools`: a lesson opened at once names whatever schools its creator gives.
      `CREATE TABLE lesson_schools (lesson_id TEXT NOT NULL REFERENCES lessons (id), school_id TEXT NOT NULL,
        PRIMARY KEY (lesson_id, school_id))`,
      'CREATE INDEX lesson_schools_school ON lesson_schools (school_id, lesson_id)',
    ],
  },
  {
    version: 2,
    name: 'devices and revocations',
    up: (d) => [
      `CREATE TABLE devices (id TEXT PRIMARY KEY, school_id TEXT NOT NULL, name TEXT NOT NULL, credential_hash TEXT NOT NULL,
        created_at ${d.bigint} NOT NULL, last_seen_at ${d.bigint}, revoked_at ${d.bigint})`,
      'CREATE INDEX devices_school ON devices (school_id)',
      `CREATE TABLE revocations (kind TEXT NOT NULL, subject TEXT NOT NULL, at ${d.bigint} NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (kind, subject))`,
    ],
  },
  { version: 3, name: 'archive index', up: archiveIndexSchema },
  { version: 4, name: 'per-school ledger', up: ledgerSchema },
  { version: 5, name: "archive index: a school's recordings with their end", up: archiveIndexSpanSchema },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface MigrationOutcome {
  from: number;
  to: number;
  applied: Array<{ version: number; name: string }>;
}

/**
 * Brings the database to SCHEMA_VERSION, in one transaction (several nodes starting at once take
 * turns on the catalog's write lock: the second finds nothing to do). A database newer than this
 * lessoncast is refused: an older binary must not write a schema it does not know.
 */
export async function migrate(db: Database, now = Date.now()): Promise<MigrationOutcome> {
  return db.transaction(async (tx) => {
    await tx.run(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at ${db.dialect.bigint} NOT NULL)`,
    );
    const [row] = await tx.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const from = Number(row?.v ?? 0);
    if (from > SCHEMA_VERSION)
      throw new LessoncastError(
        'UNAVAILABLE',
        `the catalog at ${db.where} is at schema version ${from}, newer than this lessoncast knows (${SCHEMA_VERSION}): run a newer lessoncast`,
      );
    const applied: MigrationOutcome['applied'] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      for (const statement of m.up(db.dialect)) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, now]);
      applied.push({ version: m.version, name: m.name });
    }
    return { from, to: SCHEMA_VERSION, applied };
  });
}
