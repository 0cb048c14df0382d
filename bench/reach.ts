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
import { describePath, firstFrame, peerConnectionPaths, type PeerConnectionPath } from '../test/support/siteBrowser.js';

export const REACH_VARIANTS = [
  { variant: 'open', site: 'school-a', network: 'NAT, all open' },
  { variant: 'udp-blocked', site: 'school-b', network: 'NAT, TCP only' },
  { variant: '443-only', site: 'school-c', network: 'NAT, TCP 443 to the data centre only' },
  { variant: 'one-way', site: 'school-d', network: "NAT, TCP to lessoncast's https only" },
] as const satisfies ReadonlyArray<{ variant: string; site: SchoolSite; network: string }>;

export interface ReachLoad {
  ms: number | null;
  /** The selected pair when the first frame showed: 'prflx udp … → host udp …', 'relay udp/tls … → host udp …', or 'HLS' */
  path: string;
  /** Its local candidate: 'prflx udp', 'relay udp/tls', 'HLS' */
  candidateType: string;
  /** The local candidate 3 s later (Chrome may move to a better pair once it connects). */
  settledType: string;
}
export interface ReachRow {
  variant: string;
  school: SchoolSite;
  network: string;
  loads: ReachLoad[];
  medianMs: number | null;
  /** Local candidate types at first frame, and 3 s later, over the loads. */
  candidateType: string;
  settledType: string;
}

function localType(p: PeerConnectionPath | undefined): string {
  return p?.local ? `${p.local.candidateType} ${p.local.protocol}${p.local.relayProtocol ? `/${p.local.relayProtocol}` : ''}` : 'none';
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
        let settledType = 'none';
        const receiving = async () => (await peerConnectionPaths(p.page)).find((x) => x.framesDecoded > 0);
        if (frame?.webrtc) {
          const rx = await receiving();
          path = describePath(rx);
          candidateType = localType(rx);
          await sleep(3000);
          settledType = localType(await receiving());
        } else if (frame) {
          path = candidateType = settledType = 'HLS';
        }
        loads.push({ ms: frame?.ms ?? null, path, candidateType, settledType });
        console.log(`${v.variant} load ${i + 1}: ${frame ? `${frame.ms} ms` : 'no frame'} over ${path}; 3 s later: ${settledType}`);
        await p.close();
        await sleep(500);
      }
      const times = loads.flatMap((l) => (l.ms === null ? [] : [l.ms])).sort((a, b) => a - b);
      const types = [...new Set(loads.map((l) => l.candidateType))];
      const settled = [...new Set(loads.map((l) => l.settledType))];
      rows.push({
        variant: v.variant,
        school: v.site,
        network: v.network,
        loads,
        medianMs: times.length === loads.length ? percentile(times, 50) : null,
        candidateType: types.join(' | '),
        settledType: settled.join(' | '),
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
          'at first frame': r.candidateType,
          '3 s later': r.settledType,
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
