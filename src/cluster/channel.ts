import { createHmac, hkdfSync, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TSchema, Static } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import { LessoncastError, asLessoncastError, type ErrorCode, ERROR_STATUS } from '../errors.js';
import type { Logger } from '../logger.js';
import { firstError } from '../schemaErrors.js';

/**
 * Node-to-node coordination (docs/cluster.md): requests, answers and notices between the nodes
 * of one deployment, over Redis pub/sub, which every node already reaches and which needs no
 * port of its own between servers. Every envelope is signed with an HMAC-SHA256 key derived from
 * the cluster secret, carries its sender, its addressee and its time, and is accepted once:
 * a message without the secret, for another node, older than MAX_SKEW_MS or seen before is
 * dropped and counted, never answered. Bodies are validated against the handler's schema.
 *
 * Redis pub/sub is at-most-once: a node that is away misses what was sent meanwhile, and every
 * request has a timeout (CLUSTER_TIMEOUT); callers treat one as "that node may be gone".
 */

/** Envelopes older or newer than this (ms, against our clock) are refused: replays and badly skewed clocks. */
const MAX_SKEW_MS = 30_000;
/** Largest envelope accepted (characters); pipe and producer descriptions are a few KiB. */
const MAX_ENVELOPE_CHARS = 1 << 20;
const DEFAULT_TIMEOUT_MS = 5000;

type EnvelopeType = 'request' | 'response' | 'notice';

interface Envelope {
  v: 1;
  id: string;
  from: string;
  /** A node id, or '*' (every node). */
  to: string;
  at: number;
  type: EnvelopeType;
  kind: string;
  body: unknown;
  /** Responses: the request's id, and either a body or an error. */
  re?: string;
  error?: { code: string; message: string; details?: Record<string, unknown> };
  mac: string;
}

export type RefusalReason = 'malformed' | 'signature' | 'stale' | 'replayed' | 'oversize' | 'invalid';

export interface ClusterChannelOptions {
  /** Publishing connection (commands). */
  redis: Redis;
  /** A second connection, for subscribing (Redis gives a subscribed connection to pub/sub only). */
  subscriber: Redis;
  keyPrefix: string;
  nodeId: string;
  /** cluster.secret: the same on every node. */
  secret: string;
  log: Logger;
  /** Tests move the clock. */
  now?: () => number;
}

interface Handler {
  check: Validator;
  run(body: unknown, from: string): unknown;
}

interface Pending {
  resolve(body: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ClusterChannel {
  private readonly key: Buffer;
  private readonly now: () => number;
  private readonly handlers = new Map<string, Handler>();
  private readonly noticeHandlers = new Map<string, Handler>();
  private readonly pending = new Map<string, Pending>();
  /** Envelope ids accepted within the skew window (id → when it may be forgotten). */
  private readonly seen = new Map<string, number>();
  private readonly refusals: Record<RefusalReason, number> = { malformed: 0, signature: 0, stale: 0, replayed: 0, oversize: 0, invalid: 0 };
  private readonly direct: string;
  private readonly broadcast: string;
  private started = false;
  private closed = false;

  constructor(private readonly opts: ClusterChannelOptions) {
    if (Buffer.byteLength(opts.secret) < 32) throw new Error('cluster secret: at least 32 bytes');
    this.key = Buffer.from(hkdfSync('sha256', opts.secret, 'lessoncast', 'cluster channel v1', 32));
    this.now = opts.now ?? Date.now;
    this.direct = `${opts.keyPrefix}cluster:${opts.nodeId}`;
    this.broadcast = `${opts.keyPrefix}cluster`;
  }

  /** Refused envelopes since start, by reason (for metrics and tests). */
  refused(): Readonly<Record<RefusalReason, number>> {
    return { ...this.refusals };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.opts.subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.direct || channel === this.broadcast) this.receive(text);
    });
    await this.opts.subscriber.subscribe(this.direct, this.broadcast);
  }

  /** Answers requests of `kind` whose body matches `schema`; a thrown LessoncastError goes back as the error. */
  handle<S extends TSchema>(kind: string, schema: S, run: (body: Static<S>, from: string) => unknown): void {
    this.handlers.set(kind, { check: Compile(schema), run: run });
  }

  /** Receives notices of `kind` (no answer). */
  onNotice<S extends TSchema>(kind: string, schema: S, run: (body: Static<S>, from: string) => void): void {
    this.noticeHandlers.set(kind, { check: Compile(schema), run: run });
  }

  /** Asks one node; rejects with its error, or CLUSTER_TIMEOUT when it does not answer in time. */
  request(to: string, kind: string, body: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    if (this.closed) return Promise.reject(new LessoncastError('UNAVAILABLE', 'cluster channel closed'));
    const id = randomUUID();
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new LessoncastError('CLUSTER_TIMEOUT', `node ${to} did not answer ${kind} within ${timeoutMs} ms`, { node: to, kind }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ id, to, type: 'request', kind, body }).catch((err: unknown) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new LessoncastError('UNAVAILABLE', `cluster channel: ${(err as Error).message}`));
      });
    });
  }

  /** Tells one node, or every node ('*'); nothing comes back. */
  async notify(to: string, kind: string, body: unknown): Promise<void> {
    await this.send({ id: randomUUID(), to, type: 'notice', kind, body });
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new LessoncastError('UNAVAILABLE', 'cluster channel closed'));
    }
    this.pending.clear();
    void this.opts.subscriber.unsubscribe(this.direct, this.broadcast).catch(() => undefined);
  }

  private async send(e: Omit<Envelope, 'v' | 'from' | 'at' | 'mac'>): Promise<void> {
    const unsigned = { v: 1 as const, from: this.opts.nodeId, at: this.now(), ...e };
    const envelope: Envelope = { ...unsigned, mac: this.sign(unsigned) };
    const channel = e.to === '*' ? this.broadcast : `${this.opts.keyPrefix}cluster:${e.to}`;
    await this.opts.redis.publish(channel, JSON.stringify(envelope));
  }

  private sign(e: Omit<Envelope, 'mac'>): string {
    const fields = [e.v, e.id, e.from, e.to, e.at, e.type, e.kind, e.re ?? null, e.error ?? null, e.body ?? null];
    return createHmac('sha256', this.key).update(JSON.stringify(fields)).digest('base64url');
  }

  private refuse(reason: RefusalReason, detail?: Record<string, unknown>): void {
    this.refusals[reason]++;
    this.opts.log.warn({ reason, ...detail }, 'cluster message refused');
  }

  private receive(text: string): void {
    if (this.closed) return;
    if (text.length > MAX_ENVELOPE_CHARS) return this.refuse('oversize', { chars: text.length });
    let e: Envelope;
    try {
      e = JSON.parse(text) as Envelope;
    } catch {
      return this.refuse('malformed');
    }
    if (!isEnvelope(e)) return this.refuse('malformed');
    const expected = Buffer.from(this.sign(e));
    const given = Buffer.from(e.mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return this.refuse('signature', { from: e.from });
    if (e.from === this.opts.nodeId && e.to === '*') return; // our own broadcast
    if (e.to !== this.opts.nodeId && e.to !== '*') return; // not ours (cannot happen on our channels; harmless)
    const now = this.now();
    if (Math.abs(now - e.at) > MAX_SKEW_MS) return this.refuse('stale', { from: e.from, skewMs: now - e.at });
    this.forgetOld(now);
    if (this.seen.has(e.id)) return this.refuse('replayed', { from: e.from });
    this.seen.set(e.id, now + 2 * MAX_SKEW_MS);
    if (e.type === 'response') return this.settle(e);
    if (e.type === 'notice') return this.runNotice(e);
    void this.answer(e);
  }

  private forgetOld(now: number): void {
    for (const [id, until] of this.seen) {
      if (until > now) break; // insertion order is time order
      this.seen.delete(id);
    }
  }

  private settle(e: Envelope): void {
    const p = e.re ? this.pending.get(e.re) : undefined;
    if (!p) return; // timed out already
    this.pending.delete(e.re!);
    clearTimeout(p.timer);
    if (!e.error) return p.resolve(e.body);
    const code = (Object.hasOwn(ERROR_STATUS, e.error.code) ? e.error.code : 'INTERNAL') as ErrorCode;
    p.reject(new LessoncastError(code, e.error.message, { ...e.error.details, node: e.from }));
  }

  private runNotice(e: Envelope): void {
    const h = this.noticeHandlers.get(e.kind);
    if (!h) return;
    if (!h.check.Check(e.body))
      return this.refuse('invalid', { from: e.from, kind: e.kind, why: firstError(h.check.Errors(e.body), h.check.Type()) });
    try {
      void h.run(e.body, e.from);
    } catch (err) {
      this.opts.log.error({ err, kind: e.kind, from: e.from }, 'cluster notice handler failed');
    }
  }

  private async answer(e: Envelope): Promise<void> {
    const reply = (body: unknown, error?: Envelope['error']): Promise<void> =>
      this.send({
        id: randomUUID(),
        to: e.from,
        type: 'response',
        kind: e.kind,
        re: e.id,
        body: body ?? null,
        ...(error ? { error } : {}),
      }).catch((err: unknown) => this.opts.log.warn({ err, kind: e.kind, to: e.from }, 'cluster answer not sent'));
    const h = this.handlers.get(e.kind);
    if (!h) return reply(null, { code: 'INVALID_REQUEST', message: `no handler for ${e.kind.slice(0, 64)}` });
    if (!h.check.Check(e.body)) {
      this.refusals.invalid++;
      return reply(null, {
        code: 'INVALID_REQUEST',
        message: `bad body for ${e.kind}: ${firstError(h.check.Errors(e.body), h.check.Type()) ?? 'invalid'}`,
      });
    }
    try {
      return reply(await h.run(e.body, e.from));
    } catch (err) {
      const le = asLessoncastError(err);
      if (le.code === 'INTERNAL') this.opts.log.error({ err, kind: e.kind, from: e.from }, 'cluster request failed');
      return reply(null, { code: le.code, message: le.message, ...(le.details && le.code !== 'INTERNAL' ? { details: le.details } : {}) });
    }
  }
}

function isEnvelope(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    e['v'] === 1 &&
    typeof e['id'] === 'string' &&
    e['id'].length <= 64 &&
    typeof e['from'] === 'string' &&
    typeof e['to'] === 'string' &&
    typeof e['at'] === 'number' &&
    (e['type'] === 'request' || e['type'] === 'response' || e['type'] === 'notice') &&
    typeof e['kind'] === 'string' &&
    e['kind'].length <= 64 &&
    typeof e['mac'] === 'string' &&
    (e['re'] === undefined || typeof e['re'] === 'string') &&
    (e['error'] === undefined ||
      (typeof e['error'] === 'object' && e['error'] !== null && typeof (e['error'] as { code?: unknown }).code === 'string'))
  );
}
