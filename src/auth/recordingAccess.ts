import { hkdfSync } from 'node:crypto';
import { jwtVerify } from 'jose';
import { LessoncastError } from '../errors.js';
import { ISSUER, checkLifetime, signJwt, tokenFailure } from './jwt.js';
import type { Principal } from './tokens.js';

/** Lifetime of a `?access=` capability. */
export const RECORDING_ACCESS_TTL_SECONDS = 600;
const AUDIENCE = 'lessoncast:recording-files';
const SCOPE = 'recording.files';

/**
 * Capabilities for `?access=` links (a `<video src>`, Safari's HLS, VLC, a download link: what
 * cannot send an Authorization header). One names one recording and lets only its files and its
 * MP4 be read, for ten minutes. It is signed with a key derived from the token secret for this
 * use alone, so a capability never verifies as a bearer token and a bearer token never as a
 * capability: a link that leaks (players write it into every URI) leaks no more than itself.
 */
export class RecordingAccess {
  private readonly key: Uint8Array;

  constructor(secret: Uint8Array) {
    this.key = new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'lessoncast recording access v1', 32));
  }

  /** A capability for `by` (who asked, for the logs) to read one recording's files. */
  async mint(recordingId: string, by: Principal): Promise<{ access: string; expiresAt: string }> {
    const { jwt, expiresAt } = await signJwt(
      { rec: recordingId, scope: SCOPE, name: by.name },
      by.id,
      AUDIENCE,
      RECORDING_ACCESS_TTL_SECONDS,
      this.key,
    );
    return { access: jwt, expiresAt };
  }

  /** Who may read `recordingId`'s files through this capability; FORBIDDEN for another recording. */
  async verify(access: string, recordingId: string): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(access, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['iat', 'exp', 'sub'],
      }));
      checkLifetime(payload, RECORDING_ACCESS_TTL_SECONDS);
      if (payload['scope'] !== SCOPE) throw new LessoncastError('UNAUTHENTICATED', 'not a recording access key');
    } catch (err) {
      throw tokenFailure(err, 'invalid access key');
    }
    if (payload['rec'] !== recordingId) throw new LessoncastError('FORBIDDEN', 'this access key is for another recording');
    const by = payload.sub!;
    return { id: by, role: 'archivist', name: typeof payload['name'] === 'string' ? payload['name'] : by, lessons: [recordingId] };
  }
}
