/**
 * A synthetic camera/microphone: one ffmpeg process encodes a test pattern
 * and a sine tone and sends each as plain RTP to a loopback UDP socket that
 * this module reads. The RTP packets are handed over untouched; the caller
 * (rtcSender) feeds them to werift, which rewrites SSRC/PT/seq on the way out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';

export type VideoCodecName = 'h264' | 'vp8';

export interface FfmpegStream {
  payloadType: number;
  ssrc: number;
  onPacket: (rtp: Buffer) => void;
}

export interface FfmpegRtpOptions {
  video?: FfmpegStream & { codec: VideoCodecName; width?: number; height?: number; fps?: number; bitrateKbps?: number };
  audio?: FfmpegStream;
  /** Default: $FFMPEG_PATH, then Debian's /usr/bin/ffmpeg, then ffmpeg on PATH. */
  ffmpegPath?: string;
}

export interface FfmpegRtpSource {
  readonly process: ChildProcess;
  /** Exit code (null if killed by a signal); resolves when ffmpeg is gone. */
  readonly exited: Promise<number | null>;
  /** Last few KB of ffmpeg's stderr, for error messages. */
  stderrTail(): string;
  /** SIGINT (ffmpeg's clean stop), SIGKILL after 3 s; closes the sockets. */
  close(): Promise<void>;
}

/**
 * One ffmpeg feeding many senders (load tests: many lessons from one encoder).
 * Every subscriber gets every packet of its kind; werift rewrites SSRC, PT and
 * sequence numbers per sender anyway.
 */
export interface SharedRtpSource {
  readonly source: FfmpegRtpSource;
  subscribe(kind: 'audio' | 'video', onPacket: (rtp: Buffer) => void): () => void;
  /**
   * The same stream, every packet handed over `ms` later: senders on
   * different delays do not all burst a key frame at the same instant, as
   * independent lessons would not.
   */
  delayed(ms: number): SharedRtpSource;
}

type Kind = 'audio' | 'video';

export async function startSharedFfmpegRtp(options: {
  video?: Omit<NonNullable<FfmpegRtpOptions['video']>, 'onPacket' | 'ssrc'>;
  audio?: Omit<FfmpegStream, 'onPacket' | 'ssrc'>;
  ffmpegPath?: string;
}): Promise<SharedRtpSource> {
  // Subscribers by delay; delayed packets wait in one queue per delay, drained by one timer.
  const groups = new Map<
    number,
    { listeners: Record<Kind, Set<(rtp: Buffer) => void>>; queue: Array<{ due: number; kind: Kind; rtp: Buffer }> }
  >();
  const group = (delay: number) => {
    let g = groups.get(delay);
    if (!g) groups.set(delay, (g = { listeners: { audio: new Set(), video: new Set() }, queue: [] }));
    return g;
  };
  const fanTo = (kind: Kind) => (rtp: Buffer) => {
    const now = performance.now();
    for (const [delay, g] of groups) {
      if (delay === 0) for (const l of g.listeners[kind]) l(rtp);
      else if (g.listeners[kind].size) g.queue.push({ due: now + delay, kind, rtp });
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const drain = (): void => {
    const now = performance.now();
    for (const g of groups.values()) {
      while (g.queue.length && g.queue[0]!.due <= now) {
        const p = g.queue.shift()!;
        for (const l of g.listeners[p.kind]) l(p.rtp);
      }
    }
  };
  const ffmpeg = await startFfmpegRtp({
    ...(options.ffmpegPath ? { ffmpegPath: options.ffmpegPath } : {}),
    ...(options.video ? { video: { ...options.video, ssrc: 11111111, onPacket: fanTo('video') } } : {}),
    ...(options.audio ? { audio: { ...options.audio, ssrc: 22222222, onPacket: fanTo('audio') } } : {}),
  });
  const source: FfmpegRtpSource = {
    ...ffmpeg,
    close: async () => {
      clearInterval(timer);
      await ffmpeg.close();
    },
  };
  const view = (delay: number): SharedRtpSource => ({
    source,
    subscribe(kind, onPacket) {
      if (delay > 0) timer ??= setInterval(drain, 4);
      group(delay).listeners[kind].add(onPacket);
      return () => group(delay).listeners[kind].delete(onPacket);
    },
    delayed: (ms) => view(Math.max(0, Math.round(ms))),
  });
  return view(0);
}

export function defaultFfmpegPath(): string {
  const fromEnv = process.env['FFMPEG_PATH'];
  if (fromEnv) return fromEnv;
  return existsSync('/usr/bin/ffmpeg') ? '/usr/bin/ffmpeg' : 'ffmpeg';
}

export async function startFfmpegRtp(options: FfmpegRtpOptions): Promise<FfmpegRtpSource> {
  const sockets: dgram.Socket[] = [];
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  const outputs: string[] = [];
  try {
    // Inputs first (ffmpeg numbers them in order), then one RTP output per stream.
    let input = 0;
    if (options.video) {
      const { width = 640, height = 360, fps = 30 } = options.video;
      args.push('-re', '-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${fps}`);
      outputs.push('-map', `${input++}:v`, ...videoEncoderArgs(options.video), ...(await rtpOutput(options.video, sockets)));
    }
    if (options.audio) {
      args.push('-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
      outputs.push(
        '-map',
        `${input++}:a`,
        '-c:a',
        'libopus',
        '-b:a',
        '32k',
        '-ac',
        '2',
        '-application',
        'lowdelay',
        '-frame_duration',
        '20',
        ...(await rtpOutput(options.audio, sockets)),
      );
    }
    if (input === 0) throw new Error('startFfmpegRtp: neither audio nor video requested');
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }

  const child = spawn(options.ffmpegPath ?? defaultFfmpegPath(), [...args, ...outputs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return superviseFfmpeg(child, sockets);
}

/** An ffmpeg sending RTP from `sockets`: its stderr's tail, its exit, and a clean stop (`beforeStop` first). */
export function superviseFfmpeg(child: ChildProcess, sockets: dgram.Socket[], beforeStop?: () => void): FfmpegRtpSource {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      stderr += `\nspawn failed: ${err.message}`;
      resolve(-1);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    process: child,
    exited,
    stderrTail: () => stderr,
    close() {
      closing ??= (async () => {
        beforeStop?.();
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGINT');
          const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(killer);
        }
        for (const s of sockets) s.close();
      })();
      return closing;
    },
  };
}

export function videoEncoderArgs(video: NonNullable<FfmpegRtpOptions['video']>): string[] {
  const { fps = 30, bitrateKbps = 600 } = video;
  // One keyframe per second: mediasoup holds a new consumer's video until a keyframe.
  const common = ['-g', String(fps), '-keyint_min', String(fps), '-b:v', `${bitrateKbps}k`, '-threads', '1'];
  if (video.codec === 'h264') {
    // Baseline + zerolatency: no B-frames, SPS/PPS repeated before each IDR
    // (no global header with the RTP muxer), so late joiners can decode.
    return [
      '-c:v',
      'libx264',
      '-profile:v',
      'baseline',
      '-level:v',
      '3.1',
      '-tune',
      'zerolatency',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      '-maxrate',
      `${bitrateKbps}k`,
      '-bufsize',
      `${bitrateKbps * 2}k`,
      ...common,
    ];
  }
  return [
    '-c:v',
    'libvpx',
    '-deadline',
    'realtime',
    '-cpu-used',
    '8',
    '-auto-alt-ref',
    '0',
    '-error-resilient',
    '1',
    '-pix_fmt',
    'yuv420p',
    ...common,
  ];
}

/**
 * Bind our RTP socket plus a sink for ffmpeg's RTCP (it sends SRs to
 * rtcpport; an unbound port would bounce ICMP errors back at it), and return
 * the `-f rtp` output arguments. pkt_size 1200 leaves room for the header
 * extensions and SRTP tag werift adds.
 */
export async function rtpOutput(stream: FfmpegStream, sockets: dgram.Socket[]): Promise<string[]> {
  const rtp = await bindLoopback(sockets);
  const rtcp = await bindLoopback(sockets);
  rtp.on('message', (msg) => stream.onPacket(msg));
  const url = `rtp://127.0.0.1:${port(rtp)}?rtcpport=${port(rtcp)}&pkt_size=1200`;
  return ['-payload_type', String(stream.payloadType), '-ssrc', String(stream.ssrc), '-f', 'rtp', url];
}

function bindLoopback(sockets: dgram.Socket[]): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      // Loopback receive errors are not actionable; never let one crash a test run.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

function port(socket: dgram.Socket): number {
  return socket.address().port;
}
