import { Type } from 'typebox';
import type { Principal } from '../auth/tokens.js';
import { asLessoncastError, LessoncastError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Session, SessionRelay, SessionWire } from '../signalling/session.js';
import type { ParsedRequest } from '../signalling/validate.js';
import type { ClusterChannel } from './channel.js';

/**
 * Any node is a way in (docs/cluster.md, "Sessions"): a client connected to a node that is not
 * its lesson's origin keeps its WebSocket there. That node (the edge) authenticated it and checks
 * every frame; from its `join` on, it relays the client's requests to the origin, where a session
 * stands for the client and runs them against the lesson, and relays every message the origin
 * sends back to the client. The lesson's rules run in one place, whichever node the client chose.
 *
 *   edge → origin   session.open {sessionId, principal}        (request; the origin makes the session)
 *   edge → origin   session.request {sessionId, request}       (notice; answers come as messages)
 *   origin → edge   session.message {sessionId, message}       (notice; a response or notification, as text)
 *   origin → edge   session.end {sessionId, close?}            (notice; the origin let the session go)
 *   edge → origin   session.closed {sessionId}                 (notice; the client's socket closed)
 */

/** How long an origin has to take a relayed session. */
const OPEN_TIMEOUT_MS = 2000;
/**
 * How long an edge waits for the origin's answer to a relayed request before answering
 * CLUSTER_TIMEOUT itself: longer than any request takes at a live origin, shorter than the
 * pages' own 15 s, so that they hear of it and join again rather than wait it out.
 */
const RELAYED_ANSWER_MS = 12_000;

type RequestId = ParsedRequest['id'];
interface Outbound {
  session: Session;
  origin: string;
  pending: Map<RequestId, NodeJS.Timeout>;
}

/** The id of a response relayed as text (`{"kind":"response","id":…}`, as the origin writes it), or undefined for a notification. */
function responseId(message: string): RequestId | undefined {
  if (!message.startsWith('{"kind":"response"')) return undefined;
  try {
    return (JSON.parse(message) as { id: RequestId }).id;
  } catch {
    return undefined;
  }
}

const SessionId = Type.String({ minLength: 1, maxLength: 64 });
const PrincipalSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  role: Type.Union(['instructor', 'classroom', 'monitor', 'archivist', 'admin'].map((r) => Type.Literal(r))),
  name: Type.String({ maxLength: 256 }),
  lessons: Type.Union([Type.Literal('*'), Type.Array(Type.String({ maxLength: 128 }), { maxItems: 1000 })]),
  tokenId: Type.Optional(Type.String({ maxLength: 128 })),
  device: Type.Optional(Type.String({ maxLength: 128 })),
  issuedAt: Type.Optional(Type.Number()),
});
const Open = Type.Object({ sessionId: SessionId, principal: PrincipalSchema });
const Forwarded = Type.Object({
  sessionId: SessionId,
  request: Type.Object({
    id: Type.Union([Type.String({ maxLength: 64 }), Type.Number()]),
    method: Type.String({ maxLength: 64 }),
    data: Type.Unknown(),
  }),
});
const Message = Type.Object({ sessionId: SessionId, message: Type.String({ maxLength: 1 << 20 }) });
const End = Type.Object({
  sessionId: SessionId,
  /** The lesson moved to another origin: the edge asks its client to join again (reconnectRequested). */
  reconnect: Type.Optional(Type.String({ maxLength: 200 })),
  close: Type.Optional(Type.Object({ code: Type.Integer({ minimum: 1000, maximum: 4999 }), reason: Type.String({ maxLength: 123 }) })),
});
const Closed = Type.Object({ sessionId: SessionId });

export interface RelayDeps {
  channel: ClusterChannel;
  log: Logger;
  /** The origin's side: a session for a client of another node (SignallingHub.attachRelayed). */
  attachRelayed(wire: SessionWire, relayed: { id: string; principal: Principal }): Session;
  /** How long a relayed request may wait for the origin's answer (default RELAYED_ANSWER_MS; shorter in tests). */
  answerTimeoutMs?: number;
}

/** Both halves of the relay on one node: it is an edge for some lessons and the origin of others. */
export class SessionRelays {
  /**
   * Edge side: sessions of this node relayed to an origin, by session id, with the requests
   * forwarded and not answered yet (request id → its watchdog).
   */
  private readonly outbound = new Map<string, Outbound>();
  /** Origin side: sessions standing for clients of other nodes, by "<node>/<session id>". */
  private readonly inbound = new Map<string, { session: Session; node: string }>();

  constructor(private readonly deps: RelayDeps) {
    const { channel } = deps;
    // -- origin side
    channel.handle('session.open', Open, (body, from) => {
      this.openInbound(body.sessionId, from, body.principal);
      return {};
    });
    channel.onNotice('session.request', Forwarded, (body, from) => {
      const entry = this.inbound.get(`${from}/${body.sessionId}`);
      if (!entry)
        return void this.endOn(from, body.sessionId, { reconnect: 'the lesson is no longer hosted where this session was; join again' });
      entry.session.handle(body.request as ParsedRequest);
    });
    channel.onNotice('session.closed', Closed, (body, from) => {
      const key = `${from}/${body.sessionId}`;
      const entry = this.inbound.get(key);
      this.inbound.delete(key);
      entry?.session.closedByPeer();
    });
    // -- edge side
    channel.onNotice('session.message', Message, (body, from) => {
      const entry = this.outbound.get(body.sessionId);
      if (entry?.origin !== from) return;
      const answered = responseId(body.message);
      if (answered !== undefined) {
        const watchdog = entry.pending.get(answered);
        // Already answered for the origin (it took too long, or it was gone): the client has its error.
        if (!watchdog) return;
        clearTimeout(watchdog);
        entry.pending.delete(answered);
      }
      entry.session.deliver(body.message);
    });
    channel.onNotice('session.end', End, (body, from) => {
      const entry = this.outbound.get(body.sessionId);
      if (entry?.origin !== from) return;
      this.drop(body.sessionId, entry, 'the lesson is no longer hosted where this session was; join again');
      if (body.reconnect !== undefined) entry.session.notify('reconnectRequested', { reason: body.reconnect });
      if (body.close) entry.session.close(body.close.code, body.close.reason);
    });
  }

  /** Edge side: relays `session`'s lesson requests to `origin` from now on. */
  async relay(session: Session, origin: string): Promise<SessionRelay> {
    const principal = session.principal;
    if (!principal) throw new LessoncastError('UNAUTHENTICATED', 'authenticate first');
    // Short: a node that does not answer this is likely gone, and the caller looks again.
    await this.deps.channel.request(origin, 'session.open', { sessionId: session.id, principal }, OPEN_TIMEOUT_MS);
    const entry: Outbound = { session, origin, pending: new Map() };
    this.outbound.set(session.id, entry);
    const { channel } = this.deps;
    const fail = (id: RequestId, err: LessoncastError): void => {
      if (!entry.pending.delete(id)) return;
      session.replyTo(id, err);
    };
    return {
      forward: (request) => {
        const id = request.id;
        // Answered by the origin, or else with an error in time for the client to try again (the
        // pages give up on a request after 15 s): an origin that died mid-request never answers.
        clearTimeout(entry.pending.get(id));
        const watchdog = setTimeout(
          () => fail(id, new LessoncastError('CLUSTER_TIMEOUT', `node ${origin} did not answer ${request.method}`, { node: origin })),
          this.deps.answerTimeoutMs ?? RELAYED_ANSWER_MS,
        );
        watchdog.unref();
        entry.pending.set(id, watchdog);
        void channel.notify(origin, 'session.request', { sessionId: session.id, request }).catch((err: unknown) => {
          clearTimeout(watchdog);
          fail(id, asLessoncastError(err));
        });
      },
      closed: () => {
        for (const watchdog of entry.pending.values()) clearTimeout(watchdog);
        entry.pending.clear();
        this.outbound.delete(session.id);
        void channel.notify(origin, 'session.closed', { sessionId: session.id }).catch(() => undefined);
      },
    };
  }

  /** Origin side: the node a session is relayed from, or null for a client connected here. */
  nodeOf(sessionId: string): string | null {
    for (const entry of this.inbound.values()) if (entry.session.id === sessionId) return entry.node;
    return null;
  }

  /** Origin side: forgets a node's sessions as if their sockets closed (the node died). */
  nodeLost(node: string): void {
    for (const [key, entry] of [...this.inbound]) {
      if (entry.node !== node) continue;
      this.inbound.delete(key);
      entry.session.closedByPeer();
    }
    for (const [id, entry] of [...this.outbound]) {
      if (entry.origin !== node) continue;
      this.drop(id, entry, 'the server hosting the lesson is gone; join again');
      // The client keeps its connection and joins again: that join finds (or places) the new origin.
      entry.session.notify('reconnectRequested', { reason: 'the server hosting the lesson is gone; join again' });
    }
  }

  /** Edge side: a session no longer relayed; what it still waited for from the origin is answered with an error. */
  private drop(sessionId: string, entry: Outbound, why: string): void {
    this.outbound.delete(sessionId);
    entry.session.unrelay();
    for (const [id, watchdog] of entry.pending) {
      clearTimeout(watchdog);
      entry.session.replyTo(id, new LessoncastError('UNAVAILABLE', why));
    }
    entry.pending.clear();
  }

  private openInbound(sessionId: string, node: string, principal: Principal): void {
    const key = `${node}/${sessionId}`;
    this.inbound.get(key)?.session.closedByPeer();
    const wire: SessionWire = {
      send: (msg) => {
        void this.deps.channel
          .notify(node, 'session.message', { sessionId, message: typeof msg === 'string' ? msg : JSON.stringify(msg) })
          .catch(() => undefined);
        return true;
      },
      replyError: (id, err) => {
        const e = asLessoncastError(err);
        if (e.code === 'INTERNAL') this.deps.log.error({ session: sessionId, err: e.details?.['cause'] }, 'relayed request failed');
        const details = e.code === 'INTERNAL' ? undefined : e.details;
        wire.send({ kind: 'response', id, ok: false, error: { code: e.code, message: e.message, ...(details ? { details } : {}) } });
        return e;
      },
      close: (code = 1000, reason = '') => {
        if (this.inbound.get(key)?.session !== session) return;
        this.inbound.delete(key);
        this.endOn(node, sessionId, { close: { code, reason } });
        session.closedByPeer();
      },
      handOver: (reason) => {
        if (this.inbound.get(key)?.session !== session) return;
        this.inbound.delete(key);
        this.endOn(node, sessionId, { reconnect: reason });
        session.closedByPeer();
      },
      release: () => {
        if (this.inbound.get(key)?.session !== session) return;
        this.inbound.delete(key);
        this.endOn(node, sessionId, {});
        session.closedByPeer();
      },
    };
    const session = this.deps.attachRelayed(wire, { id: sessionId, principal });
    this.inbound.set(key, { session, node });
  }

  private endOn(node: string, sessionId: string, how: { close?: { code: number; reason: string }; reconnect?: string }): void {
    void this.deps.channel.notify(node, 'session.end', { sessionId, ...how }).catch(() => undefined);
  }
}
