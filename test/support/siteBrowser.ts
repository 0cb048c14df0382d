/**
 * Chromium inside one site of the namespace topology (test/support/netns.ts), trusting the test
 * CA the way a managed board does: the CA is added to the NSS database of the browser's own HOME
 * (`certutil -A -t "C,,"`), which Chromium on Linux reads for locally trusted roots. No flag
 * relaxes certificate checks. And what a page's RTCPeerConnections chose, from getStats.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, chromiumAvailable, launchBrowser } from './browser.js';
import { namespaceSupport, type Site, type Topology } from './netns.js';
import { certutil } from './tls.js';

/**
 * An empty NSS database in `home` that trusts `caFile` to identify web (TLS) servers, where
 * Chromium 156 looks for it (~/.local/share/pki/nssdb; see test/tls.test.ts).
 */
export function trustingHome(home: string, caFile: string): string {
  const nssdb = path.join(home, '.local', 'share', 'pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  certutil(['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  certutil(['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'lessoncast-test-ca', '-i', caFile]);
  return home;
}

/**
 * Chromium run by `ip netns exec` in `site`, with HOME under `dir` trusting `caFile`, and
 * `hosts` names resolved to addresses (`--host-resolver-rules`: no DNS server in the topology).
 */
/**
 * Whether Chromium and network namespaces are missing here for a test across namespaces; if so, it
 * is said as tap expects: a failure without Chromium, or without namespaces when CI=true (CI runs as
 * root); a skipped test `what` otherwise.
 */
export function siteBrowsersMissing(
  tap: { fail(message: string): unknown; test(name: string, options: { skip: string }, fn: () => void): unknown },
  what: string,
): boolean {
  if (!chromiumAvailable()) {
    tap.fail('Debian chromium is not installed (apt-get install chromium; scripts/setup.sh test does it)');
    return true;
  }
  const support = namespaceSupport();
  if (support.ok) return false;
  if (process.env['CI'] === 'true') tap.fail(`network namespaces cannot be made here, and CI=true: ${support.reason}`);
  else tap.test(what, { skip: `network namespaces cannot be made here: ${support.reason}` }, () => {});
  return true;
}

export async function launchSiteBrowser(
  topo: Topology,
  site: Site,
  options: { dir: string; caFile: string; hosts: Record<string, string>; fakeVideoFile?: string },
): Promise<Browser> {
  const home = trustingHome(path.join(options.dir, `home-${site}`), options.caFile);
  const rules = Object.entries(options.hosts)
    .map(([name, address]) => `MAP ${name} ${address}`)
    .join(', ');
  return launchBrowser(
    { ...process.env, HOME: home },
    {
      executablePath: topo.wrapper(site, CHROMIUM, options.dir),
      args: [
        `--host-resolver-rules=${rules}`,
        ...(options.fakeVideoFile ? [`--use-file-for-fake-video-capture=${options.fakeVideoFile}`] : []),
      ],
    },
  );
}

/**
 * Instruments a context before its pages load:
 * - keeps every RTCPeerConnection the page makes (mediasoup-client makes one per transport) on
 *   `window.__lcPeerConnections`, so the test can read their stats;
 * - notes when the page first presents a video frame, WebRTC or HLS alike
 *   (`window.__lcFirstFrame`: ms after navigation start, and whether that video was HLS).
 * Text, not functions: see PATHS_SCRIPT.
 */
export async function instrumentPage(context: BrowserContext): Promise<void> {
  await context.addInitScript(`(() => {
    const Native = window.RTCPeerConnection;
    const kept = (window.__lcPeerConnections = []);
    window.RTCPeerConnection = class extends Native {
      constructor(config) {
        super(config);
        kept.push(this);
      }
    };
    const watch = (video) => {
      if (video.__lcWatched) return;
      video.__lcWatched = true;
      video.requestVideoFrameCallback(() => {
        window.__lcFirstFrame ??= { ms: Math.round(performance.now()), webrtc: video.srcObject instanceof MediaStream };
      });
    };
    new MutationObserver(() => document.querySelectorAll('video').forEach(watch))
      .observe(document, { subtree: true, childList: true });
  })();`);
}

/** Navigation start → first video frame presented (see instrumentPage), and whether it came over WebRTC. */
export function firstFrame(page: Page): Promise<{ ms: number; webrtc: boolean } | undefined> {
  return page.evaluate<{ ms: number; webrtc: boolean } | undefined>('window.__lcFirstFrame');
}

export interface CandidateInfo {
  candidateType: string;
  protocol: string;
  address: string;
  port: number;
  relayProtocol?: string;
  networkType?: string;
  tcpType?: string;
  url?: string;
}

/** One RTCPeerConnection of the page: its selected candidate pair and what flows over it. */
export interface PeerConnectionPath {
  connectionState: string;
  /** The ICE transport's configured policy ('all' or 'relay'). */
  iceTransportPolicy: string;
  pairState?: string;
  nominated?: boolean;
  local?: CandidateInfo;
  remote?: CandidateInfo;
  /** Over this connection: video frames decoded, audio samples received and concealed, sending. */
  framesDecoded: number;
  audioSamplesReceived: number;
  audioConcealedSamples: number;
  sending: boolean;
}

/**
 * In-page code for peerConnectionPaths, as text: the test runs under tsx, whose esbuild names
 * inner functions with a helper (__name) that does not exist in the page.
 */
const PATHS_SCRIPT = `(async () => {
  const pick = (s) => s && Object.fromEntries(
    ['candidateType', 'protocol', 'address', 'port', 'relayProtocol', 'networkType', 'tcpType', 'url']
      .filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
  const out = [];
  for (const pc of window.__lcPeerConnections || []) {
    if (pc.connectionState === 'closed') continue;
    const stats = new Map();
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
    let pair;
    // The transport names its selected pair; else the nominated pair that succeeded.
    for (const s of stats.values()) if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    for (const s of stats.values()) if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    const path = {
      connectionState: pc.connectionState,
      iceTransportPolicy: pc.getConfiguration().iceTransportPolicy || 'all',
      framesDecoded: 0, audioSamplesReceived: 0, audioConcealedSamples: 0, sending: false,
    };
    if (pair) {
      path.pairState = pair.state;
      path.nominated = pair.nominated === true;
      path.local = pick(stats.get(pair.localCandidateId));
      path.remote = pick(stats.get(pair.remoteCandidateId));
    }
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') path.framesDecoded += s.framesDecoded || 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        path.audioSamplesReceived += s.totalSamplesReceived || 0;
        path.audioConcealedSamples += s.concealedSamples || 0;
      }
      if (s.type === 'outbound-rtp' && (s.packetsSent || 0) > 0) path.sending = true;
    }
    out.push(path);
  }
  return out;
})()`;

/** The selected path of every open RTCPeerConnection of the page (see instrumentPage). */
export function peerConnectionPaths(page: Page): Promise<PeerConnectionPath[]> {
  return page.evaluate<PeerConnectionPath[]>(PATHS_SCRIPT);
}

/**
 * Every candidate pair of every open RTCPeerConnection of the page, one line each (state, nominated,
 * checks sent and answered, both ends): what a test prints when a page did not settle on the path
 * it expected, to tell a check that failed from one never made.
 */
export function candidatePairLines(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`(async () => {
    const side = (c) => c ? c.candidateType + ' ' + c.protocol + (c.relayProtocol ? '/' + c.relayProtocol : '') + ' ' + c.address + ':' + c.port : '?';
    const out = [];
    for (const pc of window.__lcPeerConnections || []) {
      if (pc.connectionState === 'closed') continue;
      const stats = new Map();
      (await pc.getStats()).forEach((s) => stats.set(s.id, s));
      for (const s of stats.values()) {
        if (s.type !== 'candidate-pair') continue;
        out.push(pc.connectionState + ' ' + s.state + (s.nominated ? ' nominated' : '') + ' req ' + (s.requestsSent || 0) + ' resp ' +
          (s.responsesReceived || 0) + ': ' + side(stats.get(s.localCandidateId)) + ' → ' + side(stats.get(s.remoteCandidateId)));
      }
    }
    return out;
  })()`);
}

/** A short text for a path: "host udp 10.77.1.2 → host udp 198.18.0.10:44000". */
export function describePath(p: PeerConnectionPath | undefined): string {
  if (!p?.local || !p.remote) return `no selected pair (${p?.connectionState ?? 'no connection'})`;
  const side = (c: CandidateInfo) =>
    `${c.candidateType} ${c.protocol}${c.relayProtocol ? `/${c.relayProtocol}` : ''} ${c.address}:${c.port}`;
  return `${side(p.local)} → ${side(p.remote)}`;
}
