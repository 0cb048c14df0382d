/**
 * Janus (Debian's `janus` package, 1.1.2) as a fan-out target, for the
 * side-by-side forwarding bench.
 *
 * The bench starts its own Janus on loopback from a generated configuration
 * in a temporary folder: only the HTTP transport (on a free loopback port)
 * and the VideoRoom plugin are loaded, ICE gathers on `lo` only, no admin
 * API, no event handlers, no loggers. Janus runs pinned to one CPU.
 *
 * The lesson is the same as the mediasoup benches' (ffmpeg test pattern,
 * H264 1280x720 ~1.5 Mbps 30 fps + Opus), published over WebRTC by a werift
 * peer into a VideoRoom (JSEP over Janus's HTTP API: create session, attach
 * janus.plugin.videoroom, create room, join as publisher, publish with the
 * offer, take the answer). Each output is one `rtp_forward` of both streams
 * with SRTP (AES_CM_128_HMAC_SHA1_80: Janus forwarders offer only the
 * AES-CM suites, with a 32- or 80-bit tag) to a local UDP socket, with its
 * own random key.
 *
 *   npx tsx bench/sfu/janus.ts [--ladder 50,100,200] [--measure 8] [--warmup 3]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, SessionDescription } from 'werift';
import { startFfmpegRtp, type FfmpegRtpSource } from '../../kit/ffmpegRtp.js';
import { baseConfig, disableStun, waitConnected } from '../../kit/rtcSdp.js';
import type { Destination } from '../fanout/probes.js';
import type { FanoutTarget, LessonSource } from '../fanout/target.js';
import { BENCH_NICE, inBatches, pinProcess, root, setNice, sleep } from '../lib.js';
import { freeTcpPort, runLadder, stepRow, table } from './lib.js';

/** Installs Debian's janus if it is missing (benches are not part of CI; this machine reaches Debian's mirrors). */
export function ensureJanus(): string {
  const bin = '/usr/bin/janus';
  if (existsSync(bin)) return bin;
  console.log('janus is not installed: apt-get install -y janus');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '-q', 'janus'], { stdio: 'inherit', env });
  } catch {
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-q', 'janus'], { stdio: 'inherit', env });
  }
  if (!existsSync(bin)) throw new Error('janus did not install');
  return bin;
}

export function janusVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'janus'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * A libsrtp2.so.1 with the OpenSSL backend, built from Debian's own libsrtp2
 * source package (the release this machine runs) the way the worker build
 * builds its static one (scripts/build-worker.sh), for Janus to load through
 * LD_LIBRARY_PATH instead of Debian's NSS build: the same crypto library on
 * both sides of the comparison. Cached under
 * $LESSONCAST_CACHE_DIR/bench/libsrtp2-openssl-<release>/. Returns its folder.
 */
export function opensslLibsrtpForJanus(): string {
  const release = execFileSync('bash', ['-c', '. /etc/os-release && printf %s "$VERSION_CODENAME"'], { encoding: 'utf8' }).trim();
  const cache = path.join(
    process.env['LESSONCAST_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'lessoncast'),
    'bench',
    `libsrtp2-openssl-${release}`,
  );
  if (existsSync(path.join(cache, 'libsrtp2.so.1'))) return cache;
  const src = mkdtempSync(path.join(tmpdir(), 'lessoncast-libsrtp-'));
  try {
    console.log(`building libsrtp2 (OpenSSL backend) from Debian ${release}'s source for Janus`);
    execFileSync('bash', [path.join(root, 'scripts', 'worker', 'debian-source.sh'), 'libsrtp2', release, src], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const sh = (cmd: string) => execFileSync('bash', ['-c', cmd], { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] });
    sh('CFLAGS="-O2 -D_REENTRANT" ./configure --enable-openssl --disable-debug --disable-stdout && make -j2 shared_library');
    sh("grep -q '^#define OPENSSL 1' crypto/include/config.h");
    mkdirSync(cache, { recursive: true });
    copyFileSync(path.join(src, 'libsrtp2.so.1'), path.join(cache, 'libsrtp2.so.1'));
    return cache;
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

/** Debian installs Janus's modules under /usr/lib/<multiarch>/janus. */
function janusLibDir(): string {
  const candidates = readdirSync('/usr/lib')
    .map((d) => path.join('/usr/lib', d, 'janus'))
    .filter((d) => existsSync(path.join(d, 'plugins', 'libjanus_videoroom.so')));
  if (!candidates[0]) throw new Error('Janus modules not found under /usr/lib/*/janus');
  return candidates[0];
}

/** Every module in a folder but the wanted ones, as Janus's `disable` list. */
function disableAllBut(folder: string, keep: string[]): string {
  if (!existsSync(folder)) return '';
  return readdirSync(folder)
    .filter((f) => /^libjanus_.*\.so$/.test(f) && !keep.includes(f))
    .join(',');
}

export interface JanusProcess {
  pid: number;
  url: string;
  /** Last lines Janus printed, for errors. */
  logTail(): string;
  stop(): Promise<void>;
}

export interface JanusStartOptions {
  cpu: number;
  /** Janus debug_level: 3 = warnings (like mediasoup's 'warn'), 0 = nothing. */
  debugLevel?: number;
  /** A folder with another libsrtp2.so.1 for Janus to load (opensslLibsrtpForJanus); default Debian's. */
  libsrtpDir?: string;
}

/** Starts Janus with a generated minimal configuration; resolves once its HTTP API answers. */
export async function startJanus(opts: JanusStartOptions): Promise<JanusProcess> {
  const bin = ensureJanus();
  const lib = janusLibDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-janus-'));
  const port = await freeTcpPort();
  // Its own slice of ports for ICE, away from the usual 40000–49999 of mediasoup tests.
  const rtpBase = 20000 + 100 * Math.floor(Math.random() * 90);
  const q = JSON.stringify;
  writeFileSync(
    path.join(dir, 'janus.jcfg'),
    `general: {
  configs_folder = ${q(dir)}
  plugins_folder = ${q(path.join(lib, 'plugins'))}
  transports_folder = ${q(path.join(lib, 'transports'))}
  events_folder = ${q(path.join(lib, 'events'))}
  loggers_folder = ${q(path.join(lib, 'loggers'))}
  debug_level = ${opts.debugLevel ?? 3}
  debug_colors = false
  session_timeout = 0
  server_name = "lessoncast-bench"
}
media: {
  rtp_port_range = "${rtpBase}-${rtpBase + 99}"
}
nat: {
  nice_debug = false
  ice_enforce_list = "lo"
  ignore_mdns = true
}
plugins: {
  disable = ${q(disableAllBut(path.join(lib, 'plugins'), ['libjanus_videoroom.so']))}
}
transports: {
  disable = ${q(disableAllBut(path.join(lib, 'transports'), ['libjanus_http.so']))}
}
loggers: {
  disable = ${q(disableAllBut(path.join(lib, 'loggers'), []))}
}
events: {
  broadcast = false
}
`,
  );
  writeFileSync(
    path.join(dir, 'janus.transport.http.jcfg'),
    `general: {
  json = "plain"
  base_path = "/janus"
  http = true
  port = ${port}
  ip = "127.0.0.1"
  https = false
  events = false
}
admin: {
  admin_http = false
  admin_https = false
}
`,
  );
  writeFileSync(path.join(dir, 'janus.plugin.videoroom.jcfg'), 'general: {\n  events = false\n}\n');

  // taskset execs janus in place: every thread Janus starts inherits the CPU.
  const child: ChildProcess = spawn('taskset', ['-c', String(opts.cpu), bin, '-C', path.join(dir, 'janus.jcfg'), '-F', dir, '-o'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.libsrtpDir ? { ...process.env, LD_LIBRARY_PATH: opts.libsrtpDir } : process.env,
  });
  let tail = '';
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-8192));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // Janus's clean stop
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}/janus`;
  try {
    const deadline = performance.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`janus exited (${child.exitCode}):\n${tail}`);
      const ok = await fetch(`${url}/info`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (performance.now() > deadline) throw new Error(`janus did not answer on ${url}:\n${tail}`);
      await sleep(200);
    }
    pinProcess(child.pid!, String(opts.cpu));
    // Which libsrtp2 Janus really mapped (LD_LIBRARY_PATH is easy to get wrong).
    const srtpLib = readFileSync(`/proc/${child.pid}/maps`, 'utf8').match(/\S*libsrtp2\.so\S*/)?.[0];
    if (opts.libsrtpDir && !srtpLib?.startsWith(opts.libsrtpDir))
      throw new Error(`janus loaded ${srtpLib ?? 'no libsrtp2'}, not the one in ${opts.libsrtpDir}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, url, logTail: () => tail, stop };
}

interface JanusReply {
  janus: string;
  transaction?: string;
  data?: { id: number };
  error?: { code: number; reason: string };
  plugindata?: { plugin: string; data: Record<string, unknown> };
  jsep?: { type: string; sdp: string };
  sender?: number;
}

/** One session with one handle on janus.plugin.videoroom, over the HTTP API. */
export class JanusVideoRoomHandle {
  private constructor(
    private readonly url: string,
    readonly sessionId: number,
    readonly handleId: number,
  ) {}

  static async attach(url: string): Promise<JanusVideoRoomHandle> {
    const session = await post(url, { janus: 'create' });
    const sessionId = session.data!.id;
    const handle = await post(`${url}/${sessionId}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    return new JanusVideoRoomHandle(url, sessionId, handle.data!.id);
  }

  /** A synchronous plugin request (create, rtp_forward, …): the plugin's answer. */
  async request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await post(`${this.url}/${this.sessionId}/${this.handleId}`, { janus: 'message', body });
    const data = r.plugindata?.data;
    if (r.janus !== 'success' || !data) throw new Error(`janus ${String(body['request'])}: ${JSON.stringify(r)}`);
    if (data['error_code']) throw new Error(`janus ${String(body['request'])}: ${String(data['error'])}`);
    return data;
  }

  /** An asynchronous request (join, publish): sends it, then long-polls until the plugin's event for it. */
  async requestAsync(body: Record<string, unknown>, jsep?: { type: string; sdp: string }, timeoutMs = 15_000): Promise<JanusReply> {
    const transaction = randomBytes(8).toString('hex');
    const ack = await post(
      `${this.url}/${this.sessionId}/${this.handleId}`,
      { janus: 'message', body, ...(jsep ? { jsep } : {}) },
      transaction,
    );
    if (ack.janus !== 'ack') throw new Error(`janus ${String(body['request'])}: ${JSON.stringify(ack)}`);
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const res = await fetch(`${this.url}/${this.sessionId}?maxev=1&rid=${Date.now()}`);
      const ev = (await res.json()) as JanusReply;
      if (ev.janus === 'event' && ev.transaction === transaction) {
        const data = ev.plugindata?.data;
        if (data?.['error_code']) throw new Error(`janus ${String(body['request'])}: ${String(data['error'])}`);
        return ev;
      }
    }
    throw new Error(`janus ${String(body['request'])}: no event within ${timeoutMs} ms`);
  }

  async destroy(): Promise<void> {
    await post(`${this.url}/${this.sessionId}`, { janus: 'destroy' }).catch(() => undefined);
  }
}

async function post(url: string, msg: Record<string, unknown>, transaction = randomBytes(8).toString('hex')): Promise<JanusReply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...msg, transaction }),
  });
  const reply = (await res.json()) as JanusReply;
  if (reply.janus === 'error') throw new Error(`janus ${String(msg['janus'])}: ${reply.error?.code} ${reply.error?.reason}`);
  return reply;
}

/** Payload types and extension ids the werift publisher offers (Janus answers with the same). */
const OPUS_PT = 111;
const H264_PT = 102;
const EXTENSIONS = [
  { id: 1, uri: 'urn:ietf:params:rtp-hdrext:sdes:mid' },
  { id: 4, uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time' },
  { id: 5, uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01' },
];

export interface JanusPublisher {
  publisherId: number;
  mids: { audio: string; video: string };
  source: FfmpegRtpSource;
  close(): Promise<void>;
}

/** The instructor: werift offers audio + video (sendonly), Janus answers; ffmpeg's RTP is written to the tracks. */
export async function publishToJanus(handle: JanusVideoRoomHandle, room: number, source: LessonSource): Promise<JanusPublisher> {
  const audioTrack = new MediaStreamTrack({ kind: 'audio' });
  const videoTrack = new MediaStreamTrack({ kind: 'video' });
  const pc = new RTCPeerConnection({
    ...baseConfig('127.0.0.1'),
    codecs: {
      audio: [
        new RTCRtpCodecParameters({
          mimeType: 'audio/opus',
          clockRate: 48000,
          channels: 2,
          payloadType: OPUS_PT,
          rtcpFeedback: [{ type: 'transport-cc' }],
        }),
      ],
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          payloadType: H264_PT,
          parameters: 'packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1',
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'transport-cc' }],
        }),
      ],
    },
    headerExtensions: {
      audio: EXTENSIONS.map((e) => new RTCRtpHeaderExtensionParameters(e)),
      video: EXTENSIONS.map((e) => new RTCRtpHeaderExtensionParameters(e)),
    },
  });
  let ffmpeg: FfmpegRtpSource | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled([ffmpeg?.close(), pc.close()]);
  };
  try {
    pc.addTransceiver(audioTrack, { direction: 'sendonly' });
    pc.addTransceiver(videoTrack, { direction: 'sendonly' });
    const ssrc = (): number => 1 + Math.floor(Math.random() * 0x7ffffffe);
    const write = (track: MediaStreamTrack) => (rtp: Buffer) => {
      if (pc.connectionState === 'connected') track.writeRtp(rtp);
    };
    ffmpeg = await startFfmpegRtp({
      audio: { payloadType: OPUS_PT, ssrc: ssrc(), onPacket: write(audioTrack) },
      video: {
        codec: 'h264',
        payloadType: H264_PT,
        ssrc: ssrc(),
        onPacket: write(videoTrack),
        width: source.width,
        height: source.height,
        fps: source.fps,
        bitrateKbps: source.videoKbps,
      },
    });
    const joined = await handle.requestAsync({ request: 'join', ptype: 'publisher', room, display: 'instructor' });
    const publisherId = Number(joined.plugindata!.data['id']);

    const offer = await pc.createOffer();
    disableStun(pc);
    await pc.setLocalDescription(offer);
    // Janus is a full ICE agent: it needs our loopback candidate, which werift has gathered by now.
    const localSdp = pc.localDescription!.sdp;
    const media = SessionDescription.parse(localSdp).media;
    const mids = { audio: media[0]?.rtp.muxId ?? '0', video: media[1]?.rtp.muxId ?? '1' };
    const published = await handle.requestAsync(
      { request: 'publish', audio: true, video: true, data: false },
      { type: 'offer', sdp: localSdp },
    );
    if (!published.jsep) throw new Error(`janus publish: no answer in ${JSON.stringify(published)}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: published.jsep.sdp });
    await waitConnected(pc, 15_000, 'publisher → janus');
    return { publisherId, mids, source: ffmpeg, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface JanusTargetOptions {
  cpu: number;
  source: LessonSource;
  debugLevel?: number;
  libsrtpDir?: string;
  /** Row name in the tables. */
  name?: string;
}

/** Janus + a VideoRoom with one published lesson; outputs are SRTP rtp_forwards. */
export async function startJanusTarget(opts: JanusTargetOptions): Promise<FanoutTarget & { version: string }> {
  const janus = await startJanus({ cpu: opts.cpu, debugLevel: opts.debugLevel, libsrtpDir: opts.libsrtpDir });
  let admin: JanusVideoRoomHandle | undefined;
  let publisherHandle: JanusVideoRoomHandle | undefined;
  let publisher: JanusPublisher | undefined;
  const close = async (): Promise<void> => {
    await publisher?.close();
    await publisherHandle?.destroy();
    await admin?.destroy();
    await janus.stop();
  };
  try {
    admin = await JanusVideoRoomHandle.attach(janus.url);
    const room = 1000 + Math.floor(Math.random() * 1_000_000);
    await admin.request({
      request: 'create',
      room,
      publishers: 1,
      audiocodec: 'opus',
      videocodec: 'h264',
      h264_profile: '42e01f',
      fir_freq: 0, // ffmpeg sends a keyframe every second anyway
      bitrate: 0,
      notify_joining: false,
    });
    publisherHandle = await JanusVideoRoomHandle.attach(janus.url);
    publisher = await publishToJanus(publisherHandle, room, opts.source);
    const pub = publisher;
    const adminHandle = admin;

    const outputs: number[][] = []; // stream ids of each output's forwarders
    const addOutput = async (i: number, dest: Destination): Promise<void> => {
      const reply = await adminHandle.request({
        request: 'rtp_forward',
        room,
        publisher_id: pub.publisherId,
        host: dest.ip,
        host_family: 'ipv4',
        streams: [
          { mid: pub.mids.audio, port: dest.port },
          { mid: pub.mids.video, port: dest.port },
        ],
        srtp_suite: 80,
        srtp_crypto: randomBytes(30).toString('base64'), // 16-byte key + 14-byte salt, as in SDES
      });
      const forwarders = (reply['forwarders'] as Array<{ stream_id: number }> | undefined) ?? [];
      if (forwarders.length !== 2) throw new Error(`janus rtp_forward: expected 2 forwarders, got ${JSON.stringify(reply)}`);
      outputs[i] = forwarders.map((f) => f.stream_id);
    };
    const removeOutput = async (ids: number[]): Promise<void> => {
      for (const stream_id of ids)
        await adminHandle.request({ request: 'stop_rtp_forward', room, publisher_id: pub.publisherId, stream_id });
    };

    return {
      name: opts.name ?? 'Janus VideoRoom rtp_forward',
      version: janusVersion(),
      sfu: [{ label: 'janus', pid: janus.pid, cpu: opts.cpu }],
      helperPids: pub.source.process.pid ? [pub.source.process.pid] : [],
      webrtcProbes: [],
      async setOutputs(n, destination) {
        while (outputs.length > n) await removeOutput(outputs.pop()!);
        const fresh = Array.from({ length: Math.max(0, n - outputs.length) }, (_, k) => outputs.length + k);
        await inBatches(fresh, 8, (i) => addOutput(i, destination(i)));
      },
      sent: async () => undefined, // rtp_forward keeps no packet counters
      scores: () => undefined,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      ladder: { type: 'string', default: '50,100,200,400,800' },
      refine: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '3' },
      measure: { type: 'string', default: '8' },
      samples: { type: 'string', default: '8' },
    },
  });
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1');
  const r = await runLadder(() => startJanusTarget({ cpu: 0, source: { width: 1280, height: 720, fps: 30, videoKbps: 1500 } }), {
    ladder: values.ladder.split(',').map(Number),
    refine: Number(values.refine),
    warmupS: Number(values.warmup),
    measureS: Number(values.measure),
    samples: Number(values.samples),
    maxLoss: 0.01,
    maxCpu: 0.9,
  });
  console.log(table(r.steps.map(stepRow)));
  console.log(
    `capacity ${r.capacity ?? 'none'}${r.bounded ? '' : ' (lower bound)'}, µs/pkt ${r.usPerPkt?.toFixed(2)}, projected @90 % ${r.projected}`,
  );
  process.exit(0);
}
