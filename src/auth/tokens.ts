import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { LessoncastError } from '../errors.js';
import type { Role } from '../signalling/protocol.js';

export const ROLES: readonly Role[] = ['instructor', 'classroom', 'monitor', 'archivist', 'admin'];

/** Who a verified token speaks for. */
export interface Principal {
  /** User id (instructor, monitor, archivist, admin) or school id (classroom). */
  id: string;
  role: Role;
  name: string;
  /** Lessons this token may join or see; '*' = any. */
  lessons: '*' | string[];
}

export interface MintRequest {
  id: string;
  role: Role;
  name?: string;
  lessons?: '*' | string[];
  ttlSeconds?: number;
}

const ISSUER = 'lessoncast';
const AUDIENCE = 'lessoncast';

/** HS256 JWTs through `jose`: mint and verify. Tokens are never logged. */
export class TokenService {
  constructor(
    private readonly secret: Uint8Array,
    private readonly defaultTtlSeconds: number,
  ) {}

  async mint(req: MintRequest): Promise<{ token: string; expiresAt: string }> {
    const ttl = req.ttlSeconds ?? this.defaultTtlSeconds;
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const token = await new SignJWT({ role: req.role, name: req.name ?? req.id, lessons: req.lessons ?? [] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(req.id)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(this.secret);
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  async verify(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      const role = payload['role'];
      const lessons = payload['lessons'];
      if (typeof payload.sub !== 'string' || !payload.sub || !ROLES.includes(role as Role)) {
        throw new LessoncastError('UNAUTHENTICATED', 'token lacks a subject or a known role');
      }
      const lessonList = lessons === '*' ? '*' : Array.isArray(lessons) && lessons.every((l) => typeof l === 'string') ? (lessons as string[]) : [];
      return { id: payload.sub, role: role as Role, name: typeof payload['name'] === 'string' ? payload['name'] : payload.sub, lessons: lessonList };
    } catch (err) {
      if (err instanceof LessoncastError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new LessoncastError('TOKEN_EXPIRED', 'token expired');
      throw new LessoncastError('UNAUTHENTICATED', 'invalid token');
    }
  }
}

export function mayAccessLesson(p: Principal, lessonId: string): boolean {
  return p.role === 'admin' || p.lessons === '*' || p.lessons.includes(lessonId);
}
