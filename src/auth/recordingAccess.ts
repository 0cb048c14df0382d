import { hkdfSync } from 'node:crypto';
import { jwtVerify } from 'jose';
import { LessoncastError } from '../errors.js';
import { ISSUER, checkLifetime, signJwt, tokenFailure } from './jwt.js';
import type { Principal } from './tokens.js';

/** Lifetime of a `?access=` capability from `POST /api/recordings/:id/access`. */
export const RECORDING_ACCESS_TTL_SECONDS = 600;
/** The longest a one-way viewer's capability may live (config recording.oneWayAccessSeconds is at most this). */
export const MAX_ONE_WAY_ACCESS_SECONDS = 3600;
const AUDIENCE = 'lessoncast:recording-files';
/**
 * What a capability lets its holder read: `files` the recording's playlists and segments and its
 * MP4 (archive links); `live` only its playlists and segments (a classroom's one-way mode: no
 * MP4 export, which costs the server an ffmpeg).
 */
export type AccessScope = 'files' | 'live';
const SCOPES: Record<AccessScope, string> = { files: 'recording.files', live: 'recording.live' };
/** What a request reads: `files` under /files/*, `download` the MP4. */
export type AccessUse = 'files' | 'download';

/**
 * Capabilities for `?access=` links (a `<video src>`, Safari's HLS, VLC, a download link: what
 * cannot send an Authorization header). One names one recording and lets only its files (and,
 * scope `files`, its MP4) be read, for a few minutes. It is signed with a key derived from the
 * token secret for this use alone, so a capability never verifies as a bearer token and a bearer
 * token never as a capability: a link that leaks (players write it into every URI) leaks no more
 * than itself.
 */
export class RecordingAccess {
  private readonly key: Uint8Array;

  constructor(secret: Uint8Array) {
    this.key = new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'lessoncast recording access v1', 32));
  }

  /** A capability for `by` (who asked, for the logs) to read one recording's files. */
  async mint(
    recordingId: string,
    by: Principal,
    scope: AccessScope = 'files',
    ttlSeconds = RECORDING_ACCESS_TTL_SECONDS,
  ): Promise<{ access: string; expiresAt: string }> {
    const { jwt, expiresAt } = await signJwt(
      { rec: recordingId, scope: SCOPES[scope], name: by.name },
      by.id,
      AUDIENCE,
      ttlSeconds,
      this.key,
    );
    return { access: jwt, expiresAt };
  }

  /** Who may read `recordingId`'s files (`use`) through this capability; FORBIDDEN for another recording or a use its scope lacks. */
  async verify(access: string, recordingId: string, use: AccessUse = 'files'): Promise<Principal> {
    let payload;
    try {
      ({ payload } = await jwtVerify(access, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        requiredClaims: ['iat', 'exp', 'sub'],
      }));
      const scope = payload['scope'];
      if (scope !== SCOPES.files && scope !== SCOPES.live) throw new LessoncastError('UNAUTHENTICATED', 'not a recording access key');
      checkLifetime(payload, scope === SCOPES.live ? MAX_ONE_WAY_ACCESS_SECONDS : RECORDING_ACCESS_TTL_SECONDS);
    } catch (err) {
      throw tokenFailure(err, 'invalid access key');
    }
    if (payload['rec'] !== recordingId) throw new LessoncastError('FORBIDDEN', 'this access key is for another recording');
    if (use === 'download' && payload['scope'] !== SCOPES.files)
      throw new LessoncastError('FORBIDDEN', "this access key is for watching the live lesson, not for the recording's MP4");
    const by = payload.sub!;
    return { id: by, role: 'archivist', name: typeof payload['name'] === 'string' ? payload['name'] : by, lessons: [recordingId] };
  }
}
