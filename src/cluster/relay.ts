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
}

/** Both halves of the relay on one node: it is an edge for some lessons and the origin of others. */
export class SessionRelays {
  /** Edge side: sessions of this node relayed to an origin, by session id. */
  private readonly outbound = new Map<string, { session: Session; origin: string }>();
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
      if (entry?.origin === from) entry.session.deliver(body.message);
    });
    channel.onNotice('session.end', End, (body, from) => {
      const entry = this.outbound.get(body.sessionId);
      if (entry?.origin !== from) return;
      this.outbound.delete(body.sessionId);
      entry.session.unrelay();
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
    this.outbound.set(session.id, { session, origin });
    const { channel } = this.deps;
    return {
      forward: (request) =>
        void channel.notify(origin, 'session.request', { sessionId: session.id, request }).catch((err: unknown) => {
          session.replyTo(request.id, asLessoncastError(err));
        }),
      closed: () => {
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
      this.outbound.delete(id);
      entry.session.unrelay();
      // The client keeps its connection and joins again: that join finds (or places) the new origin.
      entry.session.notify('reconnectRequested', { reason: 'the server hosting the lesson is gone; join again' });
    }
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
