import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LessoncastError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    authThrottle: AuthThrottle;
  }
}

export interface AuthThrottleOptions {
  /** Failed authentications an address may make per window (auth.maxFailuresPerAddress). */
  maxFailures: number;
  windowSeconds: number;
  /** An attempt was refused (metrics). */
  onRefused(): void;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/** The address a request counts against: what @fastify/rate-limit keys by (IPv4, or the IPv6 /64). */
export const clientAddress = (req: FastifyRequest): string => normalizeIP(req.ip);

/**
 * Failed authentications per remote address, in @fastify/rate-limit's store. Only failures count
 * (a bad or expired bearer token, `authenticate` on a socket, an `?access=` key), and once an
 * address has used up its budget every attempt from it — right or wrong, REST or socket — is
 * refused with RATE_LIMITED until the window ends, without the credential being looked at:
 * refusing only the wrong ones would still tell a guesser which guess was right.
 */
export class AuthThrottle {
  private constructor(
    private readonly limiter: Limiter,
    private readonly onRefused: () => void,
  ) {}

  /** Registers @fastify/rate-limit (not on every route: only failures count) and decorates the app with the throttle. */
  static async register(app: FastifyInstance, opts: AuthThrottleOptions): Promise<AuthThrottle> {
    await app.register(rateLimit, { global: false });
    const throttle = new AuthThrottle(
      app.createRateLimit({ max: opts.maxFailures, timeWindow: opts.windowSeconds * 1000 }),
      opts.onRefused,
    );
    app.decorate('authThrottle', throttle);
    return throttle;
  }

  /** One authentication attempt of `req`'s address: refused while over budget; a bad credential is counted. */
  async attempt<T>(req: FastifyRequest, verify: () => Promise<T>): Promise<T> {
    const state = await this.limiter(req, { increment: false });
    if (!state.isAllowed && state.remaining === 0) {
      this.onRefused();
      const retryAfterSeconds = Math.max(1, state.ttlInSeconds);
      throw new LessoncastError('RATE_LIMITED', `too many failed authentications from this address; retry in ${retryAfterSeconds} s`, {
        limit: 'authFailures',
        retryAfterSeconds,
      });
    }
    try {
      return await verify();
    } catch (err) {
      if (err instanceof LessoncastError && (err.code === 'UNAUTHENTICATED' || err.code === 'TOKEN_EXPIRED')) await this.limiter(req);
      throw err;
    }
  }
}
