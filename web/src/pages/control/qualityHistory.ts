/** Each school's reception over the last ten minutes, per lesson: what this screen saw, completed from the server's history. */
import type { QualitySummary } from '../../../../src/live/types.js';
import type { QualityRecord } from '../../../../src/monitor/qualityRecord.js';
import { api } from '../../lib/api.js';

/** Ten minutes of samples at the 3–5 s the server samples at. */
const HISTORY_SAMPLES = 200;

export interface Sample {
  at: number;
  connected: boolean;
  q: QualitySummary | null;
}

export class QualityHistory {
  private readonly byLesson = new Map<string, Map<string, Sample[]>>();

  constructor(private readonly token: string) {}

  /** A school's samples in one lesson, oldest first. */
  of(lessonId: string): Map<string, Sample[]> {
    return this.byLesson.get(lessonId) ?? new Map<string, Sample[]>();
  }

  record(lessonId: string, schoolId: string, connected: boolean, q: QualitySummary | null): void {
    let bySchool = this.byLesson.get(lessonId);
    if (!bySchool) this.byLesson.set(lessonId, (bySchool = new Map<string, Sample[]>()));
    let samples = bySchool.get(schoolId);
    if (!samples) bySchool.set(schoolId, (samples = []));
    const at = q?.sampledAt ? Date.parse(q.sampledAt) : Date.now();
    // The same server sample arrives by poll and by feed; keep it once.
    if (samples.length && samples[samples.length - 1]!.at === at) return;
    samples.push({ at, connected, q });
    if (samples.length > HISTORY_SAMPLES) samples.splice(0, samples.length - HISTORY_SAMPLES);
  }

  /** The server keeps every sample of the lesson: fill in what this screen did not see. Resolves whether it could. */
  async load(lessonId: string): Promise<boolean> {
    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    try {
      const res = await api<{ samples: QualityRecord[] }>(
        this.token,
        `/api/live/lessons/${encodeURIComponent(lessonId)}/history?since=${encodeURIComponent(since)}&limit=5000`,
      );
      const bySchool = new Map<string, Sample[]>();
      for (const r of res.samples) {
        const list = bySchool.get(r.schoolId) ?? [];
        list.push({
          at: Date.parse(r.at),
          connected: r.connected,
          q: r.bitrateKbps === null ? null : { ...r, bitrateKbps: r.bitrateKbps, lossPct: r.lossPct ?? 0, sampledAt: r.at },
        });
        bySchool.set(r.schoolId, list);
      }
      const mine = this.of(lessonId);
      for (const [school, fromServer] of bySchool) {
        const seen = mine.get(school) ?? [];
        const after = seen.filter((x) => x.at > (fromServer[fromServer.length - 1]?.at ?? 0));
        mine.set(school, [...fromServer, ...after].slice(-HISTORY_SAMPLES));
      }
      this.byLesson.set(lessonId, mine);
      return true;
    } catch {
      // Hosted on another node, or no history yet: the samples this screen saw will do.
      return false;
    }
  }
}
