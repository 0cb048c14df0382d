import type { Redis } from 'ioredis';

/**
 * The origin lease of a lesson: which node acts as its origin, and the fencing token (epoch) of
 * that term. Two nodes must never both act as origin of one lesson, so:
 *   - the lease is one Redis key with a TTL, taken only when absent (or renewed by its holder);
 *   - every new term gets a higher epoch (a per-lesson counter), which the shared stores check
 *     before accepting an origin's write (a stale origin's epoch is lower: its writes are refused);
 *   - the holder counts its own term from when it *sent* the last successful renewal, on a
 *     monotonic clock, and stops acting as origin before Redis can have expired the key. A node
 *     paused for longer than the TTL (SIGSTOP, a long GC, a frozen VM) finds on waking that its
 *     term is over without asking anyone.
 *
 * Keys (prefix `redis.keyPrefix`):
 *   origin:<lesson>        STRING "<epoch>:<node>", PX ttl: the current term
 *   origin-epoch:<lesson>  INTEGER, the last epoch handed out (kept a week past its last use)
 */

/** A term as Redis holds it. */
export interface OriginTerm {
  node: string;
  epoch: number;
}

/** Take the lease if free (a new term, next epoch) or extend our own; otherwise say who holds it. */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  local node = string.sub(cur, sep + 1)
  if node == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(string.sub(cur, 1, sep - 1)), node}
  end
  return {0, tonumber(string.sub(cur, 1, sep - 1)), node}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 604800000)
redis.call('SET', KEYS[1], epoch .. ':' .. ARGV[1], 'PX', ARGV[2])
return {1, epoch, ARGV[1]}`;

/** Extend the term only if it is still exactly ours (same node and epoch). */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface OriginLeasesOptions {
  redis: Redis;
  keyPrefix: string;
  nodeId: string;
  /** How long a term lasts without renewal. */
  ttlMs: number;
  /** Monotonic clock (ms); tests may pass their own. */
  now?: () => number;
}

/** One node's door to the origin leases of every lesson. */
export class OriginLeases {
  private readonly now: () => number;

  constructor(private readonly opts: OriginLeasesOptions) {
    this.now = opts.now ?? (() => performance.now());
  }

  private key(lessonId: string): string {
    return `${this.opts.keyPrefix}origin:${lessonId}`;
  }

  /** Who holds the lesson's lease now; null when nobody does. */
  async holder(lessonId: string): Promise<OriginTerm | null> {
    return parseTerm(await this.opts.redis.get(this.key(lessonId)));
  }

  /**
   * Becomes the lesson's origin if nobody is (or extends our own term). Resolves to our lease, or
   * to the term of the node that holds it.
   */
  async acquire(lessonId: string): Promise<{ lease: OriginLease } | { heldBy: OriginTerm }> {
    const sentAt = this.now();
    const [won, epoch, node] = (await this.opts.redis.eval(
      ACQUIRE,
      2,
      this.key(lessonId),
      `${this.opts.keyPrefix}origin-epoch:${lessonId}`,
      this.opts.nodeId,
      String(this.opts.ttlMs),
    )) as [number, number, string];
    if (won !== 1) return { heldBy: { node, epoch } };
    return { lease: new OriginLease(this, lessonId, { node, epoch }, sentAt + this.opts.ttlMs) };
  }

  /** @internal OriginLease's renewal: true while the term is still ours. */
  async renewTerm(lessonId: string, term: OriginTerm): Promise<{ ok: boolean; sentAt: number }> {
    const sentAt = this.now();
    const ok = await this.opts.redis.eval(RENEW, 1, this.key(lessonId), `${term.epoch}:${term.node}`, String(this.opts.ttlMs));
    return { ok: Number(ok) === 1, sentAt };
  }

  /** @internal */
  async releaseTerm(lessonId: string, term: OriginTerm): Promise<void> {
    await this.opts.redis.eval(RELEASE, 1, this.key(lessonId), `${term.epoch}:${term.node}`);
  }

  /** @internal */
  clock(): number {
    return this.now();
  }

  get ttlMs(): number {
    return this.opts.ttlMs;
  }
}

/**
 * A term this node holds. `valid` turns false, for good, once the term may have ended: a renewal
 * was refused, or the last successful one was sent longer than the TTL ago.
 */
export class OriginLease {
  private validUntil: number;
  private lost = false;

  constructor(
    private readonly leases: OriginLeases,
    readonly lessonId: string,
    readonly term: OriginTerm,
    validUntil: number,
  ) {
    this.validUntil = validUntil;
  }

  get epoch(): number {
    return this.term.epoch;
  }

  /** Whether this node may still act as origin (checked before every origin-only act). */
  get valid(): boolean {
    if (!this.lost && this.leases.clock() >= this.validUntil) this.lost = true;
    return !this.lost;
  }

  /** Extends the term; false (and invalid from now on) when it is no longer ours. Redis errors throw and leave the term to run out. */
  async renew(): Promise<boolean> {
    if (!this.valid) return false;
    const { ok, sentAt } = await this.leases.renewTerm(this.lessonId, this.term);
    if (!ok) this.lost = true;
    else if (!this.lost) this.validUntil = sentAt + this.leases.ttlMs;
    return this.valid;
  }

  /** Gives the term up (a clean stop); harmless when it already ended. */
  async release(): Promise<void> {
    const wasOurs = !this.lost;
    this.lost = true;
    if (wasOurs) await this.leases.releaseTerm(this.lessonId, this.term);
  }
}

function parseTerm(value: string | null): OriginTerm | null {
  if (!value) return null;
  const sep = value.indexOf(':');
  const epoch = Number(value.slice(0, sep));
  return sep > 0 && Number.isSafeInteger(epoch) ? { epoch, node: value.slice(sep + 1) } : null;
}
