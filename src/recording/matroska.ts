/**
 * The smallest Matroska stream ffmpeg reads from a pipe: one track, one cluster per frame, every
 * frame stamped in microseconds. It is how the recorder hands ffmpeg media with its RTP time
 * (ffmpeg copies the timestamps it is given; see frames.ts for why not RTP).
 */
import type { RecordedCodec } from './rtp.js';

function vint(n: number): Buffer {
  // Sizes as 8-byte EBML variable-length integers: simple, and any size fits.
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  b.writeUInt32BE(n >>> 0, 4);
  b[0] = 0x01;
  return b;
}

function idBytes(id: number): Buffer {
  const hex = id.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

function el(id: number, ...body: Buffer[]): Buffer {
  const data = Buffer.concat(body);
  return Buffer.concat([idBytes(id), vint(data.length), data]);
}

function uint(id: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.round(value))));
  return el(id, b);
}

const str = (id: number, value: string): Buffer => el(id, Buffer.from(value, 'utf8'));

function float(id: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(value);
  return el(id, b);
}

/** Unknown size: the segment is written as it grows. */
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export interface MatroskaTrack {
  codec: RecordedCodec;
  /** H264: the first SPS and PPS (AVCDecoderConfigurationRecord is built from them). */
  sps?: Buffer | null;
  pps?: Buffer | null;
  channels?: number;
  sampleRate?: number;
}

/** EBML header, segment start, info (microsecond timestamps) and the one track. */
export function matroskaHeader(track: MatroskaTrack): Buffer {
  const ebml = el(
    0x1a45dfa3,
    uint(0x4286, 1),
    uint(0x42f7, 1),
    uint(0x42f2, 4),
    uint(0x42f3, 8),
    str(0x4282, 'matroska'),
    uint(0x4287, 4),
    uint(0x4285, 2),
  );
  const info = el(0x1549a966, uint(0x2ad7b1, 1000), str(0x4d80, 'lessoncast'), str(0x5741, 'lessoncast'));
  const entry: Buffer[] = [uint(0xd7, 1), uint(0x73c5, 1), uint(0x9c, 0)];
  if (track.codec === 'Opus') {
    const channels = track.channels ?? 2;
    const rate = track.sampleRate ?? 48000;
    // OpusHead with no pre-skip: the samples play at their RTP time, as live receivers play them.
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1;
    head[9] = channels;
    head.writeUInt16LE(0, 10);
    head.writeUInt32LE(rate, 12);
    entry.push(uint(0x83, 2), str(0x86, 'A_OPUS'), el(0x63a2, head), el(0xe1, float(0xb5, rate), uint(0x9f, channels)));
  } else if (track.codec === 'H264') {
    entry.push(uint(0x83, 1), str(0x86, 'V_MPEG4/ISO/AVC'));
    if (track.sps && track.pps && track.sps.length >= 4) entry.push(el(0x63a2, avcConfig(track.sps, track.pps)));
  } else {
    entry.push(uint(0x83, 1), str(0x86, 'V_VP8'));
  }
  const tracks = el(0x1654ae6b, el(0xae, ...entry));
  return Buffer.concat([ebml, idBytes(0x18538067), UNKNOWN_SIZE, info, tracks]);
}

/** One frame in its own cluster, `us` microseconds into the stream. */
export function matroskaFrame(us: number, key: boolean, data: Buffer): Buffer {
  const block = Buffer.concat([Buffer.from([0x81, 0x00, 0x00, key ? 0x80 : 0x00]), data]);
  return el(0x1f43b675, uint(0xe7, us), el(0xa3, block));
}

function avcConfig(sps: Buffer, pps: Buffer): Buffer {
  const len = (b: Buffer): Buffer => {
    const l = Buffer.alloc(2);
    l.writeUInt16BE(b.length);
    return l;
  };
  return Buffer.concat([Buffer.from([1, sps[1]!, sps[2]!, sps[3]!, 0xff, 0xe1]), len(sps), sps, Buffer.from([1]), len(pps), pps]);
}
