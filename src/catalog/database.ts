/**
 * The one seam between the catalog and its two engines: SQL written once (`?` placeholders,
 * SQL both SQLite and PostgreSQL speak), run by an engine that knows its own dialect.
 */
export type Row = Record<string, unknown>;
export type Param = string | number | null;

/** A nullable number column as read back (PostgreSQL gives BIGINT as a string). */
export const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export interface Sql {
  all<T = Row>(sql: string, params?: Param[]): Promise<T[]>;
  /** Runs a statement; resolves with the rows it changed. */
  run(sql: string, params?: Param[]): Promise<number>;
}

export interface Dialect {
  name: 'sqlite' | 'postgres';
  /** A 64-bit integer column (times in ms). */
  bigint: string;
}

export interface Database extends Sql {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction that no other writer of the catalog interleaves with (SQLite:
   * BEGIN IMMEDIATE on the one connection; PostgreSQL: a transaction holding the catalog's
   * advisory lock, so writers on every node take turns). Committed when `fn` resolves, rolled back
   * when it throws.
   */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** Where it is, for logs and errors (never a password). */
  readonly where: string;
  close(): Promise<void>;
}
