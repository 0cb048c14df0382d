/**
 * A publisher whose media can be checked against its own clock, for the recording's A/V sync and
 * placement tests: every video frame shows its number N in binary (16 columns, least significant
 * bit on the left, white = 1) and was captured at t0 + N / fps; the audio beeps (1 kHz, 50 ms) at
 * every whole second t0 + k. The media is encoded once by ffmpeg (H264 baseline + Opus), then
 * replayed in real time as RTP into werift senders (`RtcSender` with `sharedSource`), each frame
 * and audio packet at its capture instant. The senders' RTCP Sender Reports are ours, and tell
 * the capture clock as a browser's do (NTP now ↔ the RTP timestamp captured now): werift's own
 * tell the send instant of the last packet, with only whole seconds of NTP.
 *
 * `paceNextKeyframe(ms)` makes the next connection's first keyframe (and what follows it) leave
 * that much after its capture, the way a browser's pacer drains a big keyframe on a fresh
 * connection: the media is late in the network, its timestamps and reports are not.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { RtcpSenderInfo, RtcpSrPacket, type RTCRtpSender } from 'werift';
import type { FfmpegRtpSource, SharedRtpSource } from '../../kit/ffmpegRtp.js';
import type { RtcSender } from '../../kit/rtcSender.js';
import type { ManifestTrack } from '../../src/recording/manifest.js';

const run = promisify(execFile);

export const BEEP_SECONDS = 0.05;
const AUDIO_RATE = 48000;
const AUDIO_PACKET_MS = 20;
const MTU = 1100;
const NTP_UNIX_OFFSET_MS = 2208988800000;

export interface SyncMedia {
  fps: number;
  /** Access units (NAL units without start codes, AUD left out), one per frame. */
  frames: Array<{ nals: Buffer[]; key: boolean }>;
  /** Opus packets of 20 ms. */
  audio: Buffer[];
  /** Opus encoder delay (samples at 48 kHz): a beep is heard this much after its samples' RTP time. */
  preSkip: number;
}

/** Encodes `seconds` of numbered frames at `fps` (a keyframe every `keyEvery` frames) and beeping audio. */
export async function encodeSyncMedia(dir: string, opts: { fps: number; seconds: number; keyEvery?: number }): Promise<SyncMedia> {
  const { fps, seconds } = opts;
  const keyEvery = opts.keyEvery ?? Math.round(fps / 2);
  const video = path.join(dir, `sync-${fps}.h264`);
  const audio = path.join(dir, `sync-${fps}.ogg`);
  await run('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y'],
    '-f',
    'lavfi',
    '-i',
    `color=c=black:size=16x2:rate=${fps}:duration=${seconds},format=gray,geq=lum='255*mod(floor(N/pow(2\\,X))\\,2)',scale=320:240:flags=neighbor,setsar=1,format=yuv420p`,
    '-f',
    'lavfi',
    '-i',
    `aevalsrc=exprs='if(lt(mod(t\\,1)\\,${BEEP_SECONDS})\\,0.7*sin(2*PI*1000*t)\\,0)':s=${AUDIO_RATE}:d=${seconds}`,
    ...['-map', '0:v', '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'zerolatency'],
    ...['-g', String(keyEvery), '-keyint_min', String(keyEvery), '-qp', '24', '-x264-params', 'aud=1', '-f', 'h264', video],
    ...['-map', '1:a', '-c:a', 'libopus', '-b:a', '48k', '-ac', '2', '-application', 'lowdelay', '-frame_duration', '20'],
    ...['-f', 'ogg', audio],
  ]);
  const frames = accessUnits(await readFile(video));
  const { packets, preSkip } = oggOpusPackets(await readFile(audio));
  return { fps, frames, audio: packets, preSkip };
}

function accessUnits(annexB: Buffer): SyncMedia['frames'] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 3 <= annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) {
      if (start >= 0) nals.push(trimZeros(annexB.subarray(start, i)));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) nals.push(annexB.subarray(start));
  const frames: SyncMedia['frames'] = [];
  for (const nal of nals) {
    const type = nal[0]! & 0x1f;
    if (type === 9) {
      frames.push({ nals: [], key: false }); // access unit delimiter: a new frame begins
      continue;
    }
    const frame = frames.at(-1);
    if (!frame) continue;
    frame.nals.push(nal);
    if (type === 5 || type === 7) frame.key = true;
  }
  return frames.filter((f) => f.nals.length > 0);
}

const trimZeros = (b: Buffer): Buffer => {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
};

/** The Opus packets of an Ogg Opus file (its two header packets left out) and its pre-skip. */
function oggOpusPackets(ogg: Buffer): { packets: Buffer[]; preSkip: number } {
  const packets: Buffer[] = [];
  let partial: Buffer[] = [];
  for (let pos = 0; pos + 27 <= ogg.length;) {
    if (ogg.toString('latin1', pos, pos + 4) !== 'OggS') throw new Error('not an Ogg page');
    const segments = ogg[pos + 26]!;
    const table = ogg.subarray(pos + 27, pos + 27 + segments);
    let body = pos + 27 + segments;
    for (const lace of table) {
      partial.push(ogg.subarray(body, body + lace));
      body += lace;
      if (lace < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    pos = body;
  }
  const head = packets.shift();
  packets.shift(); // OpusTags
  if (!head || head.toString('latin1', 0, 8) !== 'OpusHead') throw new Error('no OpusHead');
  return { packets, preSkip: head.readUInt16LE(10) };
}

/** RTP packets of one frame: single NAL units, FU-A for large ones (packetization-mode 1); marker on the last. */
function h264Packets(nals: Buffer[]): Array<{ payload: Buffer; marker: boolean }> {
  const out: Array<{ payload: Buffer; marker: boolean }> = [];
  for (const nal of nals) {
    if (nal.length <= MTU) {
      out.push({ payload: nal, marker: false });
      continue;
    }
    const header = nal[0]!;
    const body = nal.subarray(1);
    for (let off = 0; off < body.length; off += MTU) {
      const first = off === 0;
      const last = off + MTU >= body.length;
      const fu = Buffer.from([(header & 0xe0) | 28, (first ? 0x80 : 0) | (last ? 0x40 : 0) | (header & 0x1f)]);
      out.push({ payload: Buffer.concat([fu, body.subarray(off, off + MTU)]), marker: false });
    }
  }
  if (out.length) out.at(-1)!.marker = true;
  return out;
}

function rtpPacket(pt: number, seq: number, ts: number, ssrc: number, marker: boolean, payload: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
}

/** Wall-clock milliseconds with sub-millisecond precision. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

function ntp64(ms: number): bigint {
  const t = (ms + NTP_UNIX_OFFSET_MS) / 1000;
  const seconds = Math.floor(t);
  return (BigInt(seconds) << 32n) | BigInt(Math.floor((t - seconds) * 2 ** 32));
}

type Kind = 'audio' | 'video';
interface Subscriber {
  kind: Kind;
  onPacket: (rtp: Buffer) => void;
  /** Video: nothing before the first keyframe; `paceMs` late from there, catching up over as long. */
  waitingKeyframe: boolean;
  paceMs: number;
  keyCapturedAt: number;
  queue: Array<{ due: number; rtp: Buffer; capturedAt: number }>;
}

const VIDEO_TS0 = 1_000_000;
const AUDIO_TS0 = 2_000_000;

/** Replays SyncMedia in real time from `t0` (wall-clock ms) on; see the file comment. */
export class SyncSource implements SharedRtpSource {
  readonly t0: number;
  readonly source: FfmpegRtpSource;
  private readonly subscribers = new Set<Subscriber>();
  private readonly senders = new Set<RTCRtpSender>();
  private nextPaceMs = 0;
  private frame = 0;
  private audioPacket = 0;
  private seq = { audio: 0, video: 0 };
  private timer?: NodeJS.Timeout;
  private srTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(readonly media: SyncMedia) {
    this.t0 = Math.ceil(wallMs()) + 200;
    // RtcSender wants the process behind a shared source; ours is this object, so a placeholder stands in.
    const placeholder = spawn('true');
    this.source = {
      process: placeholder,
      exited: new Promise((resolve) => placeholder.once('exit', resolve)),
      stderrTail: () => '',
      close: async () => this.stop(),
    };
    this.schedule();
    this.srTimer = setInterval(() => this.sendReports(), 250);
  }

  /** Wall-clock ms at which frame n was captured. */
  frameAt(n: number): number {
    return this.t0 + (n * 1000) / this.media.fps;
  }

  /** Wall-clock ms at which the beep of second k is heard (its samples' RTP time plus the encoder's delay). */
  beepAt(k: number): number {
    return this.t0 + k * 1000 + (this.media.preSkip * 1000) / AUDIO_RATE;
  }

  /** The next connection's first keyframe leaves `ms` after its capture (a pacer draining it). */
  paceNextKeyframe(ms: number): void {
    this.nextPaceMs = ms;
  }

  subscribe(kind: Kind, onPacket: (rtp: Buffer) => void): () => void {
    const s: Subscriber = {
      kind,
      onPacket,
      waitingKeyframe: kind === 'video',
      paceMs: kind === 'video' ? this.nextPaceMs : 0,
      keyCapturedAt: 0,
      queue: [],
    };
    if (kind === 'video') this.nextPaceMs = 0;
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  delayed(): SharedRtpSource {
    return this;
  }

  /** Our Sender Reports replace werift's on this sender's tracks. */
  attach(sender: RtcSender): void {
    for (const s of sender.pc.getSenders()) {
      // werift's own report loop (started with the first packet) is cancelled, and never starts again while it believes one runs.
      const own = s as unknown as { rtcpRunning: boolean; rtcpCancel: AbortController };
      own.rtcpRunning = true;
      own.rtcpCancel.abort();
      this.senders.add(s);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.srTimer);
    this.subscribers.clear();
    this.senders.clear();
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = wallMs();
    while (this.frame < this.media.frames.length && this.frameAt(this.frame) <= now) this.emitFrame(this.frame++);
    while (this.audioPacket < this.media.audio.length && this.t0 + this.audioPacket * AUDIO_PACKET_MS <= now)
      this.emitAudio(this.audioPacket++);
    for (const s of this.subscribers) {
      while (s.queue.length && s.queue[0]!.due <= now) s.onPacket(s.queue.shift()!.rtp);
    }
    const next = Math.min(
      this.frame < this.media.frames.length ? this.frameAt(this.frame) : Infinity,
      this.audioPacket < this.media.audio.length ? this.t0 + this.audioPacket * AUDIO_PACKET_MS : Infinity,
      ...[...this.subscribers].map((s) => s.queue[0]?.due ?? Infinity),
    );
    if (next === Infinity) return;
    this.timer = setTimeout(() => this.schedule(), Math.max(0, next - wallMs()));
  }

  private emitFrame(n: number): void {
    const frame = this.media.frames[n]!;
    const capturedAt = this.frameAt(n);
    const ts = VIDEO_TS0 + Math.round((n * 90000) / this.media.fps);
    const packets = h264Packets(frame.nals).map((p) => rtpPacket(102, this.seq.video++, ts, 11111111, p.marker, p.payload));
    for (const s of this.subscribers) {
      if (s.kind !== 'video') continue;
      if (s.waitingKeyframe) {
        if (!frame.key) continue;
        s.waitingKeyframe = false;
        s.keyCapturedAt = capturedAt;
      }
      // A paced keyframe: everything captured within paceMs of it leaves together, paceMs after the keyframe.
      const due = capturedAt < s.keyCapturedAt + s.paceMs ? s.keyCapturedAt + s.paceMs : 0;
      if (due > 0 || s.queue.length) for (const rtp of packets) s.queue.push({ due, rtp, capturedAt });
      else for (const rtp of packets) s.onPacket(rtp);
    }
  }

  private emitAudio(k: number): void {
    const rtp = rtpPacket(111, this.seq.audio++, AUDIO_TS0 + k * 960, 22222222, false, this.media.audio[k]!);
    for (const s of this.subscribers) if (s.kind === 'audio') s.onPacket(rtp);
  }

  /** NTP now ↔ the RTP timestamp of what is captured now, on each sender's own SSRC and timestamp offset. */
  private sendReports(): void {
    const now = wallMs();
    for (const s of this.senders) {
      const w = s as unknown as {
        ssrc: number;
        timestampOffset: number;
        packetCount: number;
        octetCount: number;
        track?: { kind: string };
        dtlsTransport?: { state: string; sendRtcp(packets: unknown[]): Promise<unknown> };
      };
      if (!w.packetCount || w.dtlsTransport?.state !== 'connected') continue;
      const video = s.track?.kind === 'video';
      const sourceTs = video ? VIDEO_TS0 + ((now - this.t0) * 90000) / 1000 : AUDIO_TS0 + ((now - this.t0) * AUDIO_RATE) / 1000;
      const sr = new RtcpSrPacket({
        ssrc: w.ssrc,
        senderInfo: new RtcpSenderInfo({
          ntpTimestamp: ntp64(now),
          rtpTimestamp: (Math.round(sourceTs) + w.timestampOffset) >>> 0,
          packetCount: w.packetCount,
          octetCount: w.octetCount,
        }),
      });
      w.dtlsTransport.sendRtcp([sr]).catch(() => undefined);
    }
  }
}

// -- reading a recording back ---------------------------------------------------------------------

/**
 * Each run of a track as one fragmented MP4 (its init segment and media segments joined), so that
 * ffmpeg reads the timestamps the segments carry: its HLS demuxer re-times a run after a
 * discontinuity.
 */
async function eachRun<T>(recordingDir: string, track: ManifestTrack, read: (file: string) => Promise<T[]>): Promise<T[]> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'lessoncast-probe-'));
  try {
    const out: T[] = [];
    for (const r of track.runs) {
      const segments = track.segments.filter((x) => x.run === r.index);
      if (!r.init || !segments.length) continue;
      const parts = await Promise.all([r.init.uri, ...segments.map((x) => x.uri)].map((uri) => readFile(path.join(recordingDir, uri))));
      const file = path.join(tmp, `r${r.index}.mp4`);
      await writeFile(file, Buffer.concat(parts));
      out.push(...(await read(file)));
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Every decoded frame of a video track: its time on the lesson timeline and the number it shows. */
export function recordedFrames(recordingDir: string, track: ManifestTrack): Promise<Array<{ t: number; n: number }>> {
  return eachRun(recordingDir, track, async (file) => {
    const { stdout, stderr } = await run(
      'ffmpeg',
      [
        ...['-hide_banner', '-loglevel', 'info', '-i', file, '-copyts', '-fps_mode', 'passthrough'],
        ...['-vf', 'scale=16:1:flags=area,format=gray,showinfo', '-f', 'rawvideo', 'pipe:1'],
      ],
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
    );
    const times = [...stderr.toString().matchAll(/Parsed_showinfo.*?pts_time:\s*([-\d.]+)/g)].map((m) => Number(m[1]));
    const frames: Array<{ t: number; n: number }> = [];
    for (let i = 0; i < times.length && (i + 1) * 16 <= stdout.length; i++) {
      let n = 0;
      for (let bit = 0; bit < 16; bit++) if (stdout[i * 16 + bit]! >= 128) n |= 1 << bit;
      frames.push({ t: times[i]!, n });
    }
    return frames;
  });
}

/**
 * When each beep starts in an audio track (lesson timeline, seconds). Every run is decoded to PCM
 * placed at its own timestamps (silence before it), and the runs are laid over one another before
 * the beeps are looked for: a beep cut by a restart is then found whole when both runs hold their
 * part of it, and missed when a sample of it was lost. (Looked for run by run, a beep needs 0.3 s
 * of silence on both sides inside one run's file, so one near a restart could not be told.)
 */
export async function recordedBeeps(recordingDir: string, track: ManifestTrack): Promise<number[]> {
  const runs = await eachRun(recordingDir, track, async (file) => {
    const { stdout } = await run(
      'ffmpeg',
      [
        ...['-hide_banner', '-loglevel', 'error', '-i', file, '-copyts'],
        // first_pts=0 pads the run's start with silence from the timeline's zero.
        ...['-af', 'aresample=async=1:first_pts=0', '-ac', '1', '-ar', String(AUDIO_RATE), '-f', 's16le', 'pipe:1'],
      ],
      { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 },
    );
    return [stdout];
  });
  const length = Math.max(0, ...runs.map((b) => b.length >> 1));
  const mixed = Buffer.alloc(length * 2);
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (const b of runs) if (2 * i + 1 < b.length) sum += b.readInt16LE(2 * i);
    mixed.writeInt16LE(Math.max(-32768, Math.min(32767, sum)), 2 * i);
  }
  const stderr = await new Promise<string>((resolve, reject) => {
    const ff = spawn('ffmpeg', [
      ...['-hide_banner', '-loglevel', 'info', '-f', 's16le', '-ar', String(AUDIO_RATE), '-ac', '1', '-i', 'pipe:0'],
      ...['-af', 'silencedetect=noise=-30dB:duration=0.3', '-f', 'null', '-'],
    ]);
    let err = '';
    ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
    ff.on('error', reject);
    ff.on('close', (code) => (code === 0 ? resolve(err) : reject(new Error(`ffmpeg silencedetect exited ${code}: ${err.slice(-500)}`))));
    ff.stdin.end(mixed);
  });
  // A beep is a sound that starts after silence and stops again about BEEP_SECONDS later; anything else
  // (the click of a decoder starting mid-stream) is not one.
  const edges = [...stderr.matchAll(/silence_(start|end):\s*([-\d.]+)/g)].map((m) => ({ end: m[1] === 'end', t: Number(m[2]) }));
  return edges
    .filter((e, i) => e.end && !edges[i + 1]?.end && Math.abs((edges[i + 1]?.t ?? -1) - e.t - BEEP_SECONDS) < 0.02)
    .map((e) => e.t);
}
