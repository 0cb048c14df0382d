import type { Logger } from '../logger.js';
import { createReadStream, createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { LiveEvent } from '../live/types.js';
import type { QualityRecord } from './qualityRecord.js';

// Declared apart, free of Node, so the control room page can import it too.
export type { QualityRecord } from './qualityRecord.js';

export interface HistoryQuery {
  school?: string;
  /** ISO time: only records at or after it. */
  since?: string;
  /** At most this many samples and this many events (the earliest ones). */
  limit: number;
}

export interface HistoryResult {
  lessonId: string;
  school: string | null;
  samples: QualityRecord[];
  events: LiveEvent[];
  truncated: boolean;
}

export const QUALITY_FILE = 'quality.ndjson';
export const EVENTS_FILE = 'live-events.ndjson';

interface Files {
  quality?: WriteStream;
  events?: WriteStream;
}

/**
 * The retrospective view, kept with the recording: every quality sample and
 * every live event of a lesson hosted here is appended (NDJSON) to
 * `<recording.dir>/<lessonId>/quality.ndjson` and `live-events.ndjson`.
 * Appends go through one stream per file; the lesson's end closes them.
 */
export class LessonHistory {
  private readonly open = new Map<string, Files>();
  private readonly failed = new Set<string>();
  /** Lessons whose files were closed at their end (recent ones; late events are not appended). */
  private readonly ended = new Set<string>();
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {}

  /** Bus listener: keeps this node's events about its own lessons. */
  record(e: LiveEvent): void {
    if (this.closed || e.node !== this.nodeId || !('lessonId' in e) || this.ended.has(e.lessonId)) return;
    if (e.type === 'quality') {
      const lines = e.schools.map((s) =>
        JSON.stringify({
          at: s.quality?.sampledAt ?? e.at,
          schoolId: s.schoolId,
          connected: s.connected,
          bitrateKbps: s.quality?.bitrateKbps ?? null,
          lossPct: s.quality?.lossPct ?? null,
          rttMs: s.quality?.rttMs ?? null,
          jitterMs: s.quality?.jitterMs ?? null,
          score: s.quality?.score ?? null,
        } satisfies QualityRecord),
      );
      this.append(e.lessonId, 'quality', lines.join('\n') + '\n');
      return;
    }
    this.append(e.lessonId, 'events', JSON.stringify(e) + '\n');
    if (e.type === 'lessonEnded') {
      this.ended.add(e.lessonId);
      if (this.ended.size > 1000) this.ended.delete(this.ended.values().next().value!);
      void this.end(e.lessonId);
    }
  }

  private append(lessonId: string, kind: keyof Files, text: string): void {
    if (this.failed.has(lessonId)) return;
    let files = this.open.get(lessonId);
    if (!files) this.open.set(lessonId, (files = {}));
    let stream = files[kind];
    if (!stream) {
      try {
        mkdirSync(path.join(this.dir, lessonId), { recursive: true });
      } catch (err) {
        return this.fail(lessonId, err as Error);
      }
      stream = createWriteStream(path.join(this.dir, lessonId, kind === 'quality' ? QUALITY_FILE : EVENTS_FILE), { flags: 'a' });
      stream.on('error', (err) => this.fail(lessonId, err));
      files[kind] = stream;
    }
    stream.write(text);
  }

  /** History is best effort: a full or unwritable disk must not disturb the lesson. */
  private fail(lessonId: string, err: Error): void {
    if (this.failed.has(lessonId)) return;
    this.failed.add(lessonId);
    this.log.warn({ lesson: lessonId, err: err.message }, 'lesson history not writable; quality history of this lesson is incomplete');
    void this.end(lessonId);
  }

  private end(lessonId: string): Promise<void> {
    const files = this.open.get(lessonId);
    this.open.delete(lessonId);
    const streams = [files?.quality, files?.events].filter((s): s is WriteStream => !!s);
    return Promise.all(streams.map((s) => new Promise<void>((r) => s.end(() => r())))).then(() => undefined);
  }

  /** Flushes and closes every open file (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.open.keys()].map((id) => this.end(id)));
  }

  /** Whether any history exists for the lesson (here). */
  has(lessonId: string): boolean {
    return existsSync(path.join(this.dir, lessonId, QUALITY_FILE)) || existsSync(path.join(this.dir, lessonId, EVENTS_FILE));
  }

  /** Reads a lesson's history, optionally one school's. `lessonId` must already be validated as a plain id. */
  async read(lessonId: string, q: HistoryQuery): Promise<HistoryResult> {
    const since = q.since ?? '';
    let truncated = false;
    const samples: QualityRecord[] = [];
    for await (const rec of readLines<QualityRecord>(path.join(this.dir, lessonId, QUALITY_FILE))) {
      if ((q.school && rec.schoolId !== q.school) || rec.at < since) continue;
      if (samples.length >= q.limit) {
        truncated = true;
        break;
      }
      samples.push(rec);
    }
    const events: LiveEvent[] = [];
    for await (const e of readLines<LiveEvent>(path.join(this.dir, lessonId, EVENTS_FILE))) {
      if ((q.school && 'schoolId' in e && e.schoolId !== q.school) || e.at < since) continue;
      if (events.length >= q.limit) {
        truncated = true;
        break;
      }
      events.push(e);
    }
    return { lessonId, school: q.school ?? null, samples, events, truncated };
  }
}

async function* readLines<T>(file: string): AsyncGenerator<T> {
  if (!existsSync(file)) return;
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (!line) continue;
      try {
        yield JSON.parse(line) as T;
      } catch {
        /* a line cut short by a crash */
      }
    }
  } finally {
    rl.close();
  }
}
