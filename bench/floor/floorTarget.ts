/**
 * The raw sendto floor as a fan-out target: the same ffmpeg lesson (plain
 * RTP, relayed by this Node) into a small C program (bench/floor/forward.c,
 * compiled here with cc) that sends every packet to each output with one
 * sendto() — no SRTP, no RTCP, no per-stream state. Its µs per packet is
 * what forwarding costs on this kernel before any SFU logic.
 */
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startFfmpegRtp } from '../../kit/ffmpegRtp.js';
import { pinProcess, root } from '../lib.js';
import type { FanoutTarget, LessonSource } from '../fanout/target.js';

export async function startFloorTarget(opts: { cpu: number; source: LessonSource }): Promise<FanoutTarget> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-floor-'));
  const bin = path.join(dir, 'forward');
  execFileSync('cc', ['-O2', '-o', bin, path.join(root, 'bench', 'floor', 'forward.c')], { stdio: 'inherit' });
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  // A running program's file can go: nothing is left behind in /tmp, however the bench ends.
  child.once('spawn', () => rmSync(dir, { recursive: true, force: true }));
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (): Promise<string> => new Promise((resolve) => waiting.push(resolve));
  const ask = (command: string): Promise<string> => {
    const reply = nextLine();
    child.stdin.write(`${command}\n`);
    return reply;
  };
  const port = Number(await nextLine());
  pinProcess(child.pid!, String(opts.cpu));

  const relay = dgram.createSocket('udp4');
  await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
  const toForwarder = (rtp: Buffer): void => relay.send(rtp, port, '127.0.0.1');
  const ssrc = (): number => 1 + Math.floor(Math.random() * 0x7ffffffe);
  const source = await startFfmpegRtp({
    video: {
      codec: 'h264',
      payloadType: 102,
      ssrc: ssrc(),
      onPacket: toForwarder,
      width: opts.source.width,
      height: opts.source.height,
      fps: opts.source.fps,
      bitrateKbps: opts.source.videoKbps,
    },
    audio: { payloadType: 100, ssrc: ssrc(), onPacket: toForwarder },
  });

  return {
    name: 'raw sendto floor',
    sfu: [{ label: 'forward.c', pid: child.pid!, cpu: opts.cpu }],
    helperPids: source.process.pid ? [source.process.pid] : [],
    webrtcProbes: [],
    async setOutputs(n, destination) {
      const dests = Array.from({ length: n }, (_, i) => destination(i));
      if (dests.some((d) => d.ip !== '127.0.0.1')) throw new Error('the floor forwarder sends to 127.0.0.1 only');
      await ask(`outputs 127.0.0.1 ${dests.map((d) => d.port).join(' ')}`);
    },
    async sent() {
      const [packets, bytes] = (await ask('stats')).split(' ').map(Number);
      return { packets: packets!, bytes: bytes! };
    },
    scores: () => undefined,
    async close() {
      await source.close();
      relay.close();
      child.stdin.end();
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    },
  };
}
