/**
 * Transport-wide congestion control feedback (RTCP RTPFB FMT 15,
 * draft-holmer-rmcat-transport-wide-cc-extensions-01), as a browser sends it: the arrival time of
 * every packet on the transport, whatever its SSRC (media, retransmissions, mediasoup's probation
 * padding), reported every 100 ms. With it, mediasoup's sender-side bandwidth estimation and pacing
 * run closed-loop on a werift receiver as they do on a Chromium one.
 *
 * werift has a TWCC sender of its own, but it counts one m-line's packets only and skips lost
 * sequence numbers, which mediasoup's estimator reads as heavy loss; so the kit's receiver turns it
 * off and uses this one.
 */
import type { RTCPeerConnection, RtpPacket } from 'werift';

export const TRANSPORT_WIDE_CC_URI = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

/** Packet status symbols of the feedback. */
export const enum PacketStatus {
  NotReceived = 0,
  SmallDelta = 1,
  LargeDelta = 2,
}

/** One feedback message's content: statuses from `baseSeq` on, and the received ones' deltas. */
export interface TransportFeedback {
  senderSsrc: number;
  mediaSsrc: number;
  baseSeq: number;
  /** 24-bit, in units of 64 ms. */
  referenceTime: number;
  fbPktCount: number;
  statuses: PacketStatus[];
  /** Per received packet, in 250 µs ticks from the previous one (the first: from referenceTime). */
  deltas: number[];
}

const RUN_MAX = 0x1fff;

/** The packet chunks: run-length where a status repeats 7 times or more, else 2-bit vectors of 7. */
function encodeChunks(statuses: readonly PacketStatus[]): number[] {
  const chunks: number[] = [];
  let i = 0;
  while (i < statuses.length) {
    let run = 1;
    while (i + run < statuses.length && statuses[i + run] === statuses[i] && run < RUN_MAX) run++;
    if (run >= 7) {
      chunks.push((statuses[i]! << 13) | run);
      i += run;
      continue;
    }
    // 2-bit status vector: T=1, S=1, seven symbols (past the count: zeros, which the reader ignores).
    let chunk = 0xc000;
    for (let k = 0; k < 7; k++) chunk |= (statuses[i + k] ?? 0) << (12 - 2 * k);
    chunks.push(chunk);
    i += 7;
  }
  return chunks;
}

/** The RTCP packet (header included, padded to 32 bits with RFC 3550 padding). */
export function encodeTransportFeedback(f: TransportFeedback): Buffer {
  const chunks = encodeChunks(f.statuses);
  let deltaBytes = 0;
  for (const s of f.statuses) deltaBytes += s === PacketStatus.SmallDelta ? 1 : s === PacketStatus.LargeDelta ? 2 : 0;
  const body = 16 + 2 * chunks.length + deltaBytes;
  const padding = (4 - ((4 + body) % 4)) % 4;
  const buf = Buffer.alloc(4 + body + padding);
  buf[0] = 0x80 | (padding ? 0x20 : 0) | 15;
  buf[1] = 205;
  buf.writeUInt16BE(buf.length / 4 - 1, 2);
  buf.writeUInt32BE(f.senderSsrc >>> 0, 4);
  buf.writeUInt32BE(f.mediaSsrc >>> 0, 8);
  buf.writeUInt16BE(f.baseSeq & 0xffff, 12);
  buf.writeUInt16BE(f.statuses.length, 14);
  buf.writeUIntBE(f.referenceTime & 0xffffff, 16, 3);
  buf[19] = f.fbPktCount & 0xff;
  let at = 20;
  for (const c of chunks) at = buf.writeUInt16BE(c, at);
  let d = 0;
  for (const s of f.statuses) {
    if (s === PacketStatus.SmallDelta) at = buf.writeUInt8(f.deltas[d++]!, at);
    else if (s === PacketStatus.LargeDelta) at = buf.writeInt16BE(f.deltas[d++]!, at);
  }
  if (padding) buf[buf.length - 1] = padding;
  return buf;
}

const TICK_US = 250;
const REFERENCE_US = 64_000;
/** Most statuses one message carries (a stall beyond this starts the next message). */
const MAX_STATUSES = 4096;

/**
 * Arrivals in, feedback messages out. Sequence numbers are unwrapped (16-bit); a packet that
 * arrives after its number was reported is not reported again (as in libwebrtc).
 */
export class TransportFeedbackBuilder {
  private readonly arrivals = new Map<number, number>();
  private nextSeq: number | undefined;
  private highest: number | undefined;
  private fbPktCount = 0;

  constructor(
    private readonly senderSsrc: number,
    private mediaSsrc = 0,
  ) {}

  /** A packet with transport-wide sequence number `seq` (16-bit) arrived at `atUs` (µs, monotonic). */
  received(seq: number, atUs: number, mediaSsrc?: number): void {
    if (mediaSsrc !== undefined) this.mediaSsrc = mediaSsrc;
    const ext = this.unwrap(seq);
    if (this.nextSeq === undefined) this.nextSeq = ext;
    if (ext < this.nextSeq || this.arrivals.has(ext)) return;
    this.arrivals.set(ext, atUs);
    if (this.highest === undefined || ext > this.highest) this.highest = ext;
  }

  /** The next feedback message, or undefined when nothing arrived since the last one. */
  build(): TransportFeedback | undefined {
    if (this.nextSeq === undefined || this.highest === undefined || this.highest < this.nextSeq) return undefined;
    // From the first number not yet reported: losses since the last message are reported as such.
    const base = this.nextSeq;
    let first = this.arrivals.get(base);
    for (let s = base + 1; first === undefined; s++) first = this.arrivals.get(s); // the highest is there
    const referenceTime = Math.floor(first / REFERENCE_US);
    let previousUs = referenceTime * REFERENCE_US;
    const statuses: PacketStatus[] = [];
    const deltas: number[] = [];
    let seq = base;
    for (; seq <= this.highest && statuses.length < MAX_STATUSES; seq++) {
      const at = this.arrivals.get(seq);
      if (at === undefined) {
        statuses.push(PacketStatus.NotReceived);
        continue;
      }
      const ticks = Math.round((at - previousUs) / TICK_US);
      if (ticks < -0x8000 || ticks > 0x7fff) break; // beyond a large delta: the next message takes it
      statuses.push(ticks >= 0 && ticks <= 0xff ? PacketStatus.SmallDelta : PacketStatus.LargeDelta);
      deltas.push(ticks);
      previousUs += ticks * TICK_US;
      this.arrivals.delete(seq);
    }
    // Trailing losses wait: the packets may still come.
    while (statuses.length > 0 && statuses[statuses.length - 1] === PacketStatus.NotReceived) {
      statuses.pop();
      seq--;
    }
    for (let s = this.nextSeq; s < seq; s++) this.arrivals.delete(s);
    this.nextSeq = seq;
    const fbPktCount = this.fbPktCount;
    this.fbPktCount = (this.fbPktCount + 1) & 0xff;
    return { senderSsrc: this.senderSsrc, mediaSsrc: this.mediaSsrc, baseSeq: base & 0xffff, referenceTime, fbPktCount, statuses, deltas };
  }

  private unwrap(seq: number): number {
    if (this.highest === undefined) return seq;
    const cycle = this.highest - (this.highest & 0xffff);
    let ext = cycle + seq;
    if (ext - this.highest > 0x8000) ext -= 0x10000;
    else if (this.highest - ext > 0x8000) ext += 0x10000;
    return ext;
  }
}

/** werift's DTLS transport as far as feedback needs it (not in werift's public types). */
interface DtlsTransportLike {
  onRtp: { subscribe(fn: (rtp: RtpPacket) => void): { unSubscribe(): void } };
  sendRtcp(packets: Array<{ serialize(): Buffer }>): Promise<unknown>;
}

/**
 * Sends transport-wide feedback for every RTP packet a werift peer connection receives (bundle:
 * one DTLS transport), every `intervalMs`. `extensionId` is the transport-wide-cc extension's id in
 * the consumers' RTP parameters.
 */
export class FeedbackSender {
  private readonly builder = new TransportFeedbackBuilder((Math.random() * 0xffffffff) >>> 0);
  private readonly dtls: DtlsTransportLike;
  private readonly subscription: { unSubscribe(): void };
  private readonly timer: NodeJS.Timeout;
  /** Messages sent and packets reported in them (for a bench's report). */
  messages = 0;
  reported = 0;

  /** Listens from now on: make it once the DTLS transport exists, i.e. after the first negotiation. */
  constructor(pc: RTCPeerConnection, extensionId: number, intervalMs = 100) {
    const dtls = (pc as unknown as { dtlsTransports: DtlsTransportLike[] }).dtlsTransports[0];
    if (!dtls) throw new Error('no DTLS transport yet: start feedback after the first negotiation');
    this.dtls = dtls;
    this.subscription = dtls.onRtp.subscribe((rtp) => {
      const ext = rtp.header.extensions.find((e) => e.id === extensionId);
      if (ext && ext.payload.length >= 2) this.builder.received(ext.payload.readUInt16BE(0), performance.now() * 1000, rtp.header.ssrc);
    });
    this.timer = setInterval(() => this.flush(), intervalMs);
  }

  close(): void {
    clearInterval(this.timer);
    this.subscription.unSubscribe();
  }

  private flush(): void {
    const feedback = this.builder.build();
    if (!feedback) return;
    const packet = encodeTransportFeedback(feedback);
    this.messages++;
    this.reported += feedback.statuses.length;
    void this.dtls.sendRtcp([{ serialize: () => packet }]).catch(() => undefined);
  }
}
