import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/tokens.js';

/** Close codes of the door (docs/protocol.md). */
export const CLOSE_AUTH_TIMEOUT = 4408;
export const CLOSE_TOO_MANY_UNAUTHENTICATED = 4429;
/** The connection's token was revoked (TOKEN_REVOKED): a reconnect with it is refused too. */
export const CLOSE_REVOKED = 4401;

/** What one socket's session needs from the door it came through. */
export interface SocketGate {
  /** Verifies a token for this client, within its address's failure budget (RATE_LIMITED past it). */
  verify(token: string): Promise<Principal>;
  /** The client authenticated: its clock stops and it no longer counts against its address. */
  authenticated(): void;
}

export interface AdmissionOptions {
  authTimeoutMs: number;
  maxUnauthenticatedPerAddress: number;
  /** The address a request counts against (the auth throttle's key). */
  addressOf(req: FastifyRequest): string;
  /** Verifies a token on behalf of a request (the auth throttle). */
  verify(req: FastifyRequest, token: string): Promise<Principal>;
  /** A socket was turned away for its address's unauthenticated ones (metrics). */
  onRefused(): void;
}

/**
 * The door of every WebSocket endpoint (/ws, /api/live/feed). A socket must authenticate within
 * authTimeoutMs, else it is closed (4408): the server's own pings would otherwise keep an idle
 * one alive for ever. An address may hold at most maxUnauthenticatedPerAddress sockets that have
 * not authenticated yet; one more is closed at once (4429).
 */
export class SocketAdmission {
  private readonly waiting = new Map<string, number>();

  constructor(private readonly opts: AdmissionOptions) {}

  /** Unauthenticated sockets open now, all addresses together. */
  get waitingCount(): number {
    let n = 0;
    for (const c of this.waiting.values()) n += c;
    return n;
  }

  /** A WebSocket route handler: the socket goes through the door, then to `attach` unless turned away. */
  handler(attach: (socket: WebSocket, gate: SocketGate) => void): (socket: WebSocket, req: FastifyRequest) => void {
    return (socket, req) => {
      const gate = this.admit(socket, req);
      if (gate) attach(socket, gate);
    };
  }

  /** The gate for a new socket, or undefined when it was turned away (and closed). */
  admit(socket: WebSocket, req: FastifyRequest): SocketGate | undefined {
    const address = this.opts.addressOf(req);
    const count = this.waiting.get(address) ?? 0;
    if (count >= this.opts.maxUnauthenticatedPerAddress) {
      this.opts.onRefused();
      socket.close(CLOSE_TOO_MANY_UNAUTHENTICATED, 'too many unauthenticated connections from this address');
      return undefined;
    }
    this.waiting.set(address, count + 1);
    const timer = setTimeout(() => socket.close(CLOSE_AUTH_TIMEOUT, 'authenticate first'), this.opts.authTimeoutMs);
    timer.unref();
    let open = true;
    const leave = (): void => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      const left = (this.waiting.get(address) ?? 1) - 1;
      if (left > 0) this.waiting.set(address, left);
      else this.waiting.delete(address);
    };
    socket.once('close', leave);
    return { verify: (token) => this.opts.verify(req, token), authenticated: leave };
  }
}
