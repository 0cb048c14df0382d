/** The ledger as REST, the CSV and the archive page show it (no server imports: the web pages read its type). */
import type { LedgerRow } from './ledger.js';

/** An ISO time; tolerates a missing one: CSV_COLUMNS reads the view's keys off an empty row. */
export const iso = (ms: number | null): string | null => (typeof ms === 'number' ? new Date(ms).toISOString() : null);
const tenths = (v: number): number => Math.round(v * 10) / 10;

/** A ledger row as REST and the CSV show it; the CSV's columns are these keys, in this order. */
export function ledgerView(r: LedgerRow) {
  return {
    lessonId: r.lessonId,
    lessonTitle: r.lessonTitle,
    subject: r.subject,
    instructorId: r.instructorId,
    lessonAt: iso(r.lessonAt),
    schoolId: r.schoolId,
    schoolName: r.schoolName,
    district: r.district,
    invited: r.invited,
    attendance: r.attendance,
    firstJoinedAt: iso(r.firstJoinedAt),
    lastLeftAt: iso(r.lastLeftAt),
    connectedMinutes: tenths(r.connectedMs / 60_000),
    audioOnlyMinutes: tenths(r.audioOnlyMs / 60_000),
    handsRaised: r.hands,
    floorSeconds: Math.round(r.floorMs / 1000),
    lossPctMean: r.lossPctMean,
    lossPctP95: r.lossPctP95,
    rttMsMean: r.rttMsMean,
    rttMsP95: r.rttMsP95,
    qualitySamples: r.qualitySamples,
    final: r.final,
    updatedAt: iso(r.updatedAt),
  };
}
export type LedgerView = ReturnType<typeof ledgerView>;

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled.
 * Text that a spreadsheet would run as a formula (= + - @ at the start) gets a leading apostrophe.
 */
export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_COLUMNS = Object.keys(ledgerView({} as LedgerRow)) as Array<keyof LedgerView>;

/** The CSV: a UTF-8 byte order mark (spreadsheets then read Azerbaijani letters right), a header row, CRLF lines. */
export async function* csvLines(rows: AsyncIterable<LedgerRow>): AsyncGenerator<string> {
  yield `\uFEFF${CSV_COLUMNS.join(',')}\r\n`;
  for await (const r of rows) {
    const v = ledgerView(r);
    yield `${CSV_COLUMNS.map((c) => csvField(v[c])).join(',')}\r\n`;
  }
}
