/**
 * A camera whose picture turns white or black at an instant we choose, for glass-to-glass delay:
 * Node writes grey frames (all 0 or all 255) into ffmpeg's stdin at a steady rate, ffmpeg encodes
 * them (H264, as the test camera) with a sine tone beside them and sends both as plain RTP, which
 * RtcSender publishes like any source (`sharedSource`). `set()` tells when the first frame of the
 * new colour was handed to the encoder, on this machine's wall clock.
 */
import { spawn } from 'node:child_process';
import type dgram from 'node:dgram';
import { defaultFfmpegPath, rtpOutput, superviseFfmpeg, videoEncoderArgs, type SharedRtpSource } from './ffmpegRtp.js';

export interface FlashSource extends SharedRtpSource {
  /** From the next frame on the picture is white (or black); resolves Date.now() when that frame was written. */
  set(white: boolean): Promise<number>;
}

export async function startFlashSource(
  opts: { width?: number; height?: number; fps?: number; ffmpegPath?: string } = {},
): Promise<FlashSource> {
  const { width = 320, height = 180, fps = 30 } = opts;
  const listeners = { audio: new Set<(rtp: Buffer) => void>(), video: new Set<(rtp: Buffer) => void>() };
  const sockets: dgram.Socket[] = [];
  const video = {
    codec: 'h264' as const,
    width,
    height,
    fps,
    bitrateKbps: 300,
    payloadType: 102,
    ssrc: 11111111,
    onPacket: (rtp: Buffer) => listeners.video.forEach((l) => l(rtp)),
  };
  const videoOut = await rtpOutput(video, sockets);
  const audioOut = await rtpOutput(
    { payloadType: 111, ssrc: 22222222, onPacket: (rtp) => listeners.audio.forEach((l) => l(rtp)) },
    sockets,
  );
  const args = [
    ['-hide_banner', '-loglevel', 'error'],
    ['-f', 'rawvideo', '-pix_fmt', 'gray', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0'],
    ['-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ['-map', '0:v', ...videoEncoderArgs(video), ...videoOut],
    ['-map', '1:a', '-c:a', 'libopus', '-b:a', '32k', '-ac', '2', '-application', 'lowdelay', '-frame_duration', '20', ...audioOut],
  ].flat();
  const child = spawn(opts.ffmpegPath ?? defaultFfmpegPath(), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  child.stdin.on('error', () => undefined); // ffmpeg stopped first

  const frames = { black: Buffer.alloc(width * height, 0), white: Buffer.alloc(width * height, 255) };
  let white = false;
  let waiting: Array<(at: number) => void> = [];
  let stopped = false;
  const started = performance.now();
  let n = 0;
  // Frames on a fixed schedule from the start (no drift); each switch is stamped when its first frame is written.
  const writeFrame = (): void => {
    if (stopped) return;
    child.stdin.write(white ? frames.white : frames.black);
    const at = Date.now();
    for (const w of waiting) w(at);
    waiting = [];
    n++;
    setTimeout(writeFrame, Math.max(0, started + (n * 1000) / fps - performance.now()));
  };
  writeFrame();

  const source = superviseFfmpeg(child, sockets, () => {
    stopped = true;
    child.stdin.end();
  });
  const flash: FlashSource = {
    source,
    subscribe(kind, onPacket) {
      listeners[kind].add(onPacket);
      return () => listeners[kind].delete(onPacket);
    },
    delayed: () => flash,
    set(to) {
      white = to;
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
  return flash;
}
