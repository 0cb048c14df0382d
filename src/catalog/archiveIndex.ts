import {
  searchText,
  TOTAL_COUNT_CAP,
  type RecordingIndexPort,
  type RecordingPage,
  type RecordingSearch,
  type RecordingSummary,
  type SearchScope,
} from '../recording/archive.js';
import type { Database, Dialect, Param, Sql } from './database.js';

/**
 * The archive's index (issue 16 §4): one narrow row per recording with the columns searches
 * filter and sort on; its schools (attended and invited) with its start, so that one school's
 * recordings are found from that table's index; its summary as JSON (what the archive answers)
 * apart, read only for the page shown; and its text for substring search, indexed by trigrams
 * (SQLite FTS5 `trigram`, PostgreSQL `pg_trgm`), so that "lever" finds "Physics: Levers" among
 * 200,000 recordings without a scan. The manifests on disk stay the truth: the archive fills and
 * corrects this (Archive.reconcile, `lessoncast recordings reindex`); nothing here is the only
 * copy of anything.
 */
export function archiveIndexSchema(d: Dialect): string[] {
  // SQLite: an INTEGER PRIMARY KEY (a rowid VACUUM keeps) that the text table's rows point to.
  const key = d.name === 'sqlite' ? 'n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE' : 'id TEXT PRIMARY KEY';
  const text = d.name === 'sqlite' ? '' : ', text_lc TEXT NOT NULL';
  const common = [
    `CREATE TABLE recordings (${key}, subject_lc TEXT NOT NULL, instructor_id TEXT NOT NULL, state TEXT NOT NULL,
      started_at ${d.bigint} NOT NULL, ended_at ${d.bigint}${text})`,
    'CREATE INDEX recordings_started ON recordings (started_at, id)',
    'CREATE INDEX recordings_instructor ON recordings (instructor_id, started_at)',
    'CREATE INDEX recordings_subject ON recordings (subject_lc, started_at)',
    'CREATE TABLE recording_summaries (id TEXT PRIMARY KEY, summary TEXT NOT NULL)',
    `CREATE TABLE recording_schools (school_id TEXT NOT NULL, recording_id TEXT NOT NULL, started_at ${d.bigint} NOT NULL,
      PRIMARY KEY (school_id, recording_id))`,
    'CREATE INDEX recording_schools_started ON recording_schools (school_id, started_at)',
    'CREATE INDEX recording_schools_recording ON recording_schools (recording_id)',
  ];
  return d.name === 'sqlite'
    ? [...common, `CREATE VIRTUAL TABLE recordings_text USING fts5(text, tokenize = 'trigram')`]
    : [
        // Trusted since PostgreSQL 13: the catalog's owner may create it without being a superuser.
        'CREATE EXTENSION IF NOT EXISTS pg_trgm',
        ...common,
        'CREATE INDEX recordings_text ON recordings USING gin (text_lc gin_trgm_ops)',
      ];
}

/**
 * Version 5: a school's rows carry the recording's end too, under one covering index, so that a
 * search by school (and dates) is answered from that table alone: PostgreSQL spent one lookup into
 * `recordings` per recording of the school (0.016 ms each, 2,500 a year).
 */
export function archiveIndexSpanSchema(d: Dialect): string[] {
  return [
    `ALTER TABLE recording_schools ADD COLUMN ended_at ${d.bigint}`,
    'UPDATE recording_schools SET ended_at = (SELECT r.ended_at FROM recordings r WHERE r.id = recording_schools.recording_id)',
    'DROP INDEX recording_schools_started',
    'CREATE INDEX recording_schools_span ON recording_schools (school_id, started_at, ended_at, recording_id)',
  ];
}

/** The archive index's schema as the migrations leave it (versions 3 and 5), for a database of its own (tests, bench). */
export function archiveIndexSchemas(d: Dialect): string[] {
  return [...archiveIndexSchema(d), ...archiveIndexSpanSchema(d)];
}

/** Rows written per transaction when many are put at once (a reindex). */
const BATCH = 500;

/** `needle` as a GLOB (SQLite, case-sensitive on lower-cased text) or LIKE (PostgreSQL) pattern matching it anywhere. */
function containsPattern(d: Dialect, needle: string): string {
  const n = needle.toLowerCase();
  return d.name === 'sqlite' ? `*${n.replace(/[*?[]/g, (c) => `[${c}]`)}*` : `%${n.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export class ArchiveIndex implements RecordingIndexPort {
  /** `countCap`: where a broad search stops counting (RecordingPage); smaller in tests. */
  constructor(
    private readonly db: Database,
    private readonly countCap = TOTAL_COUNT_CAP,
  ) {}

  async search(q: RecordingSearch, scope: SearchScope, now = Date.now()): Promise<RecordingPage> {
    if (scope !== 'all' && scope.length === 0) return { total: 0, recordings: [] };
    const { where, params } = dateRange('r', q, now);
    if (q.instructor) {
      where.push('r.instructor_id = ?');
      params.push(q.instructor);
    }
    if (q.subject) {
      where.push('r.subject_lc = ?');
      params.push(q.subject.toLowerCase());
    }
    // A school's recordings are found from its own index (narrowed by start where the range allows)
    // and joined to theirs: PostgreSQL, given `id IN (…)`, read every recording against the list.
    const school = q.school
      ? ` JOIN recording_schools rs ON rs.recording_id = r.id AND rs.school_id = ?${q.to ? ' AND rs.started_at <= ?' : ''}`
      : '';
    const schoolParams: Param[] = q.school ? [q.school, ...(q.to ? [q.to.getTime()] : [])] : [];
    if (q.q) {
      const d = this.db.dialect;
      if (d.name === 'postgres') {
        where.push('r.text_lc LIKE ?');
        params.push(containsPattern(d, q.q));
      } else if ([...q.q].length >= 3) {
        // A trigram phrase MATCH is a substring search served by the index (a GLOB, also indexed,
        // measured several times slower). Both sides are lower-cased already, so the tokenizer's own
        // case folding changes nothing: the contract test holds it to the scan's rule.
        where.push('r.n IN (SELECT rowid FROM recordings_text WHERE recordings_text MATCH ?)');
        params.push(`"${q.q.toLowerCase().replace(/"/g, '""')}"`);
      } else {
        // One or two letters are below a trigram: the text table is read through.
        where.push('r.n IN (SELECT rowid FROM recordings_text WHERE text GLOB ?)');
        params.push(containsPattern(d, q.q));
      }
    }
    if (scope !== 'all') {
      where.push(`r.id IN (${scope.map(() => '?').join(', ')})`);
      params.push(...scope);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = q.limit ?? 100;
    const offset = q.offset ?? 0;
    // The page's ids from the narrow table, then their summaries one by one (a scalar subquery:
    // given a join, SQLite's planner was seen to scan every summary against a page of 50).
    const page = (from: string) =>
      `SELECT p.started_at, p.id, (SELECT s.summary FROM recording_summaries s WHERE s.id = p.id) AS summary
       FROM (SELECT id, started_at FROM ${from} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?) p`;
    const parse = (rows: Array<{ summary: string | null }>): RecordingSummary[] =>
      rows.flatMap((r) => (r.summary === null ? [] : [JSON.parse(r.summary) as RecordingSummary]));
    if (q.school || q.q) {
      // Text or a school: every match must be found to sort them (the text index is the dear
      // part), so they are found once, then counted and paged from that one set, in one statement.
      // A school with nothing but dates is answered by its own rows alone (version 5's index).
      const spanOnly = q.school && !q.q && !q.instructor && !q.subject && scope === 'all';
      const span = dateRange('rs', q, now);
      const source = spanOnly
        ? {
            sql: `SELECT rs.recording_id AS id, rs.started_at AS started_at FROM recording_schools rs
                  WHERE ${['rs.school_id = ?', ...span.where].join(' AND ')}`,
            params: [q.school!, ...span.params],
          }
        : {
            sql: `SELECT r.id AS id, r.started_at AS started_at FROM recordings r${school} ${clause}`,
            params: [...schoolParams, ...params],
          };
      const rows = await this.db.all<{ k: number; total: number | string | null; summary: string | null }>(
        `WITH m AS MATERIALIZED (${source.sql})
         SELECT 0 AS k, (SELECT COUNT(*) FROM m) AS total, NULL AS summary, NULL AS started_at, NULL AS id
         UNION ALL SELECT 1 AS k, NULL, q.summary, q.started_at, q.id FROM (${page('m')}) q
         ORDER BY k, started_at DESC, id DESC`,
        [...source.params, limit, offset],
      );
      return { total: Number(rows.find((r) => r.k === 0)?.total ?? 0), recordings: parse(rows) };
    }
    // Otherwise the page streams from an index (start, instructor or subject, each with the start)
    // and the count is the index's. A broad search (everything, or a date range) stops counting at
    // the cap: counting 200,000 rows would cost more than the page itself.
    const capped = !q.instructor && !q.subject;
    const cap = capped ? ` LIMIT ${this.countCap + 1}` : '';
    const [rows, [count]] = await Promise.all([
      this.db.all<{ summary: string | null }>(`${page(`recordings r ${clause}`)} ORDER BY p.started_at DESC, p.id DESC`, [
        ...params,
        limit,
        offset,
      ]),
      this.db.all<{ n: number | string }>(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM recordings r ${clause}${cap}) c`, params),
    ]);
    const n = Number(count?.n ?? 0);
    return capped && n > this.countCap
      ? { total: this.countCap, totalCapped: true, recordings: parse(rows) }
      : { total: n, recordings: parse(rows) };
  }

  async put(summaries: readonly RecordingSummary[]): Promise<void> {
    // The last word on an id wins, as it would one by one.
    const unique = [...new Map(summaries.map((x) => [x.id, x])).values()];
    for (let i = 0; i < unique.length; i += BATCH) {
      const batch = unique.slice(i, i + BATCH);
      await this.db.transaction(async (tx) => {
        await this.removeIds(
          tx,
          batch.map((x) => x.id),
        );
        const sqlite = this.db.dialect.name === 'sqlite';
        await insertRows(
          tx,
          `recordings (id, subject_lc, instructor_id, state, started_at, ended_at${sqlite ? '' : ', text_lc'})`,
          batch.map((x) => [
            x.id,
            x.subject.toLowerCase(),
            x.instructorId,
            x.state,
            Date.parse(x.startedAt),
            x.endedAt ? Date.parse(x.endedAt) : null,
            ...(sqlite ? [] : [searchText(x)]),
          ]),
        );
        await insertRows(
          tx,
          'recording_summaries (id, summary)',
          batch.map((x) => [x.id, JSON.stringify(x)]),
        );
        const schools = batch.flatMap((x) =>
          [...new Set([...x.schools.map((y) => y.id), ...x.invitedSchools])].map((school) => [
            school,
            x.id,
            Date.parse(x.startedAt),
            x.endedAt ? Date.parse(x.endedAt) : null,
          ]),
        );
        await insertRows(tx, 'recording_schools (school_id, recording_id, started_at, ended_at)', schools);
        if (sqlite) {
          // The text table's rowid is the recording's n.
          const ns = await tx.all<{ n: number; id: string }>(
            `SELECT n, id FROM recordings WHERE id IN (${marks(batch.length)})`,
            batch.map((x) => x.id),
          );
          const byId = new Map(batch.map((x) => [x.id, x]));
          await insertRows(
            tx,
            'recordings_text (rowid, text)',
            ns.map((r) => [r.n, searchText(byId.get(r.id)!)]),
          );
        }
      });
    }
  }

  async remove(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      await this.db.transaction((tx) => this.removeIds(tx, batch));
    }
  }

  async states(): Promise<Map<string, RecordingSummary['state']>> {
    const rows = await this.db.all<{ id: string; state: RecordingSummary['state'] }>('SELECT id, state FROM recordings');
    return new Map(rows.map((r) => [r.id, r.state]));
  }

  async unfinished(): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM recordings WHERE state = 'recording'`);
    return rows.map((r) => r.id);
  }

  /** Fresh statistics for the query planners after many rows changed (a reindex). */
  async optimize(): Promise<void> {
    if (this.db.dialect.name === 'sqlite') await this.db.run('ANALYZE');
    // VACUUM too: it marks the pages all-visible, so a school's search reads its covering index only.
    else for (const table of ['recordings', 'recording_schools', 'recording_summaries']) await this.db.run(`VACUUM (ANALYZE) ${table}`);
  }

  async clear(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM recording_schools');
      await tx.run('DELETE FROM recording_summaries');
      await tx.run('DELETE FROM recordings');
      if (this.db.dialect.name === 'sqlite') await tx.run('DELETE FROM recordings_text');
    });
  }

  private async removeIds(tx: Sql, ids: readonly string[]): Promise<void> {
    const list = marks(ids.length);
    if (this.db.dialect.name === 'sqlite')
      await tx.run(`DELETE FROM recordings_text WHERE rowid IN (SELECT n FROM recordings WHERE id IN (${list}))`, [...ids]);
    await tx.run(`DELETE FROM recording_schools WHERE recording_id IN (${list})`, [...ids]);
    await tx.run(`DELETE FROM recording_summaries WHERE id IN (${list})`, [...ids]);
    await tx.run(`DELETE FROM recordings WHERE id IN (${list})`, [...ids]);
  }
}

/**
 * Conditions on `alias` (recordings, or a school's rows, which carry the same start and end) for
 * recordings overlapping [from, to]: one still going on lasts until now (as the scan reads it).
 */
function dateRange(alias: string, q: RecordingSearch, now: number): { where: string[]; params: Param[] } {
  const where: string[] = [];
  const params: Param[] = [];
  if (q.from) {
    where.push(`(${alias}.ended_at >= ? OR (${alias}.ended_at IS NULL AND ? <= ?))`);
    params.push(q.from.getTime(), q.from.getTime(), now);
  }
  if (q.to) {
    where.push(`${alias}.started_at <= ?`);
    params.push(q.to.getTime());
  }
  return { where, params };
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** Multi-row INSERTs, at most ~8,000 values each (well under both engines' limits on parameters). */
async function insertRows(tx: Sql, into: string, rows: Param[][]): Promise<void> {
  if (rows.length === 0) return;
  const width = rows[0]!.length;
  const per = Math.max(1, Math.floor(8000 / width));
  const row = `(${marks(width)})`;
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    await tx.run(`INSERT INTO ${into} VALUES ${chunk.map(() => row).join(', ')}`, chunk.flat());
  }
}
