/**
 * Debian's coturn for tests: a turnserver started from a given turnserver.conf on loopback,
 * stopped at teardown (never left running), and turnutils_uclient/turnutils_peer runs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import path from 'node:path';

export function coturnInstalled(): string | undefined {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * A port free on 127.0.0.1 for both TCP and UDP right now (coturn listens on both), drawn from
 * 20000-31999: below the kernel's ephemeral range (32768+), so a server started later on port 0
 * (the test's own lessoncast) or an outgoing connection cannot take it before coturn binds it.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const tcp = createServer();
    const tcpOk = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!tcpOk) continue;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    udp.close();
    await new Promise((r) => tcp.close(r));
    if (ok) return port;
  }
  throw new Error('no port free for both TCP and UDP');
}

export interface Coturn {
  output(): string;
  stop(): Promise<void>;
}

/** Starts `turnserver -c conf` with its pid file and user database under `dir`; resolves once it accepts TCP on `port`. */
export async function startCoturn(conf: string, dir: string, port: number): Promise<Coturn> {
  const child: ChildProcess = spawn(
    'turnserver',
    ['-c', conf, '--pidfile', path.join(dir, 'turnserver.pid'), '--userdb', path.join(dir, 'turndb')],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`turnserver exited (${child.exitCode}):\n${out.slice(-3000)}`);
    if (await accepts(port)) return { output: () => out, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`turnserver does not listen on ${port} after 10 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface UclientResult {
  output: string;
  sent: number;
  received: number;
  /** The relayed address coturn allocated, if the allocation succeeded. */
  relayPort: number | undefined;
}

/**
 * turnutils_uclient (verbose) through the TURN server at 127.0.0.1:`port` to a UDP echo peer:
 * allocates with the username/password given, binds a channel to the peer and sends
 * `messages`. `extra` adds flags (-t -S: TURN over TLS). Bounded by `timeoutMs`: over TLS,
 * uclient 4.6.1 allocates and then waits on its refresh without end.
 */
export function uclient(o: {
  port: number;
  username: string;
  password: string;
  peer: string;
  peerPort: number;
  extra?: string[];
  timeoutMs?: number;
}): UclientResult {
  const args = ['-v', ...(o.extra ?? []), '-u', o.username, '-w', o.password, '-p', String(o.port), '-e', o.peer, '-r', String(o.peerPort)];
  // Line-buffered: a uclient stopped at the timeout keeps what it printed.
  const r = spawnSync('stdbuf', ['-oL', '-eL', 'turnutils_uclient', ...args, '-n', '5', '-m', '1', '-l', '120', '127.0.0.1'], {
    encoding: 'utf8',
    timeout: o.timeoutMs ?? 15_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  const totals = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(output);
  const relay = /Received relay addr: [\d.]+:(\d+)/.exec(output);
  return {
    output,
    sent: Number(totals?.[1] ?? 0),
    received: Number(totals?.[2] ?? 0),
    relayPort: relay ? Number(relay[1]) : undefined,
  };
}

/** turnutils_peer: a UDP echo peer on ip:port until stopped. */
export function startPeer(ip: string, port: number): { stop(): void } {
  const child = spawn('turnutils_peer', ['-L', ip, '-p', String(port)], { stdio: 'ignore' });
  return { stop: () => void child.kill('SIGTERM') };
}
