import { jwtVerify } from 'jose';
import { LessoncastError } from '../errors.js';
import { isRole, type Role } from '../domain/index.js';
import { ISSUER, checkLifetime, signJwt, tokenFailure } from './jwt.js';
import { RecordingAccess } from './recordingAccess.js';
import type { RevocationList } from './revocations.js';

/** Who a verified token speaks for. */
export interface Principal {
  /** User id (instructor, monitor, archivist, admin) or school id (classroom). */
  id: string;
  role: Role;
  name: string;
  /** Lessons this token may join or see; '*' = any. */
  lessons: '*' | string[];
  /** The token's id (`jti`); tokens minted before ids existed have none. */
  tokenId?: string;
  /** The enrolled board this session token was derived from (`dev`). */
  device?: string;
  /** When the token was issued (`iat`, seconds). */
  issuedAt?: number;
}

export interface MintRequest {
  id: string;
  role: Role;
  name?: string;
  lessons?: '*' | string[];
  ttlSeconds?: number;
  /** A board's session token: the device it was derived from (revoking the device refuses it). */
  device?: string;
}

const AUDIENCE = 'lessoncast';
/** auth.maxTokenTtlSeconds' default: the longest link the admin page hands out (30 days) fits. */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 31 * 24 * 3600;

/** HS256 JWTs through `jose`: mint and verify. Tokens are never logged. */
export class TokenService {
  /** `?access=` capabilities for recordings: never bearer tokens (see RecordingAccess). */
  readonly recordingAccess: RecordingAccess;

  constructor(
    private readonly secret: Uint8Array,
    private readonly defaultTtlSeconds: number,
    private readonly maxTtlSeconds = DEFAULT_MAX_TOKEN_TTL_SECONDS,
    /** Revoked tokens, devices, people and schools: refused with TOKEN_REVOKED. */
    private readonly revocations?: RevocationList,
  ) {
    this.recordingAccess = new RecordingAccess(secret);
  }

  async mint(req: MintRequest): Promise<{ token: string; expiresAt: string; tokenId: string }> {
    const ttl = req.ttlSeconds ?? this.defaultTtlSeconds;
    if (ttl > this.maxTtlSeconds)
      throw new LessoncastError('INVALID_REQUEST', `a token may live at most ${this.maxTtlSeconds} s (auth.maxTokenTtlSeconds)`);
    const { jwt, expiresAt, tokenId } = await signJwt(
      { role: req.role, name: req.name ?? req.id, lessons: req.lessons ?? [], ...(req.device ? { dev: req.device } : {}) },
      req.id,
      AUDIENCE,
      ttl,
      this.secret,
    );
    return { token: jwt, expiresAt, tokenId };
  }

  async verify(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, this.secret, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['iat', 'exp'],
      });
      checkLifetime(payload, this.maxTtlSeconds);
      const role = payload['role'];
      const lessons = payload['lessons'];
      if (typeof payload.sub !== 'string' || !payload.sub || !isRole(role)) {
        throw new LessoncastError('UNAUTHENTICATED', 'token lacks a subject or a known role');
      }
      const lessonList = lessons === '*' ? '*' : Array.isArray(lessons) && lessons.every((l) => typeof l === 'string') ? lessons : [];
      const principal: Principal = {
        id: payload.sub,
        role: role,
        name: typeof payload['name'] === 'string' ? payload['name'] : payload.sub,
        lessons: lessonList,
        ...(typeof payload.jti === 'string' ? { tokenId: payload.jti } : {}),
        ...(typeof payload['dev'] === 'string' ? { device: payload['dev'] } : {}),
        ...(typeof payload.iat === 'number' ? { issuedAt: payload.iat } : {}),
      };
      if (this.revocations?.refusing(principal)) throw new LessoncastError('TOKEN_REVOKED', 'this token was revoked');
      return principal;
    } catch (err) {
      throw tokenFailure(err, 'invalid token');
    }
  }
}

export function mayAccessLesson(p: Principal, lessonId: string): boolean {
  return p.role === 'admin' || p.lessons === '*' || p.lessons.includes(lessonId);
}
