/**
 * Time-limited TURN credentials in the TURN REST scheme coturn implements with
 * `use-auth-secret` + `static-auth-secret`: username `<expiry unix seconds>:<user>`,
 * password base64(HMAC-SHA1(secret, username)). coturn recomputes the password from the
 * username and refuses it once the expiry has passed; nothing is stored on either side.
 */
import { createHmac } from 'node:crypto';
import type { Role } from '../domain/index.js';

export interface TurnCredential {
  username: string;
  credential: string;
  /** Unix seconds after which coturn refuses the credential (and refreshes of allocations made with it). */
  expiresAt: number;
}

/** One entry of RTCConfiguration.iceServers, as the join response carries it. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

export type IceTransportPolicy = 'all' | 'relay';

/** What a participant's pages hand to mediasoup-client's createSendTransport / createRecvTransport. */
export interface IceSettings {
  iceServers: IceServer[];
  iceTransportPolicy: IceTransportPolicy;
}

export interface TurnSettings {
  /** [] = no TURN: no iceServers, and every policy is 'all'. */
  urls: readonly string[];
  secret: string;
  credentialTtlSeconds: number;
  /** Principal ids of classrooms that must use iceTransportPolicy 'relay'. */
  relaySchools: readonly string[];
}

/** The credential for `user`, valid for `ttlSeconds` from `nowMs`. */
export function turnCredential(secret: string, user: string, ttlSeconds: number, nowMs: number = Date.now()): TurnCredential {
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${user}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64'), expiresAt };
}

/** Hands each joining participant its ICE servers and transport policy. */
export class TurnIssuer {
  private readonly relay: ReadonlySet<string>;

  constructor(
    private readonly settings: TurnSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.relay = new Set(settings.relaySchools);
  }

  get enabled(): boolean {
    return this.settings.urls.length > 0;
  }

  /** Fresh credentials on every call: every join (and rejoin) renews them. */
  iceFor(participant: { id: string; role: Role }): IceSettings {
    if (!this.enabled) return { iceServers: [], iceTransportPolicy: 'all' };
    const { username, credential } = turnCredential(this.settings.secret, participant.id, this.settings.credentialTtlSeconds, this.now());
    return {
      iceServers: [{ urls: [...this.settings.urls], username, credential }],
      iceTransportPolicy: participant.role === 'classroom' && this.relay.has(participant.id) ? 'relay' : 'all',
    };
  }
}
