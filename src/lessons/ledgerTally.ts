/**
 * The pure accounting behind the per-school ledger: from moments (a board connected, left, went
 * audio only, got the floor) to what a ministry reads (minutes, seconds, counts, loss and RTT).
 * No clock, no I/O: every call says when it happened (ms since the epoch).
 */

/**
 * Time covered by the union of several keys' intervals (a school's boards): a school with two
 * boards connected at once counts that time once. Only time from `countFrom` on counts (the
 * lesson going live); until it is known (Infinity) nothing counts.
 */
export class Coverage {
  private readonly active = new Set<string>();
  /** When the union last became non-empty (while it is). */
  private since: number | null = null;
  private closedMs = 0;

  constructor(private countFrom = Number.POSITIVE_INFINITY) {}

  get on(): boolean {
    return this.active.size > 0;
  }

  /** Counting starts at `at` (the lesson went live); intervals open before it count from it. */
  startCounting(at: number): void {
    if (this.countFrom === Number.POSITIVE_INFINITY) this.countFrom = at;
  }

  open(key: string, at: number): void {
    if (this.active.has(key)) return;
    if (this.active.size === 0) this.since = at;
    this.active.add(key);
  }

  /** Returns true when this closed the union (the last key went). */
  close(key: string, at: number): boolean {
    if (!this.active.delete(key)) return false;
    if (this.active.size > 0) return false;
    this.closedMs += this.span(this.since!, at);
    this.since = null;
    return true;
  }

  /** Closes every key at `at`. */
  closeAll(at: number): void {
    for (const key of [...this.active]) this.close(key, at);
  }

  /** Time covered up to `at`, the open part included. */
  totalMs(at: number): number {
    return this.closedMs + (this.since === null ? 0 : this.span(this.since, at));
  }

  private span(from: number, to: number): number {
    return Math.max(0, to - Math.max(from, this.countFrom));
  }
}

/**
 * A distribution kept in fixed buckets (a row of the ledger stays small however long the lesson):
 * the mean is exact, the p95 is the upper edge of the bucket the 95th percentile falls in.
 */
export interface Histogram {
  sum: number;
  count: number;
  /** counts[i]: values ≤ edges[i] (and > edges[i-1]); the last bucket holds everything above. */
  counts: number[];
}

/** Loss, %: bucket upper edges. */
export const LOSS_EDGES = [0, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 100] as const;
/** RTT, ms: bucket upper edges (the last bucket is everything above 2000). */
export const RTT_EDGES = [10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2000] as const;

export function emptyHistogram(edges: readonly number[]): Histogram {
  return { sum: 0, count: 0, counts: new Array<number>(edges.length + 1).fill(0) };
}

export function addSample(h: Histogram, edges: readonly number[], value: number): void {
  if (!Number.isFinite(value) || value < 0) return;
  let i = edges.findIndex((e) => value <= e);
  if (i < 0) i = edges.length;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += value;
  h.count++;
}

/** Adds `b` into `a` (a resumed lesson: what was stored plus what came since). */
export function mergeHistogram(a: Histogram, b: Histogram): Histogram {
  const n = Math.max(a.counts.length, b.counts.length);
  return {
    sum: a.sum + b.sum,
    count: a.count + b.count,
    counts: Array.from({ length: n }, (_, i) => (a.counts[i] ?? 0) + (b.counts[i] ?? 0)),
  };
}

export function mean(h: Histogram): number | null {
  return h.count === 0 ? null : Math.round((h.sum / h.count) * 10) / 10;
}

/** The upper edge of the bucket holding the 95th percentile; above the last edge, the mean of what is there is unknown, so the last edge. */
export function p95(h: Histogram, edges: readonly number[]): number | null {
  if (h.count === 0) return null;
  const rank = Math.ceil(0.95 * h.count);
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return edges[Math.min(i, edges.length - 1)]!;
  }
  return edges[edges.length - 1]!;
}

/** One school's ledger row as the accounting keeps it (times in ms; null = not yet). */
export interface SchoolTallyState {
  schoolId: string;
  invited: boolean;
  firstJoinedAt: number | null;
  lastLeftAt: number | null;
  connectedMs: number;
  audioOnlyMs: number;
  hands: number;
  floorMs: number;
  loss: Histogram;
  rtt: Histogram;
}

export function emptyTally(schoolId: string, invited: boolean): SchoolTallyState {
  return {
    schoolId,
    invited,
    firstJoinedAt: null,
    lastLeftAt: null,
    connectedMs: 0,
    audioOnlyMs: 0,
    hands: 0,
    floorMs: 0,
    loss: emptyHistogram(LOSS_EDGES),
    rtt: emptyHistogram(RTT_EDGES),
  };
}

/**
 * One school in one lesson: its boards (keys) come and go, go audio only and back, raise hands
 * and hold the floor. Connected and audio-only time are unions over the boards; audio-only time
 * counts only while that board is connected. A run counts from zero: after a restart, what the
 * previous run stored is added to it (mergeTally).
 */
export class SchoolTally {
  private readonly connected: Coverage;
  private readonly audioOnly: Coverage;
  private readonly floor: Coverage;
  private firstJoinedAt: number | null = null;
  private lastLeftAt: number | null = null;
  private hands = 0;
  private readonly loss = emptyHistogram(LOSS_EDGES);
  private readonly rtt = emptyHistogram(RTT_EDGES);

  constructor(
    readonly schoolId: string,
    readonly invited: boolean,
    liveSince: number | null,
  ) {
    const from = liveSince ?? Number.POSITIVE_INFINITY;
    this.connected = new Coverage(from);
    this.audioOnly = new Coverage(from);
    this.floor = new Coverage(from);
  }

  /** The lesson went live: time counts from now on. */
  live(at: number): void {
    this.connected.startCounting(at);
    this.audioOnly.startCounting(at);
    this.floor.startCounting(at);
  }

  joined(board: string, at: number): void {
    if (this.firstJoinedAt === null || at < this.firstJoinedAt) this.firstJoinedAt = at;
    this.connected.open(board, at);
  }

  /** The board's connection dropped or it left: its audio-only time stops too. */
  left(board: string, at: number): void {
    this.audioOnly.close(board, at);
    if (this.connected.close(board, at)) this.lastLeftAt = at;
  }

  audio(board: string, audioOnly: boolean, at: number): void {
    if (audioOnly && this.connected.on) this.audioOnly.open(board, at);
    else if (!audioOnly) this.audioOnly.close(board, at);
  }

  handRaised(): void {
    this.hands++;
  }

  floorGranted(board: string, at: number): void {
    this.floor.open(board, at);
  }

  floorRevoked(board: string, at: number): void {
    this.floor.close(board, at);
  }

  /** One sampling tick of its link (loss %, RTT ms; null when the tick had none). */
  sample(lossPct: number | null, rttMs: number | null): void {
    if (lossPct !== null) addSample(this.loss, LOSS_EDGES, lossPct);
    if (rttMs !== null) addSample(this.rtt, RTT_EDGES, rttMs);
  }

  /** The lesson is over at `at`: every open interval closes there. */
  end(at: number): void {
    this.audioOnly.closeAll(at);
    this.floor.closeAll(at);
    if (this.connected.on) {
      this.connected.closeAll(at);
      this.lastLeftAt = at;
    }
  }

  /** What to store now: open intervals counted up to `at`. */
  state(at: number): SchoolTallyState {
    return {
      schoolId: this.schoolId,
      invited: this.invited,
      firstJoinedAt: this.firstJoinedAt,
      lastLeftAt: this.lastLeftAt,
      connectedMs: this.connected.totalMs(at),
      audioOnlyMs: this.audioOnly.totalMs(at),
      hands: this.hands,
      floorMs: this.floor.totalMs(at),
      loss: { ...this.loss, counts: [...this.loss.counts] },
      rtt: { ...this.rtt, counts: [...this.rtt.counts] },
    };
  }
}

/** A stored row plus what a resumed run counted since (joined fresh from zero). */
export function mergeTally(stored: SchoolTallyState, since: SchoolTallyState): SchoolTallyState {
  const earliest = [stored.firstJoinedAt, since.firstJoinedAt].filter((v): v is number => v !== null);
  const latest = [stored.lastLeftAt, since.lastLeftAt].filter((v): v is number => v !== null);
  return {
    schoolId: stored.schoolId,
    invited: stored.invited || since.invited,
    firstJoinedAt: earliest.length ? Math.min(...earliest) : null,
    lastLeftAt: latest.length ? Math.max(...latest) : null,
    connectedMs: stored.connectedMs + since.connectedMs,
    audioOnlyMs: stored.audioOnlyMs + since.audioOnlyMs,
    hands: stored.hands + since.hands,
    floorMs: stored.floorMs + since.floorMs,
    loss: mergeHistogram(stored.loss, since.loss),
    rtt: mergeHistogram(stored.rtt, since.rtt),
  };
}
