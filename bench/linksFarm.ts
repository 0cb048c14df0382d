/**
 * Many classrooms in one process, for scenario e of bench/links.ts: werift receivers that behave
 * like browsers towards the sender (transport-cc negotiated and transport-wide feedback for every
 * packet: kit/transportFeedback.ts), so mediasoup runs its bandwidth estimation, pacing and layer
 * choice for each as for a Chromium page. The parent runs this inside a site's network namespace
 * (`ip netns exec`), gives it the lesson and the tokens on stdin (one JSON line), and then asks
 * for figures: each line it writes back on stdout is JSON.
 *
 *   in:  {"wsUrl", "host", "caFile", "localAddress", "lessonId", "classrooms": [{"id", "token"}]}
 *   out: {"ready": n, "failed": [...]}                 once every classroom joined (or failed)
 *   in:  "stats"   out: {"stats": [{"id", "frames", "freezeCount", "totalFreezesMs", "layer", ...}]}
 *   in:  "quit"    (closes everything and exits)
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Watcher } from '../kit/peers.js';
import { SignalClient } from '../kit/signalClient.js';

export interface FarmConfig {
  wsUrl: string;
  /** The name in the server's certificate (the URL may carry the address). */
  host: string;
  caFile: string;
  /** This namespace's address (werift adds it as its host candidate). */
  localAddress: string;
  lessonId: string;
  classrooms: Array<{ id: string; token: string }>;
}

export interface FarmStats {
  id: string;
  /** Camera frames completed (RTP marker) and freezes among them, as Chromium counts freezes. */
  frames: number;
  freezeCount: number;
  totalFreezesMs: number;
  /** The camera consumer's spatial layer from the last consumerLayersChanged (null: none yet / paused). */
  layer: number | null;
  videoPackets: number;
  videoLost: number;
  audioPackets: number;
  feedbackMessages: number;
}

interface Classroom {
  id: string;
  client: SignalClient;
  watcher: Watcher;
}

const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

async function join(cfg: FarmConfig, ca: Buffer, c: { id: string; token: string }): Promise<Classroom> {
  // ws hands `servername` to tls.connect (its types omit it): the certificate names the host, not the address.
  const tls = { ca, servername: cfg.host, headers: { host: cfg.host } } as Parameters<typeof SignalClient.connect>[1];
  const client = await SignalClient.connect(cfg.wsUrl, tls);
  await client.request('authenticate', { token: c.token });
  const joined = await client.request('join', { lessonId: cfg.lessonId });
  const watcher = await Watcher.start(client, joined.producers, {
    transportFeedback: true,
    connectTimeoutMs: 30_000,
    localAddress: cfg.localAddress,
  });
  return { id: c.id, client, watcher };
}

function statsOf(c: Classroom): FarmStats {
  const all = Object.entries(c.watcher.rtc.allStats());
  const video = all.find(([, s]) => s.kind === 'video');
  const audio = all.find(([, s]) => s.kind === 'audio');
  const cameraConsumer = video?.[0];
  let layer: number | null = null;
  for (const n of c.client.notifications) {
    const d = n.data as { consumerId?: string; spatialLayer?: number | null };
    if (n.event === 'consumerLayersChanged' && d.consumerId === cameraConsumer) layer = d.spatialLayer ?? null;
  }
  const v = video?.[1];
  return {
    id: c.id,
    frames: v?.frames ?? 0,
    freezeCount: v?.freezeCount ?? 0,
    totalFreezesMs: Math.round(v?.totalFreezesMs ?? 0),
    layer,
    videoPackets: v?.packets ?? 0,
    videoLost: v?.lost ?? 0,
    audioPackets: audio?.[1].packets ?? 0,
    feedbackMessages: c.watcher.rtc.feedbackSent.messages,
  };
}

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  const classrooms: Classroom[] = [];
  let configured = false;
  for await (const line of lines) {
    if (!configured) {
      configured = true;
      const cfg = JSON.parse(line) as FarmConfig;
      const ca = readFileSync(cfg.caFile);
      const failed: string[] = [];
      // A few at a time: werift negotiates in JS, and a storm of joins is another bench's subject.
      for (let i = 0; i < cfg.classrooms.length; i += 5) {
        const batch = await Promise.allSettled(cfg.classrooms.slice(i, i + 5).map((c) => join(cfg, ca, c)));
        batch.forEach((r, k) => {
          if (r.status === 'fulfilled') classrooms.push(r.value);
          else failed.push(`${cfg.classrooms[i + k]!.id}: ${(r.reason as Error).message}`);
        });
      }
      out({ ready: classrooms.length, failed });
    } else if (line === 'stats') {
      out({ stats: classrooms.map(statsOf) });
    } else if (line === 'quit') {
      break;
    }
  }
  for (const c of classrooms) {
    await c.watcher.close().catch(() => undefined);
    c.client.close();
  }
  process.exit(0);
}

await main();
