/**
 * A WebRTC classroom that answers the sender like a browser but costs the load generator little,
 * for benches with hundreds of receivers (issue 18's browser classroom).
 *
 * - ICE: one STUN binding request with USE-CANDIDATE to the server's UDP candidate (mediasoup is
 *   ICE-lite, we are controlling), then a consent check every 5 s (RFC 7675), as a browser does.
 * - DTLS as client (werift's DtlsClient), SRTP AEAD_AES_128_GCM (werift's best suite).
 * - With feedback (the default): media is never decrypted. The header is clear under SRTP, header
 *   extensions included, so every RTP packet gives its transport-wide sequence number (transport-cc
 *   feedback every 100 ms, kit/transportFeedback.ts) and its SSRC, sequence number and timestamp
 *   (a receiver report per media stream every second: loss, extended highest sequence, jitter,
 *   and LSR/DLSR from the sender reports, the only packets decrypted). That is what mediasoup's
 *   bandwidth estimation, consumer scores and RTT read from a browser.
 * - Mute: handshake and consent checks only, and the socket is then not read at all (the kernel
 *   drops what overflows it): an output the SFU serves in full while the generator pays nothing.
 *   It sends no feedback, so its transport's estimator runs open-loop: mediasoup 3.32 backs the
 *   estimate off (×0.8 a second, down to 5 kbit/s) once the round trip since its first packet
 *   looks longer than 3 s. The fan-out bench measures whether that changes the SFU's cost per
 *   output (bench/fanout.ts, the agreement check). Reading even part of the packets in Node costs
 *   the generator nearly what a full receiver does, so there is no cheap middle way here.
 */
import { createHmac, randomBytes, X509Certificate } from 'node:crypto';
import dgram from 'node:dgram';
import { crc32 } from 'node:zlib';
import type { types } from 'mediasoup';
import { CipherContext, DtlsClient, HashAlgorithm, NamedCurveAlgorithm, SignatureAlgorithm, SrtcpSession, SrtpSession } from 'werift';
import { KeyFrameWatch } from './keyFrame.js';
import type { ConnectFn, TransportParams } from './rtcSdp.js';
import type { SignalClient } from './signalClient.js';
import { encodeTransportFeedback, TransportFeedbackBuilder, TRANSPORT_WIDE_CC_URI } from './transportFeedback.js';

/** werift's SRTP profile numbers (DTLS use_srtp). */
const SRTP_AEAD_AES_128_GCM = 7;

export interface LightReceiverOptions {
  transport: TransportParams;
  connect: ConnectFn;
  /** The consumers' RTP parameters (media SSRCs, clock rates, the transport-wide-cc extension id). */
  consumers: Array<{ kind: types.MediaKind; rtpParameters: types.RtpParameters }>;
  /** Handshake and consent only; the socket is not read afterwards. */
  mute?: boolean;
  localAddress?: string;
  connectTimeoutMs?: number;
  /**
   * Decrypt the video stream's packets (and its RTX retransmissions) until its first key frame is
   * complete (kit/keyFrame.ts), for the time to a first decodable frame, asking for lost packets
   * with a generic NACK as a browser does; nothing is decrypted after that.
   */
  watchKeyFrame?: boolean;
}

interface StreamState {
  clockRate: number;
  received: number;
  baseSeq: number;
  /** Extended (wrap-corrected) highest sequence number. */
  highest: number;
  /** Packets that came after a later one of the same stream (a repeat or out of order). */
  reordered: number;
  /** At the previous report: for the fraction lost. */
  expectedPrior: number;
  receivedPrior: number;
  /** RFC 3550 interarrival jitter, in RTP clock units. */
  jitter: number;
  lastTransit: number | undefined;
  /** Middle 32 bits of the latest sender report's NTP time, and when it arrived (ms). */
  lsr: number;
  lsrAt: number;
}

const STUN_COOKIE = 0x2112a442;
const CONSENT_INTERVAL_MS = 5_000;
const FEEDBACK_INTERVAL_MS = 100;
const REPORT_INTERVAL_MS = 1_000;

let certificate: Promise<{ certPem: string; keyPem: string; fingerprint: string; signatureHash: { hash: 4; signature: 3 } }> | undefined;

/** One self-signed certificate for every receiver of the process (a browser keeps one per peer connection; the SFU cannot tell). */
function sharedCertificate(): NonNullable<typeof certificate> {
  certificate ??= CipherContext.createSelfSignedCertificateWithKey(
    { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
    NamedCurveAlgorithm.secp256r1_23,
  ).then(({ certPem, keyPem }) => ({
    certPem,
    keyPem,
    fingerprint: new X509Certificate(certPem).fingerprint256,
    signatureHash: { hash: HashAlgorithm.sha256_4, signature: SignatureAlgorithm.ecdsa_3 },
  }));
  return certificate;
}

/** Pads a STUN attribute's value to 32 bits. */
function attribute(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

/**
 * A STUN binding request as an ICE agent in the controlling role sends it (RFC 8445 §7.1.1):
 * USERNAME, PRIORITY, ICE-CONTROLLING, optionally USE-CANDIDATE, MESSAGE-INTEGRITY with the
 * server's password, FINGERPRINT.
 */
export function stunBindingRequest(opts: { username: string; password: string; tieBreaker: Buffer; nominate: boolean }): Buffer {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e0001ff, 0); // a host candidate's priority
  const attrs = [
    attribute(0x0006, Buffer.from(opts.username)),
    attribute(0x0024, priority),
    attribute(0x802a, opts.tieBreaker),
    ...(opts.nominate ? [attribute(0x0025, Buffer.alloc(0))] : []),
  ];
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt32BE(STUN_COOKIE, 4);
  randomBytes(12).copy(header, 8);
  let body = Buffer.concat(attrs);
  // MESSAGE-INTEGRITY covers the message with its length already counting the attribute itself.
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', opts.password).update(header).update(body).digest();
  body = Buffer.concat([body, attribute(0x0008, mac)]);
  header.writeUInt16BE(body.length + 8, 2);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((crc32(Buffer.concat([header, body])) ^ 0x5354554e) >>> 0, 0);
  return Buffer.concat([header, body, attribute(0x8028, fp)]);
}

/** The DTLS transport werift's client writes to and reads from: our socket, towards the server's candidate. */
interface DtlsTransportLike {
  type: string;
  address: { address: string; port: number; family: string };
  closed: boolean;
  onData: (data: Buffer) => void;
  send: (data: Buffer) => Promise<void>;
  close: () => Promise<void>;
}

export class LightReceiver {
  private readonly streams = new Map<number, StreamState>();
  private readonly feedback = new TransportFeedbackBuilder((Math.random() * 0xffffffff) >>> 0);
  private readonly ssrc = (Math.random() * 0xffffffff) >>> 0;
  private readonly twccId: number | undefined;
  private readonly tieBreaker = randomBytes(8);
  private srtcp: SrtcpSession | undefined;
  private dtls: DtlsClient | undefined;
  private dtlsIn: ((data: Buffer) => void) | undefined;
  private stunAnswered: (() => void) | undefined;
  private nextConsentAt = 0;
  private nextReportAt = 0;
  private closed = false;
  private keyFrame: { ssrc: number; rtxSsrc: number | undefined; watch: KeyFrameWatch; srtp?: SrtpSession; highest?: number } | undefined;
  /** Video packets asked for again (generic NACK) while waiting for the first key frame. */
  nacked = 0;
  /** performance.now() of: the STUN answer, DTLS connected, the first media RTP packet (not probation), the first key frame complete. */
  readonly at: { ice?: number; dtls?: number; firstRtp?: number; keyFrame?: number } = {};
  /** Called once when the first key frame is complete (with watchKeyFrame). */
  onKeyFrame?: (at: number) => void;
  /** RTP packets read (0 for a mute receiver), feedback messages and receiver reports sent. */
  packets = 0;
  feedbackMessages = 0;
  reports = 0;

  private constructor(
    private readonly opts: LightReceiverOptions,
    private readonly socket: dgram.Socket,
    private readonly server: { ip: string; port: number },
  ) {
    const ext = opts.consumers.flatMap((c) => c.rtpParameters.headerExtensions ?? []).find((e) => e.uri === TRANSPORT_WIDE_CC_URI);
    this.twccId = ext?.id;
    for (const c of opts.consumers) {
      const ssrc = c.rtpParameters.encodings?.[0]?.ssrc;
      const clockRate = c.rtpParameters.codecs[0]?.clockRate ?? 90000;
      if (ssrc !== undefined) this.streams.set(ssrc, newStream(clockRate));
      const codec = c.rtpParameters.codecs[0]?.mimeType.toLowerCase().replace('video/', '');
      if (opts.watchKeyFrame && c.kind === 'video' && ssrc !== undefined && (codec === 'vp8' || codec === 'h264'))
        this.keyFrame = { ssrc, rtxSsrc: c.rtpParameters.encodings?.[0]?.rtx?.ssrc, watch: new KeyFrameWatch(codec) };
    }
    socket.on('message', (msg) => this.onMessage(msg));
  }

  /** Connects (ICE, then DTLS); resolves once SRTP keys exist. */
  static async connect(opts: LightReceiverOptions): Promise<LightReceiver> {
    const candidate = opts.transport.iceCandidates.find((c) => c.protocol === 'udp');
    if (!candidate) throw new Error(`transport ${opts.transport.transportId} offers no UDP candidate`);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, opts.localAddress ?? '127.0.0.1', () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve();
      });
    });
    const r = new LightReceiver(opts, socket, {
      ip: candidate.address ?? (candidate as { ip?: string }).ip ?? '127.0.0.1',
      port: candidate.port,
    });
    try {
      await r.handshake();
    } catch (err) {
      r.close();
      throw err;
    }
    return r;
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  /** Losses seen from sequence numbers (packets not reported as received), summed over the media streams. */
  counters(): { received: number; expected: number; reordered: number } {
    let received = 0;
    let expected = 0;
    let reordered = 0;
    for (const s of this.streams.values()) {
      if (s.received === 0) continue;
      received += s.received;
      expected += s.highest - s.baseSeq + 1;
      reordered += s.reordered;
    }
    return { received, expected, reordered };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    if (live.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = undefined;
    }
    this.dtls?.close();
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  private async handshake(): Promise<void> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const cert = await sharedCertificate();
    await this.opts.connect({ role: 'client', fingerprints: [{ algorithm: 'sha-256', value: cert.fingerprint }] });

    // ICE: retransmit the nominating request until the server answers.
    const answered = new Promise<void>((resolve) => (this.stunAnswered = resolve));
    for (let done = false; !done;) {
      if (Date.now() > deadline) throw new Error(`ICE: no STUN answer from ${this.server.ip}:${this.server.port} in ${timeoutMs} ms`);
      this.sendStun(true);
      done = await Promise.race([answered.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
    }
    this.at.ice = performance.now();

    const transport: DtlsTransportLike = {
      type: 'udp',
      address: { address: this.server.ip, port: this.server.port, family: 'IPv4' },
      closed: false,
      onData: () => undefined,
      send: async (data) => this.send(data),
      close: async () => undefined,
    };
    this.dtlsIn = (data) => transport.onData(data);
    const dtls = new DtlsClient({
      transport,
      cert: cert.certPem,
      key: cert.keyPem,
      signatureHash: cert.signatureHash,
      srtpProfiles: [SRTP_AEAD_AES_128_GCM],
      extendedMasterSecret: true,
    });
    this.dtls = dtls;
    const connected = new Promise<void>((resolve) => dtls.onConnect.once(() => resolve()));
    void dtls.connect().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      connected,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error('DTLS handshake timed out')), Math.max(1, deadline - Date.now()))),
      ),
    ]).finally(() => clearTimeout(timer));
    const k = dtls.extractSessionKeys(16, 12);
    const keys = { localMasterKey: k.localKey, localMasterSalt: k.localSalt, remoteMasterKey: k.remoteKey, remoteMasterSalt: k.remoteSalt };
    this.srtcp = new SrtcpSession({ keys, profile: SRTP_AEAD_AES_128_GCM });
    if (this.keyFrame) this.keyFrame.srtp = new SrtpSession({ keys, profile: SRTP_AEAD_AES_128_GCM });
    const now = performance.now();
    this.at.dtls = now;
    // Spread the receivers' timers over their periods, as independent browsers would be.
    this.nextConsentAt = now + Math.random() * CONSENT_INTERVAL_MS;
    this.nextReportAt = now + Math.random() * REPORT_INTERVAL_MS;
    if (this.opts.mute) stopReading(this.socket);
    live.add(this);
    ticker ??= setInterval(tickAll, FEEDBACK_INTERVAL_MS);
  }

  private send(data: Buffer): void {
    if (!this.closed) this.socket.send(data, this.server.port, this.server.ip);
  }

  private sendStun(nominate: boolean): void {
    const { iceParameters } = this.opts.transport;
    this.send(
      stunBindingRequest({
        username: `${iceParameters.usernameFragment}:lightrx`,
        password: iceParameters.password,
        tieBreaker: this.tieBreaker,
        nominate,
      }),
    );
  }

  private onMessage(msg: Buffer): void {
    const b0 = msg[0]!;
    if (b0 >= 128 && b0 <= 191) {
      const pt = msg[1]! & 0x7f;
      if (pt >= 64 && pt <= 95) this.onRtcp(msg);
      else this.onRtp(msg);
    } else if (b0 >= 20 && b0 <= 63) this.dtlsIn?.(msg);
    else if (b0 <= 3 && msg.length >= 20 && msg.readUInt16BE(0) === 0x0101) this.stunAnswered?.();
  }

  private onRtp(msg: Buffer): void {
    if (msg.length < 12) return;
    this.packets++;
    const nowMs = performance.now();
    const b0 = msg[0]!;
    const ssrc = msg.readUInt32BE(8);
    if (this.keyFrame?.srtp && (ssrc === this.keyFrame.ssrc || ssrc === this.keyFrame.rtxSsrc)) this.watchKeyFrame(msg, ssrc, nowMs);
    if (b0 & 0x10 && this.twccId !== undefined) {
      const seq = transportWideSeq(msg, 12 + 4 * (b0 & 0x0f), this.twccId);
      if (seq !== undefined) this.feedback.received(seq, nowMs * 1000, ssrc);
    }
    const s = this.streams.get(ssrc);
    if (!s) return; // probation padding, retransmissions: reported in the feedback only
    this.at.firstRtp ??= nowMs;
    const seq = msg.readUInt16BE(2);
    if (s.received === 0) {
      s.baseSeq = s.highest = seq;
      s.expectedPrior = 0;
    } else {
      const delta = ((seq - (s.highest & 0xffff) + 0x18000) & 0xffff) - 0x8000;
      if (delta > 0) s.highest += delta;
      else s.reordered++;
    }
    s.received++;
    // RFC 3550 §A.8: the transit time's variation, in the stream's clock.
    const transit = Math.round((nowMs * s.clockRate) / 1000) - msg.readUInt32BE(4);
    if (s.lastTransit !== undefined) {
      const d = Math.abs(transit - s.lastTransit);
      if (d < 0x40000000) s.jitter += (d - s.jitter) / 16;
    }
    s.lastTransit = transit;
  }

  private watchKeyFrame(msg: Buffer, ssrc: number, at: number): void {
    const kf = this.keyFrame!;
    let rtp: Buffer;
    try {
      rtp = kf.srtp!.decrypt(msg);
    } catch {
      return;
    }
    if (ssrc === kf.rtxSsrc) {
      if (!kf.watch.retransmission(rtp, at)) return;
    } else {
      // As a browser does: a gap in the sequence numbers is asked for again at once (repaired over RTX).
      const seq = rtp.readUInt16BE(2);
      const gap = kf.highest === undefined ? 0 : ((seq - kf.highest + 0x10000) & 0xffff) - 1;
      if (gap > 0 && gap < 0x8000) this.nack(kf.ssrc, (kf.highest! + 1) & 0xffff, Math.min(gap, 17));
      if (kf.highest === undefined || (gap >= 0 && gap < 0x8000)) kf.highest = seq;
      if (!kf.watch.packet(rtp, at)) return;
    }
    this.at.keyFrame = at;
    kf.srtp = undefined; // done: no more decryption
    this.onKeyFrame?.(at);
  }

  /** RFC 4585 §6.2.1 generic NACK: `count` (≤ 17) packets from `first`, in one FCI. */
  private nack(mediaSsrc: number, first: number, count: number): void {
    if (!this.srtcp) return;
    const b = Buffer.alloc(16);
    b[0] = 0x80 | 1;
    b[1] = 205;
    b.writeUInt16BE(3, 2);
    b.writeUInt32BE(this.ssrc, 4);
    b.writeUInt32BE(mediaSsrc, 8);
    b.writeUInt16BE(first, 12);
    b.writeUInt16BE(count > 1 ? (1 << (count - 1)) - 1 : 0, 14);
    this.send(this.srtcp.encrypt(b));
    this.nacked += count;
  }

  private onRtcp(msg: Buffer): void {
    if (!this.srtcp) return;
    let rtcp: Buffer;
    try {
      rtcp = this.srtcp.decrypt(msg);
    } catch {
      return;
    }
    const at = performance.now();
    for (let off = 0; off + 4 <= rtcp.length;) {
      const len = (rtcp.readUInt16BE(off + 2) + 1) * 4;
      if (rtcp[off + 1] === 200 && off + 20 <= rtcp.length) {
        const s = this.streams.get(rtcp.readUInt32BE(off + 4));
        if (s) {
          s.lsr = ((rtcp.readUInt32BE(off + 8) & 0xffff) * 0x10000 + (rtcp.readUInt32BE(off + 12) >>> 16)) >>> 0;
          s.lsrAt = at;
        }
      }
      off += len;
    }
  }

  /** Timers of every receiver run from one interval (hundreds of receivers, one event loop). */
  tick(now: number): void {
    if (!this.srtcp) return;
    if (now >= this.nextConsentAt) {
      this.sendStun(false);
      this.nextConsentAt = now + CONSENT_INTERVAL_MS;
    }
    if (this.opts.mute) return;
    const fb = this.feedback.build();
    if (fb) {
      this.send(this.srtcp.encrypt(encodeTransportFeedback(fb)));
      this.feedbackMessages++;
    }
    if (now >= this.nextReportAt) {
      const rr = this.receiverReport(now);
      if (rr) {
        this.send(this.srtcp.encrypt(rr));
        this.reports++;
      }
      this.nextReportAt = now + REPORT_INTERVAL_MS;
    }
  }

  /** RFC 3550 §6.4.2: one report block per media stream received so far. */
  private receiverReport(now: number): Buffer | undefined {
    const blocks: Buffer[] = [];
    for (const [ssrc, s] of this.streams) {
      if (s.received === 0) continue;
      const expected = s.highest - s.baseSeq + 1;
      const lost = Math.max(0, expected - s.received);
      const expectedInterval = expected - s.expectedPrior;
      const lostInterval = expectedInterval - (s.received - s.receivedPrior);
      s.expectedPrior = expected;
      s.receivedPrior = s.received;
      const fraction = expectedInterval > 0 && lostInterval > 0 ? Math.min(255, Math.floor((lostInterval * 256) / expectedInterval)) : 0;
      const b = Buffer.alloc(24);
      b.writeUInt32BE(ssrc, 0);
      b.writeUInt32BE(((fraction << 24) | Math.min(lost, 0x7fffff)) >>> 0, 4);
      b.writeUInt32BE(s.highest >>> 0, 8);
      b.writeUInt32BE(Math.round(s.jitter) >>> 0, 12);
      b.writeUInt32BE(s.lsr, 16);
      b.writeUInt32BE(s.lsrAt ? Math.round(((now - s.lsrAt) * 65536) / 1000) >>> 0 : 0, 20);
      blocks.push(b);
    }
    if (blocks.length === 0) return undefined;
    const head = Buffer.alloc(8);
    head[0] = 0x80 | blocks.length;
    head[1] = 201;
    head.writeUInt16BE(1 + 6 * blocks.length, 2);
    head.writeUInt32BE(this.ssrc, 4);
    return Buffer.concat([head, ...blocks]);
  }
}

function newStream(clockRate: number): StreamState {
  return {
    clockRate,
    received: 0,
    baseSeq: 0,
    highest: 0,
    reordered: 0,
    expectedPrior: 0,
    receivedPrior: 0,
    jitter: 0,
    lastTransit: undefined,
    lsr: 0,
    lsrAt: 0,
  };
}

/** The transport-wide sequence number from an RTP header extension block at `off` (RFC 8285 one- or two-byte form). */
export function transportWideSeq(msg: Buffer, off: number, id: number): number | undefined {
  if (off + 4 > msg.length) return undefined;
  const profile = msg.readUInt16BE(off);
  const end = Math.min(msg.length, off + 4 + msg.readUInt16BE(off + 2) * 4);
  let at = off + 4;
  if (profile === 0xbede) {
    while (at < end) {
      const h = msg[at]!;
      if (h === 0) {
        at++; // padding
        continue;
      }
      const extId = h >> 4;
      if (extId === 15) return undefined;
      const len = (h & 0x0f) + 1;
      if (extId === id) return len >= 2 && at + 3 <= end ? msg.readUInt16BE(at + 1) : undefined;
      at += 1 + len;
    }
  } else if ((profile & 0xfff0) === 0x1000) {
    while (at + 2 <= end) {
      const extId = msg[at]!;
      if (extId === 0) {
        at++;
        continue;
      }
      const len = msg[at + 1]!;
      if (extId === id) return len >= 2 && at + 4 <= end ? msg.readUInt16BE(at + 2) : undefined;
      at += 2 + len;
    }
  }
  return undefined;
}

/**
 * Node reads every datagram socket it binds and has no call to stop; its internal handle does
 * (uv_udp_recv_stop). A mute receiver's socket then only sends.
 */
function stopReading(socket: dgram.Socket): void {
  const state = Object.getOwnPropertySymbols(socket)
    .filter((s) => String(s) === 'Symbol(state symbol)')
    .map((s) => (socket as unknown as Record<symbol, { handle?: { recvStop?: () => number }; receiving?: boolean }>)[s])[0];
  if (!state?.handle?.recvStop) throw new Error("this Node's dgram has no internal recvStop: a mute receiver would read every packet");
  state.handle.recvStop();
  state.receiving = false;
  socket.setRecvBufferSize(4096);
}

const live = new Set<LightReceiver>();
let ticker: NodeJS.Timeout | undefined;

function tickAll(): void {
  const now = performance.now();
  for (const r of live) r.tick(now);
}

export interface LightClassroom {
  rx: LightReceiver;
  transportId: string;
  consumers: LightReceiverOptions['consumers'] & Array<{ consumerId: string }>;
  /** resumeConsumer for every consumer, at once. */
  resume(): Promise<void>;
}

/**
 * A classroom's receiving side over lessoncast's signalling, as the classroom page does it: a
 * receive transport, every producer consumed (paused, all at once) with `rtpCapabilities`, then a
 * light receiver connected (connectTransport, ICE, DTLS). The caller resumes. `mark` is told when
 * each step is answered (the join storm bench times them).
 */
export async function lightClassroom(
  client: SignalClient,
  producers: Array<{ producerId: string }>,
  rtpCapabilities: types.RtpCapabilities,
  opts: Omit<LightReceiverOptions, 'transport' | 'connect' | 'consumers'> & {
    mark?: (step: 'transport' | 'consumed' | 'connectAnswered') => void;
  } = {},
): Promise<LightClassroom> {
  const { mark, ...rxOpts } = opts;
  const transport = (await client.request('createTransport', { direction: 'recv' })) as unknown as TransportParams;
  mark?.('transport');
  const consumers = await Promise.all(
    producers.map(async (p) => {
      const c = await client.request('consume', {
        transportId: transport.transportId,
        producerId: p.producerId,
        rtpCapabilities: structuredClone(rtpCapabilities),
      });
      return { consumerId: c.consumerId, kind: c.kind, rtpParameters: c.rtpParameters as unknown as types.RtpParameters };
    }),
  );
  mark?.('consumed');
  const rx = await LightReceiver.connect({
    ...rxOpts,
    transport,
    connect: async (dtlsParameters) => {
      await client.request('connectTransport', { transportId: transport.transportId, dtlsParameters });
      mark?.('connectAnswered');
    },
    consumers,
  });
  return {
    rx,
    transportId: transport.transportId,
    consumers,
    resume: async () => {
      await Promise.all(consumers.map((c) => client.request('resumeConsumer', { consumerId: c.consumerId })));
    },
  };
}
