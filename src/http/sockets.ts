import type { FastifyInstance } from 'fastify';
import type { Principal, TokenService } from '../auth/tokens.js';
import type { ErrorCode } from '../errors.js';
import type { LessonRegistry } from '../lessons/registry.js';
import type { LiveState } from '../live/liveState.js';
import type { Logger } from '../logger.js';
import { SocketAdmission } from '../signalling/admission.js';
import { SignallingHub, type HubDeps } from '../signalling/hub.js';
import type { OneWayStreams } from '../signalling/session.js';
import { LiveFeed } from '../signalling/liveFeed.js';
import { clientAddress } from './authThrottle.js';
import { verifyToken } from './authGuard.js';

export interface SocketEndpointsOptions {
  registry: LessonRegistry;
  live: LiveState;
  tokens: TokenService;
  log: Logger;
  maxMessageBytes: number;
  authTimeoutSeconds: number;
  maxUnauthenticatedPerAddress: number;
  /** ICE servers (TURN credentials) and transport policy per joining participant. */
  iceFor: HubDeps['iceFor'];
  /** Metrics: a limit refused someone, a join's outcome, a frame refused as the client's mistake. */
  countRefusal(limit: string): void;
  countJoin(ok: boolean, code?: string): void;
  countFrame(code: ErrorCode): void;
  /** Live HLS links for one-way viewers (`oneWayStream`). */
  oneWay?: OneWayStreams;
  /** Many nodes (src/cluster/): where lessons live, and where a joining session's media is made. */
  cluster?: Pick<HubDeps, 'locate' | 'placeMedia'>;
}

/** What the composition root holds of the WebSocket endpoints: counts for the metrics, and their shutdown. */
export interface SocketEndpoints {
  readonly feed: { readonly clientCount: number; readonly droppedCount: number };
  /** Shutdown, first step: refuse joins, tell every client, close their sockets. */
  drain(reason: string): void;
  /** Shutdown, last step: the feed stops listening to the live state. */
  close(): void;
  /** Closes every connection (signalling and feed) whose token `refused` names; returns how many. */
  revoke(refused: (p: Principal) => boolean): number;
  /** A session for a client another node relays here (src/cluster/relay.ts). */
  attachRelayed: SignallingHub['attachRelayed'];
}

/**
 * The two WebSocket endpoints, `/ws` (signalling) and `/api/live/feed` (the control room), behind
 * one door: the authentication clock, unauthenticated sockets per address, throttled tokens.
 */
export function registerSocketEndpoints(app: FastifyInstance, o: SocketEndpointsOptions): SocketEndpoints {
  const admission = new SocketAdmission({
    authTimeoutMs: o.authTimeoutSeconds * 1000,
    maxUnauthenticatedPerAddress: o.maxUnauthenticatedPerAddress,
    addressOf: clientAddress,
    verify: (req, token) => verifyToken(req, o.tokens, token),
    onRefused: () => o.countRefusal('unauthenticatedSockets'),
  });
  const hub = new SignallingHub({
    admission,
    registry: o.registry,
    log: o.log,
    maxMessageBytes: o.maxMessageBytes,
    iceFor: o.iceFor,
    onJoinOutcome: (ok, code) => o.countJoin(ok, code),
    countFrame: (code) => o.countFrame(code),
    ...(o.oneWay ? { oneWay: o.oneWay } : {}),
    ...(o.cluster?.locate ? { locate: o.cluster.locate } : {}),
    ...(o.cluster?.placeMedia ? { placeMedia: o.cluster.placeMedia } : {}),
  });
  const feed = new LiveFeed({ live: o.live, log: o.log, maxMessageBytes: o.maxMessageBytes, countFrame: (code) => o.countFrame(code) });
  hub.register(app);
  feed.register(app, admission);
  return {
    feed,
    drain: (reason) => hub.drain(reason),
    close: () => feed.close(),
    revoke: (refused) => hub.revoke(refused) + feed.revoke(refused),
    attachRelayed: (wire, relayed) => hub.attachRelayed(wire, relayed),
  };
}
