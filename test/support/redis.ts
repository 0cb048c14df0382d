import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestRedis {
  url: string;
  port: number;
  /** redis-cli against this server; resolves with its stdout. */
  cli(...args: string[]): Promise<string>;
  /** Stops the server (SIGTERM); state is gone (no persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function cli(port: number, args: string[], host = '127.0.0.1'): Promise<string> {
  return (await run('redis-cli', ['-h', host, '-p', String(port), ...args], { timeout: 5000 })).stdout;
}

/** A real redis-server of our own on a free port of `bind` (loopback unless told), without persistence. */
export async function startRedis(bind = '127.0.0.1'): Promise<TestRedis> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    proc = spawn(
      'redis-server',
      [
        ...['--port', String(port), '--bind', bind, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'],
        // Off the loopback (a test's own network namespaces) it must answer the nodes there.
        ...(bind === '127.0.0.1' ? [] : ['--protected-mode', 'no']),
      ],
      {
        stdio: 'ignore',
      },
    );
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      if ((await cli(port, ['ping'], bind).catch(() => '')).trim() === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer on port ${port}`);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await exited;
  };
  await launch();
  return { url: `redis://${bind}:${port}`, port, cli: (...args) => cli(port, args, bind), stop, restart: launch };
}

/**
 * The Redis that scripts/test.sh started (TEST_REDIS_URL), or one
 * of our own when a test file runs alone. Tests sharing it use their own key prefix.
 */
export async function testRedis(): Promise<{ url: string; close(): Promise<void> }> {
  const url = process.env['TEST_REDIS_URL'];
  if (url) return { url, close: async () => {} };
  const own = await startRedis();
  return { url: own.url, close: own.stop };
}
