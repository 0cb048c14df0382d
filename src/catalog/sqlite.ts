import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Database, Dialect, Param, Row, Sql } from './database.js';

const DIALECT: Dialect = { name: 'sqlite', bigint: 'INTEGER' };

/**
 * The embedded catalog: one SQLite file through Node's built-in node:sqlite (synchronous). Every
 * use goes through one queue, so a transaction's statements are never interleaved with another
 * caller's on the single connection. WAL journal: `sqlite3 file ".backup …"` copies it while it runs.
 */
export class SqliteDatabase implements Database {
  readonly dialect = DIALECT;
  readonly where: string;
  private readonly db: DatabaseSync;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly direct: Sql;

  constructor(file: string) {
    const resolved = file === ':memory:' ? file : path.resolve(file);
    if (resolved !== ':memory:') mkdirSync(path.dirname(resolved), { recursive: true });
    this.where = `sqlite:${resolved}`;
    this.db = new DatabaseSync(resolved);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON');
    const db = this.db;
    this.direct = {
      all: async <T>(sql: string, params: Param[] = []) => db.prepare(sql).all(...params) as T[],
      run: async (sql: string, params: Param[] = []) => Number(db.prepare(sql).run(...params).changes),
    };
  }

  all<T = Row>(sql: string, params: Param[] = []): Promise<T[]> {
    return this.exclusive(() => this.direct.all<T>(sql, params));
  }

  run(sql: string, params: Param[] = []): Promise<number> {
    return this.exclusive(() => this.direct.run(sql, params));
  }

  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.exclusive(async () => {
      if (this.db.isOpen) this.db.close();
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
