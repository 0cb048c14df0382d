/**
 * The first decodable video frame of a stream, from its RTP packets alone (for receivers that do
 * not decode, e.g. kit/lightReceiver.ts): the first key frame whose packets have all arrived, from
 * the packet that starts it to the one with the marker bit, without a gap in sequence numbers.
 * That is the moment a decoder could first show a picture; the decode itself is not counted.
 *
 * - VP8 (RFC 7741): a frame starts at a packet whose payload descriptor has S = 1 and PID = 0; it
 *   is a key frame when the VP8 payload header's P bit (bit 0 of its first byte) is 0.
 * - H264 (RFC 6184): a frame starts after the previous frame's marker packet, or (the first frame
 *   a consumer forwards) at an SPS, PPS or IDR NAL unit, or a FU-A fragment with the start bit; it
 *   is a key frame when it carries an IDR slice (NAL type 5).
 */

export type KeyFrameCodec = 'vp8' | 'h264';

interface Frame {
  timestamp: number;
  /** Sequence number of the packet that starts the frame, once seen. */
  start: number | undefined;
  /** Sequence number of the packet with the marker bit, once seen. */
  end: number | undefined;
  key: boolean;
  seqs: Set<number>;
}

export class KeyFrameWatch {
  private readonly frames = new Map<number, Frame>();
  /** Sequence number of the last marker packet seen (the next packet starts a frame, for H264). */
  private lastMarkerSeq: number | undefined;
  /** performance.now() when the first complete key frame's last packet arrived. */
  completeAt: number | undefined;

  constructor(private readonly codec: KeyFrameCodec) {}

  /** One decrypted RTP packet; true once the first key frame is complete. */
  packet(rtp: Buffer, at: number): boolean {
    const payload = rtpPayload(rtp);
    if (!payload) return this.completeAt !== undefined;
    return this.add(rtp.readUInt16BE(2), rtp.readUInt32BE(4), (rtp[1]! & 0x80) !== 0, payload, at);
  }

  /** One decrypted RTX packet (RFC 4588): the original sequence number, then the original payload. */
  retransmission(rtx: Buffer, at: number): boolean {
    const payload = rtpPayload(rtx);
    if (!payload || payload.length < 3) return this.completeAt !== undefined;
    return this.add(payload.readUInt16BE(0), rtx.readUInt32BE(4), (rtx[1]! & 0x80) !== 0, payload.subarray(2), at);
  }

  private add(seq: number, timestamp: number, marker: boolean, payload: Buffer, at: number): boolean {
    if (this.completeAt !== undefined) return true;
    let f = this.frames.get(timestamp);
    if (!f) {
      f = { timestamp, start: undefined, end: undefined, key: false, seqs: new Set() };
      this.frames.set(timestamp, f);
      // Frames more than a few behind the newest will not complete now: forget them.
      if (this.frames.size > 8) this.frames.delete(this.frames.keys().next().value!);
    }
    f.seqs.add(seq);
    const { starts, key } = this.codec === 'vp8' ? vp8(payload) : h264(payload, this.lastMarkerSeq === ((seq - 1) & 0xffff));
    if (starts) f.start = seq;
    if (key) f.key = true;
    if (marker) {
      f.end = seq;
      this.lastMarkerSeq = seq;
    }
    if (f.key && f.start !== undefined && f.end !== undefined) {
      for (let s = f.start; s !== ((f.end + 1) & 0xffff); s = (s + 1) & 0xffff) if (!f.seqs.has(s)) return false;
      this.completeAt = at;
      this.frames.clear();
      return true;
    }
    return false;
  }
}

/** An RTP packet's payload without its padding, or undefined if malformed or padding only (probing). */
function rtpPayload(rtp: Buffer): Buffer | undefined {
  const at = rtpPayloadOffset(rtp);
  if (at === undefined) return undefined;
  const payload = rtp.subarray(at, rtp.length - (rtp[0]! & 0x20 ? rtp[rtp.length - 1]! : 0));
  return payload.length > 0 ? payload : undefined;
}

/** Where an RTP packet's payload starts (after CSRCs and the header extension), or undefined if malformed. */
export function rtpPayloadOffset(rtp: Buffer): number | undefined {
  if (rtp.length < 12) return undefined;
  let at = 12 + 4 * (rtp[0]! & 0x0f);
  if (rtp[0]! & 0x10) {
    if (at + 4 > rtp.length) return undefined;
    at += 4 + 4 * rtp.readUInt16BE(at + 2);
  }
  return at <= rtp.length ? at : undefined;
}

/** RFC 7741 §4.2–4.3: the payload descriptor, then the VP8 payload header's P bit. */
function vp8(p: Buffer): { starts: boolean; key: boolean } {
  const b0 = p[0]!;
  const starts = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
  let at = 1;
  if (b0 & 0x80) {
    const x = p[at++] ?? 0;
    if (x & 0x80) at += (p[at] ?? 0) & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) at += 1; // TL0PICIDX
    if (x & 0x30) at += 1; // TID / KEYIDX
  }
  return { starts, key: starts && at < p.length && (p[at]! & 0x01) === 0 };
}

/** RFC 6184 §5.6–5.8: single NAL unit, STAP-A and FU-A packets. */
function h264(p: Buffer, afterMarker: boolean): { starts: boolean; key: boolean } {
  const type = p[0]! & 0x1f;
  if (type === 28) {
    const fu = p[1] ?? 0;
    const first = (fu & 0x80) !== 0;
    return { starts: afterMarker || (first && isKeyNal(fu & 0x1f)), key: first && (fu & 0x1f) === 5 };
  }
  const nals: number[] = [];
  if (type === 24) {
    for (let at = 1; at + 2 < p.length; at += 2 + p.readUInt16BE(at)) nals.push(p[at + 2]! & 0x1f);
  } else nals.push(type);
  return { starts: afterMarker || isKeyNal(nals[0]!), key: nals.includes(5) };
}

/** SPS, PPS or an IDR slice: what a key frame's first packet carries. */
function isKeyNal(type: number): boolean {
  return type === 7 || type === 8 || type === 5;
}
