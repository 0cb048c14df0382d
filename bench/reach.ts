/**
 * Reachability: page load → first decoded frame, per school network, in the namespace topology of
 * test/reachability.test.ts (test/support/reach.ts: lessoncast with TLS and coturn in a data
 * centre namespace, each school's Chromium behind its own NAT and firewall). The instructor is
 * live (camera 360p + microphone) before the first load. Each variant loads the classroom page
 * `loads` times, one at a time, each in a fresh browser context (cold cache, new connections),
 * and takes the time from navigation start to the first video frame the page presents, and the
 * path the page used (getStats' selected candidate pair, or the HLS player in one-way mode).
 *
 *   open         school A: NAT, everything allowed             → UDP
 *   udp-blocked  school B: NAT, no UDP                          → ICE-TCP
 *   443-only     school C: NAT, TCP 443 to the data centre only → TURN/TLS on 443
 *   one-way      school D: only lessoncast's https port         → ICE times out, live HLS
 *
 *   npm run bench -- --only reach      (root: it makes network namespaces)
 */
import { percentile, saveResult, sleep, table } from './lib.js';
import type { SchoolSite } from '../test/support/netns.js';
import { goLive, startReachWorld } from '../test/support/reach.js';
import { describePath, firstFrame, peerConnectionPaths } from '../test/support/siteBrowser.js';

export const REACH_VARIANTS = [
  { variant: 'open', site: 'school-a', network: 'NAT, all open' },
  { variant: 'udp-blocked', site: 'school-b', network: 'NAT, TCP only' },
  { variant: '443-only', site: 'school-c', network: 'NAT, TCP 443 to the data centre only' },
  { variant: 'one-way', site: 'school-d', network: "NAT, TCP to lessoncast's https only" },
] as const satisfies ReadonlyArray<{ variant: string; site: SchoolSite; network: string }>;

export interface ReachLoad {
  ms: number | null;
  /** 'host udp → host udp', 'relay udp/tls … → host udp …', or 'HLS' */
  path: string;
  candidateType: string;
}
export interface ReachRow {
  variant: string;
  school: SchoolSite;
  network: string;
  loads: ReachLoad[];
  medianMs: number | null;
  candidateType: string;
}

export async function runReachBench(
  opts: { loads: number; timeoutMs: number; variants?: string[] } = { loads: 5, timeoutMs: 60_000 },
): Promise<{
  rows: ReachRow[];
  arrangement: string;
  file: string;
}> {
  const world = await startReachWorld();
  try {
    const links = await world.createLesson('Reach bench', true);
    const live = await goLive(world, links.studio);
    if (!live.publishing) throw new Error('the instructor could not go live');
    // One-way mode needs live HLS segments of the lesson: let a few be written first.
    await sleep(8000);
    const rows: ReachRow[] = [];
    for (const v of REACH_VARIANTS.filter((x) => !opts.variants || opts.variants.includes(x.variant))) {
      const loads: ReachLoad[] = [];
      for (let i = 0; i < opts.loads; i++) {
        const p = await world.open(v.site, `${v.site}-${i}`, links.classroom[v.site]);
        const deadline = Date.now() + opts.timeoutMs;
        let frame = await firstFrame(p.page).catch(() => undefined);
        while (!frame && Date.now() < deadline) {
          await sleep(50);
          frame = await firstFrame(p.page).catch(() => undefined);
        }
        let path = 'none';
        let candidateType = 'none';
        if (frame?.webrtc) {
          await sleep(300); // the first frame's stats settle
          const rx = (await peerConnectionPaths(p.page)).find((x) => x.framesDecoded > 0);
          path = describePath(rx);
          candidateType = rx?.local
            ? `${rx.local.candidateType} ${rx.local.protocol}${rx.local.relayProtocol ? `/${rx.local.relayProtocol}` : ''}`
            : 'none';
        } else if (frame) {
          path = candidateType = 'HLS';
        }
        loads.push({ ms: frame?.ms ?? null, path, candidateType });
        console.log(`${v.variant} load ${i + 1}: ${frame ? `${frame.ms} ms` : 'no frame'} over ${path}`);
        await p.close();
        await sleep(500);
      }
      const times = loads.flatMap((l) => (l.ms === null ? [] : [l.ms])).sort((a, b) => a - b);
      const types = [...new Set(loads.map((l) => l.candidateType))];
      rows.push({
        variant: v.variant,
        school: v.site,
        network: v.network,
        loads,
        medianMs: times.length === loads.length ? percentile(times, 50) : null,
        candidateType: types.join(' | '),
      });
    }
    const arrangement =
      'network namespaces on one machine (no added delay: veth + bridge + nftables NAT); lessoncast (1 worker, TLS on 443) and coturn 4.6 ' +
      'in the data-centre namespace; instructor Chromium (camera 360p simulcast + microphone) in the STEAM namespace; one classroom ' +
      'Chromium page at a time per school, each load in a fresh browser context; time = navigation start → first video frame presented';
    console.log(
      table(
        rows.map((r) => ({
          variant: r.variant,
          network: r.network,
          'median ms': r.medianMs ?? 'failed',
          'each load (ms)': r.loads.map((l) => l.ms ?? '–').join(' '),
          candidate: r.candidateType,
        })),
      ),
    );
    const file = saveResult('reach', { arrangement, loads: opts.loads, rows });
    console.log(`saved ${file}`);
    return { rows, arrangement, file };
  } finally {
    await world.close();
  }
}
