import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis.js';

const run = promisify(execFile);
const BIN = process.env['TEST_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const asRoot = process.getuid?.() === 0;

export interface TestPostgres {
  /** postgres://… of the cluster's `postgres` database (trust authentication on loopback). */
  url: string;
  port: number;
  /** Its Unix socket's folder: reachable from any network namespace (`?host=<dir>` in a URL). */
  socketDir: string;
  /** A fresh empty database in this cluster; resolves with its URL. */
  database(): Promise<string>;
  /** Stops the server (fast shutdown); the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root (initdb and postgres refuse root). */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, bin), ...args]] : [path.join(BIN, bin), args];
}

async function psql(port: number, sql: string): Promise<void> {
  const [cmd, args] = pgCommand('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-qAt', '-c', sql]);
  await run(cmd, args, { timeout: 10_000 });
}

/**
 * A real PostgreSQL cluster of our own (Debian's postgresql 15): initdb into a temp folder, the
 * server on a free loopback port, no other listener, trust authentication for loopback only.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) await run('chown', ['postgres:postgres', dir]);
  const [initCmd, initArgs] = pgCommand('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  await run(initCmd, initArgs, { timeout: 60_000 });
  const port = await freePort();
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_connections=60`;
  const launch = async (): Promise<void> => {
    const [cmd, args] = pgCommand('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
    await run(cmd, args, { timeout: 70_000 });
  };
  let up = true;
  const stop = async (): Promise<void> => {
    if (!up) return;
    const [cmd, args] = pgCommand('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    await run(cmd, args, { timeout: 60_000 });
    up = false;
  };
  await launch();
  let n = 0;
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    socketDir: dir,
    database: async () => {
      const name = `lc_${process.pid}_${++n}`;
      await psql(port, `CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    restart: async () => {
      await launch();
      up = true;
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
