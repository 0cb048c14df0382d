import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, type JWTPayload } from 'jose';
import { LessoncastError } from '../errors.js';

/** Issuer of every JWT lessoncast signs (bearer tokens and access capabilities alike). */
export const ISSUER = 'lessoncast';

/** An HS256 JWT of ours for `subject` and `audience`, living `ttlSeconds` from now, with its own id (`jti`, for revocation). */
export async function signJwt(
  claims: JWTPayload,
  subject: string,
  audience: string,
  ttlSeconds: number,
  key: Uint8Array,
): Promise<{ jwt: string; expiresAt: string; tokenId: string }> {
  const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
  const tokenId = randomUUID();
  const jwt = await new SignJWT(claims)
    .setJti(tokenId)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(subject)
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);
  return { jwt, expiresAt: new Date(exp * 1000).toISOString(), tokenId };
}

/** A failed verification as our error: ours as they are, jose's expiry as TOKEN_EXPIRED, anything else as `invalid`. */
export function tokenFailure(err: unknown, invalid: string): LessoncastError {
  if (err instanceof LessoncastError) return err;
  if (err instanceof joseErrors.JWTExpired) return new LessoncastError('TOKEN_EXPIRED', 'token expired');
  return new LessoncastError('UNAUTHENTICATED', invalid);
}

/**
 * Neither a token's whole life (exp - iat) nor what is left of it (exp - now) may exceed
 * `maxSeconds`: a leaked or hand-made token signed with the real secret cannot live for ever.
 */
export function checkLifetime(payload: JWTPayload, maxSeconds: number): void {
  const { iat, exp } = payload;
  const now = Math.floor(Date.now() / 1000);
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > maxSeconds || exp - now > maxSeconds) {
    throw new LessoncastError('UNAUTHENTICATED', `token lifetime exceeds ${maxSeconds} s`);
  }
}
