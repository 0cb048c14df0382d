import { emptyHistogram, LOSS_EDGES, mean, p95, RTT_EDGES, type Histogram, type SchoolTallyState } from '../lessons/ledgerTally.js';
import { nullableNumber, type Database, type Dialect, type Param, type Row } from './database.js';

/**
 * The per-school ledger (issue 16 §5): one row per lesson and school, what the live events said
 * about it (src/lessons/ledgerRecorder.ts writes it). `lesson_at` (the lesson's start, or its
 * creation if it never went live) is what date ranges select on; `quality` holds the loss and
 * RTT distributions as JSON (fixed buckets, so a row stays small).
 */
export function ledgerSchema(d: Dialect): string[] {
  return [
    `CREATE TABLE ledger (lesson_id TEXT NOT NULL, school_id TEXT NOT NULL, lesson_at ${d.bigint} NOT NULL, invited INTEGER NOT NULL,
      first_joined_at ${d.bigint}, last_left_at ${d.bigint}, connected_ms ${d.bigint} NOT NULL, audio_only_ms ${d.bigint} NOT NULL,
      hands INTEGER NOT NULL, floor_ms ${d.bigint} NOT NULL, quality TEXT NOT NULL, final INTEGER NOT NULL,
      updated_at ${d.bigint} NOT NULL, PRIMARY KEY (lesson_id, school_id))`,
    'CREATE INDEX ledger_school ON ledger (school_id, lesson_at, lesson_id)',
    'CREATE INDEX ledger_when ON ledger (lesson_at, lesson_id, school_id)',
  ];
}

/** One ledger row as the catalog answers it (times in ms since the epoch): the tally, with its lesson and school, and the quality summarised. */
export interface LedgerRow extends Omit<SchoolTallyState, 'loss' | 'rtt'> {
  lessonId: string;
  /** From the timetable, when the lesson is in the catalog. */
  lessonTitle: string | null;
  subject: string | null;
  instructorId: string | null;
  /** When the lesson went live (or was opened, if it never did). */
  lessonAt: number;
  schoolName: string | null;
  district: string | null;
  /** 'present': at least one of its boards joined; 'absent': invited and never came. */
  attendance: 'present' | 'absent';
  lossPctMean: number | null;
  lossPctP95: number | null;
  rttMsMean: number | null;
  rttMsP95: number | null;
  /** Sampling ticks behind the loss figures. */
  qualitySamples: number;
  /** The lesson ended and this row is complete (false while it runs). */
  final: boolean;
  updatedAt: number;
}

export interface LedgerQuery {
  schoolId?: string;
  /** Lessons with `from ≤ lessonAt < to`. */
  from: number;
  to: number;
  /** Only these lessons (a token that lists lessons); 'all' otherwise. */
  scope: 'all' | string[];
  limit: number;
  offset: number;
}

const SELECT = `SELECT l.*, s.name AS school_name, s.district AS district, ls.title AS lesson_title, ls.subject AS subject,
  ls.instructor_id AS instructor_id FROM ledger l LEFT JOIN schools s ON s.id = l.school_id LEFT JOIN lessons ls ON ls.id = l.lesson_id`;
const ORDER = 'ORDER BY l.lesson_at, l.lesson_id, l.school_id';

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function histogramsOf(row: Row): { loss: Histogram; rtt: Histogram } {
  try {
    const q = JSON.parse(String(row['quality'])) as { loss?: Histogram; rtt?: Histogram };
    return { loss: q.loss ?? emptyHistogram(LOSS_EDGES), rtt: q.rtt ?? emptyHistogram(RTT_EDGES) };
  } catch {
    return { loss: emptyHistogram(LOSS_EDGES), rtt: emptyHistogram(RTT_EDGES) };
  }
}

function tallyOf(row: Row): SchoolTallyState {
  return {
    schoolId: String(row['school_id']),
    invited: Number(row['invited']) === 1,
    firstJoinedAt: nullableNumber(row['first_joined_at']),
    lastLeftAt: nullableNumber(row['last_left_at']),
    connectedMs: Number(row['connected_ms']),
    audioOnlyMs: Number(row['audio_only_ms']),
    hands: Number(row['hands']),
    floorMs: Number(row['floor_ms']),
    ...histogramsOf(row),
  };
}

function rowOf(row: Row): LedgerRow {
  const { loss, rtt, ...tally } = tallyOf(row);
  return {
    ...tally,
    lessonId: String(row['lesson_id']),
    lessonTitle: text(row['lesson_title']),
    subject: text(row['subject']),
    instructorId: text(row['instructor_id']),
    lessonAt: Number(row['lesson_at']),
    schoolName: text(row['school_name']),
    district: text(row['district']),
    attendance: tally.firstJoinedAt === null ? 'absent' : 'present',
    lossPctMean: mean(loss),
    lossPctP95: p95(loss, LOSS_EDGES),
    rttMsMean: mean(rtt),
    rttMsP95: p95(rtt, RTT_EDGES),
    qualitySamples: loss.count,
    final: Number(row['final']) === 1,
    updatedAt: Number(row['updated_at']),
  };
}

/** The ledger's table: written by the recorder, read by REST. Engine failures are the caller's (CatalogStore guards them). */
export class LedgerTable {
  constructor(private readonly guarded: <T>(what: string, fn: (db: Database) => Promise<T>) => Promise<T>) {}

  /**
   * Stores a lesson's rows, all in one transaction. A final row is never replaced by a row that
   * is not (a late write of a run that was still going).
   */
  put(lessonId: string, lessonAt: number, rows: SchoolTallyState[], final: boolean, now = Date.now()): Promise<void> {
    return this.guarded('put ledger', (db) =>
      db.transaction(async (tx) => {
        for (const r of rows)
          await tx.run(
            `INSERT INTO ledger (lesson_id, school_id, lesson_at, invited, first_joined_at, last_left_at, connected_ms, audio_only_ms,
               hands, floor_ms, quality, final, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (lesson_id, school_id) DO UPDATE SET lesson_at = excluded.lesson_at, invited = excluded.invited,
               first_joined_at = excluded.first_joined_at, last_left_at = excluded.last_left_at, connected_ms = excluded.connected_ms,
               audio_only_ms = excluded.audio_only_ms, hands = excluded.hands, floor_ms = excluded.floor_ms, quality = excluded.quality,
               final = excluded.final, updated_at = excluded.updated_at
             WHERE ledger.final = 0 OR excluded.final = 1`,
            [
              lessonId,
              r.schoolId,
              lessonAt,
              r.invited ? 1 : 0,
              r.firstJoinedAt,
              r.lastLeftAt,
              Math.round(r.connectedMs),
              Math.round(r.audioOnlyMs),
              r.hands,
              Math.round(r.floorMs),
              JSON.stringify({ loss: r.loss, rtt: r.rtt }),
              final ? 1 : 0,
              now,
            ],
          );
      }),
    );
  }

  /** What a previous run stored for a lesson (a resumed lesson adds to it), and whether it was final. */
  async stored(lessonId: string): Promise<{ rows: SchoolTallyState[]; final: boolean }> {
    const rows = await this.guarded('read ledger', (db) =>
      db.all('SELECT * FROM ledger WHERE lesson_id = ? ORDER BY school_id', [lessonId]),
    );
    return { rows: rows.map(tallyOf), final: rows.some((r) => Number(r['final']) === 1) };
  }

  /** One lesson's rows, by school. */
  async lesson(lessonId: string): Promise<LedgerRow[]> {
    const rows = await this.guarded('read ledger', (db) => db.all(`${SELECT} WHERE l.lesson_id = ? ORDER BY l.school_id`, [lessonId]));
    return rows.map(rowOf);
  }

  /** Rows of lessons in [from, to), one school's or every school's, oldest lesson first; `total` counts them all. */
  async search(q: LedgerQuery): Promise<{ total: number; rows: LedgerRow[] }> {
    const { where, params } = whereOf(q);
    if (!where) return { total: 0, rows: [] };
    return this.guarded('search ledger', async (db) => {
      const [count] = await db.all<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ledger l WHERE ${where}`, params);
      const rows = await db.all(`${SELECT} WHERE ${where} ${ORDER} LIMIT ${q.limit} OFFSET ${q.offset}`, params);
      return { total: Number(count?.n ?? 0), rows: rows.map(rowOf) };
    });
  }

  /** Every row of the query, a page at a time by key (a term of a region is ~200,000 rows: never all in memory). */
  async *each(q: Omit<LedgerQuery, 'limit' | 'offset'>, page = 1000): AsyncGenerator<LedgerRow> {
    const base = whereOf({ ...q, limit: page, offset: 0 });
    if (!base.where) return;
    let after: LedgerRow | undefined;
    for (;;) {
      const where = [base.where];
      const params = [...base.params];
      if (after) {
        where.push('(l.lesson_at > ? OR (l.lesson_at = ? AND (l.lesson_id > ? OR (l.lesson_id = ? AND l.school_id > ?))))');
        params.push(after.lessonAt, after.lessonAt, after.lessonId, after.lessonId, after.schoolId);
      }
      const rows = await this.guarded('read ledger', (db) =>
        db.all(`${SELECT} WHERE ${where.join(' AND ')} ${ORDER} LIMIT ${page}`, params),
      );
      for (const r of rows) yield (after = rowOf(r));
      if (rows.length < page) return;
    }
  }
}

function whereOf(q: LedgerQuery): { where: string; params: Param[] } {
  if (q.scope !== 'all' && q.scope.length === 0) return { where: '', params: [] };
  const where = ['l.lesson_at >= ?', 'l.lesson_at < ?'];
  const params: Param[] = [q.from, q.to];
  if (q.schoolId !== undefined) {
    where.unshift('l.school_id = ?');
    params.unshift(q.schoolId);
  }
  if (q.scope !== 'all') {
    where.push(`l.lesson_id IN (${q.scope.map(() => '?').join(', ')})`);
    params.push(...q.scope);
  }
  return { where: where.join(' AND '), params };
}
