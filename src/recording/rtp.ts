/**
 * Just enough RTP parsing for the recording relay: tell RTCP from RTP (they
 * share one port with rtcp-mux), read Sender Reports (where each RTP timestamp
 * sits on the clock) and find payloads (frames.ts assembles them).
 */

export type RecordedCodec = 'H264' | 'VP8' | 'Opus';

/** RFC 5761: RTCP packet types 192–223 occupy the second byte where RTP has M+PT. */
export function isRtcp(packet: Buffer): boolean {
  if (packet.length < 2) return false;
  const pt = packet[1]!;
  return pt >= 192 && pt <= 223;
}

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2208988800;

export interface SenderReport {
  ssrc: number;
  /** The NTP timestamp as Unix milliseconds. */
  wallMs: number;
  /** The RTP timestamp that corresponds to it. */
  rtpTs: number;
}

/** The Sender Reports (RFC 3550 6.4.1) in a compound RTCP packet. */
export function senderReports(packet: Buffer): SenderReport[] {
  const out: SenderReport[] = [];
  for (let off = 0; off + 4 <= packet.length;) {
    if (packet[off]! >> 6 !== 2) break;
    const length = (packet.readUInt16BE(off + 2) + 1) * 4;
    if (off + length > packet.length) break;
    if (packet[off + 1] === 200 && length >= 28) {
      const seconds = packet.readUInt32BE(off + 8);
      const fraction = packet.readUInt32BE(off + 12);
      out.push({
        ssrc: packet.readUInt32BE(off + 4),
        wallMs: (seconds - NTP_UNIX_OFFSET_S) * 1000 + (fraction / 2 ** 32) * 1000,
        rtpTs: packet.readUInt32BE(off + 16),
      });
    }
    off += length;
  }
  return out;
}

/** The RTP payload (after CSRCs, header extension and before padding), or null if malformed. */
export function rtpPayload(packet: Buffer): Buffer | null {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return null;
  const csrcCount = packet[0]! & 0x0f;
  const hasExtension = (packet[0]! & 0x10) !== 0;
  const hasPadding = (packet[0]! & 0x20) !== 0;
  let offset = 12 + csrcCount * 4;
  if (hasExtension) {
    if (packet.length < offset + 4) return null;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if (hasPadding) end -= packet[packet.length - 1]!;
  if (offset > end) return null;
  return packet.subarray(offset, end);
}
