import type { Role } from '../domain/index.js';

/** What a revocation names: one token (its jti), a device's sessions, a person's or a school's tokens. */
export const REVOCATION_KINDS = ['token', 'device', 'person', 'school'] as const;
export type RevocationKind = (typeof REVOCATION_KINDS)[number];

export interface RevocationEntry {
  kind: RevocationKind;
  subject: string;
  /** ms since the epoch; a person's or a school's tokens issued up to then are refused. */
  at: number;
}

/** What of a token a revocation can name. */
export interface TokenFacts {
  id: string;
  role: Role;
  tokenId?: string | undefined;
  device?: string | undefined;
  /** `iat`, seconds. */
  issuedAt?: number | undefined;
}

const key = (kind: RevocationKind, subject: string): string => `${kind}\u0000${subject}`;

/**
 * The revocations this node knows, in memory: every token check asks it without a database round
 * trip (and so goes on while the catalog is away). Filled from the catalog at start, and from the
 * live bus as any node revokes.
 */
export class RevocationList {
  private readonly entries = new Map<string, RevocationEntry>();

  get size(): number {
    return this.entries.size;
  }

  /** Adds one (a later time for the same subject wins). */
  add(r: RevocationEntry): void {
    const k = key(r.kind, r.subject);
    const had = this.entries.get(k);
    if (!had || had.at < r.at) this.entries.set(k, { kind: r.kind, subject: r.subject, at: r.at });
  }

  /** The revocation that refuses this token, if any. */
  refusing(t: TokenFacts): RevocationEntry | undefined {
    if (t.tokenId) {
      const byToken = this.entries.get(key('token', t.tokenId));
      if (byToken) return byToken;
    }
    if (t.device) {
      const byDevice = this.entries.get(key('device', t.device));
      if (byDevice) return byDevice;
    }
    const holder = this.entries.get(key(t.role === 'classroom' ? 'school' : 'person', t.id));
    // A token minted after the revocation (a reinstated person, a new board session) is not refused.
    if (holder && (t.issuedAt === undefined || t.issuedAt * 1000 <= holder.at)) return holder;
    return undefined;
  }
}
