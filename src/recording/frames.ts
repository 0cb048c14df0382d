/**
 * RTP packets → whole media frames with their RTP time, for the recording: H264 access units
 * (NAL units length-prefixed, as MP4 and Matroska carry them), VP8 frames (payload descriptors
 * removed) and Opus packets. ffmpeg is handed these frames with explicit timestamps; its own RTP
 * demuxer times H264 through a parser that gives each frame the previous frame's timestamp.
 */
import { rtpPayload, type RecordedCodec } from './rtp.js';

export interface MediaFrame {
  /** RTP timestamp, unwrapped (it keeps counting past 2^32). */
  ts: number;
  key: boolean;
  data: Buffer;
}

/** Largest frame we assemble; anything bigger is broken input. */
const MAX_FRAME_BYTES = 8 * 1024 * 1024;

export class FrameAssembler {
  private parts: Buffer[] = [];
  private bytes = 0;
  private frameTs: number | null = null;
  private key = false;
  private broken = false;
  private lastSeq: number | null = null;
  private lastRawTs: number | null = null;
  private unwrapped = 0;
  /** H264: the NAL unit being reassembled from FU-A fragments. */
  private fu: Buffer[] | null = null;
  /** H264: the latest parameter sets (for the Matroska codec private data). */
  sps: Buffer | null = null;
  pps: Buffer | null = null;

  constructor(readonly codec: RecordedCodec) {}

  /** Feeds one RTP packet; returns the frames it completes (usually none or one). */
  push(packet: Buffer): MediaFrame[] {
    const payload = rtpPayload(packet);
    if (!payload || payload.length === 0) return [];
    const seq = packet.readUInt16BE(2);
    const ts = this.unwrap(packet.readUInt32BE(4));
    const marker = (packet[1]! & 0x80) !== 0;
    const out: MediaFrame[] = [];
    const step = this.lastSeq === null ? 1 : (seq - this.lastSeq) & 0xffff;
    if (step === 0 || step > 0x8000) return []; // a duplicate or a late packet: the frame it belonged to is gone
    this.lastSeq = seq;
    if (this.frameTs !== null && ts !== this.frameTs) this.finish(out);
    if (step !== 1) this.lost();
    this.frameTs = ts;
    if (this.codec === 'Opus') this.add(payload);
    else if (this.codec === 'H264') this.h264(payload);
    else this.vp8(payload);
    if (marker || this.codec === 'Opus') this.finish(out);
    return out;
  }

  private unwrap(raw: number): number {
    if (this.lastRawTs === null) this.unwrapped = raw;
    else this.unwrapped += (raw - this.lastRawTs) | 0; // signed 32-bit difference
    this.lastRawTs = raw;
    return this.unwrapped;
  }

  /** A packet went missing: the frame in progress cannot be decoded whole. */
  private lost(): void {
    this.broken = true;
    this.fu = null;
  }

  private add(data: Buffer): void {
    this.bytes += data.length;
    if (this.bytes > MAX_FRAME_BYTES) this.broken = true;
    else this.parts.push(data);
  }

  private nal(nal: Buffer): void {
    const type = nal[0]! & 0x1f;
    if (type === 7) this.sps = Buffer.from(nal);
    if (type === 8) this.pps = Buffer.from(nal);
    if (type === 5 || type === 7) this.key = true;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(nal.length);
    this.add(length);
    this.add(nal);
  }

  private h264(payload: Buffer): void {
    const type = payload[0]! & 0x1f;
    if (type >= 1 && type <= 23) return this.nal(payload);
    if (type === 24) {
      // STAP-A: [header][size16][nal]...
      for (let off = 1; off + 2 <= payload.length;) {
        const size = payload.readUInt16BE(off);
        if (size === 0 || off + 2 + size > payload.length) return;
        this.nal(payload.subarray(off + 2, off + 2 + size));
        off += 2 + size;
      }
      return;
    }
    if (type === 28 && payload.length > 2) {
      // FU-A: the NAL header is rebuilt from the indicator's F/NRI and the FU header's type.
      const start = (payload[1]! & 0x80) !== 0;
      const end = (payload[1]! & 0x40) !== 0;
      if (start) this.fu = [Buffer.from([(payload[0]! & 0xe0) | (payload[1]! & 0x1f)])];
      if (!this.fu) return;
      this.fu.push(payload.subarray(2));
      if (end) {
        this.nal(Buffer.concat(this.fu));
        this.fu = null;
      }
    }
  }

  private vp8(payload: Buffer): void {
    // RFC 7741 payload descriptor, then the VP8 bitstream.
    const first = payload[0]!;
    let off = 1;
    if (first & 0x80) {
      const x = payload[1] ?? 0;
      off = 2;
      if (x & 0x80) off += (payload[off] ?? 0) & 0x80 ? 2 : 1;
      if (x & 0x40) off += 1;
      if (x & 0x30) off += 1;
    }
    if (off >= payload.length) return;
    const startOfFrame = (first & 0x10) !== 0 && (first & 0x07) === 0;
    if (startOfFrame) this.key = (payload[off]! & 0x01) === 0;
    else if (this.parts.length === 0) return; // the frame's start is missing
    this.add(payload.subarray(off));
  }

  private finish(out: MediaFrame[]): void {
    if (this.parts.length && !this.broken && this.frameTs !== null)
      out.push({ ts: this.frameTs, key: this.codec === 'Opus' || this.key, data: Buffer.concat(this.parts) });
    this.parts = [];
    this.bytes = 0;
    this.key = false;
    this.broken = false;
    this.fu = null;
  }
}
