/**
 * What the fan-out bench listens with.
 *
 * - The sink: one UDP socket that every unsampled output is sent to and that
 *   nobody reads. The kernel drops what overflows its small buffer, so the
 *   SFU still pays for every send while the load generator pays nothing.
 * - Sampled outputs: one socket each, read in Node. SRTP leaves the RTP header
 *   in clear, so sequence numbers per SSRC give received vs expected (loss)
 *   and going-backwards packets (reordering) without any keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';

export interface Destination {
  ip: string;
  port: number;
}

export interface LossCounters {
  received: number;
  expected: number;
  reordered: number;
}

/** Anything that can say how many packets it got and how many it should have got. */
export interface LossProbe {
  readonly label: string;
  counters(): LossCounters;
}

export function lossBetween(a: LossCounters, b: LossCounters): { loss: number; received: number; expected: number; reordered: number } {
  const received = b.received - a.received;
  const expected = b.expected - a.expected;
  return { loss: expected > 0 ? Math.max(0, 1 - received / expected) : NaN, received, expected, reordered: b.reordered - a.reordered };
}

export function sumCounters(list: LossCounters[]): LossCounters {
  return list.reduce(
    (a, c) => ({ received: a.received + c.received, expected: a.expected + c.expected, reordered: a.reordered + c.reordered }),
    {
      received: 0,
      expected: 0,
      reordered: 0,
    },
  );
}

/** Received, expected and late packets per SSRC, from RTP sequence numbers. */
export class SeqTracker {
  private readonly streams = new Map<number, { received: number; base: number; highest: number; reordered: number }>();

  add(ssrc: number, seq: number): void {
    const s = this.streams.get(ssrc);
    if (!s) {
      this.streams.set(ssrc, { received: 1, base: seq, highest: seq, reordered: 0 });
      return;
    }
    s.received++;
    // Signed 16-bit distance from the highest seen: wrap-safe; negative = a late packet.
    const delta = ((seq - (s.highest & 0xffff) + 0x18000) & 0xffff) - 0x8000;
    if (delta > 0) s.highest += delta;
    else s.reordered++;
  }

  counters(): LossCounters {
    let received = 0;
    let expected = 0;
    let reordered = 0;
    for (const s of this.streams.values()) {
      received += s.received;
      expected += s.highest - s.base + 1;
      reordered += s.reordered;
    }
    return { received, expected, reordered };
  }
}

/** A UDP socket counting RTP packets and sequence gaps per SSRC (RTCP, muxed on the same port, is skipped). */
export class RtpSampleSocket implements LossProbe {
  private readonly seq = new SeqTracker();

  private constructor(
    readonly label: string,
    private readonly socket: dgram.Socket,
  ) {
    socket.on('message', (msg) => {
      if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
      const pt = msg[1]! & 0x7f;
      if (pt >= 64 && pt <= 95) return; // RTCP (SR 200 … 207 reads as 72 … 79)
      this.seq.add(msg.readUInt32BE(8), msg.readUInt16BE(2));
    });
  }

  static async open(label: string, ip = '127.0.0.1'): Promise<RtpSampleSocket> {
    const socket = await bind(ip);
    // A burst while the load generator's core is busy must not look like SFU loss.
    socket.setRecvBufferSize(2 * 1024 * 1024);
    return new RtpSampleSocket(label, socket);
  }

  get destination(): Destination {
    const a = this.socket.address();
    return { ip: a.address, port: a.port };
  }

  counters(): LossCounters {
    return this.seq.counters();
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * The unread socket every unsampled output goes to. Node reads every socket
 * it binds, so the socket lives in a tiny python3 process that binds it and
 * then only waits for its stdin to close.
 */
export class Sink {
  private constructor(
    private readonly child: ChildProcess,
    readonly destination: Destination,
  ) {}

  static async open(ip = '127.0.0.1'): Promise<Sink> {
    const script = [
      'import socket, sys',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)',
      `s.bind((${JSON.stringify(ip)}, 0))`,
      'print(s.getsockname()[1], flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`sink exited (${code})`)));
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    return new Sink(child, { ip, port });
  }

  close(): void {
    this.child.stdin?.end();
    this.child.kill();
  }
}

function bind(ip: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, ip, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}
