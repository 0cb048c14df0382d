/**
 * Tokens reach a page in the URL fragment (`#token=…&lesson=…`), which
 * browsers never send to the server, so tokens stay out of server and proxy
 * logs. The page moves them into sessionStorage (this tab only) and clears
 * the fragment from the address bar.
 */
import type { Role } from '../../../src/domain/index.js';

export interface TokenClaims {
  sub: string;
  role: Role;
  name: string;
  lessons: '*' | string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export interface Credentials {
  token: string;
  claims: TokenClaims;
  /** The lesson this page is about: from the fragment, else the token's only lesson. */
  lessonId?: string;
}

const key = (page: string, what: string) => `lessoncast.${page}.${what}`;

/** Reads (and stores) this page's token; undefined when the page was opened without one. */
export function takeCredentials(page: string): Credentials | undefined {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get('token');
  if (fromUrl) {
    sessionStorage.setItem(key(page, 'token'), fromUrl);
    const lesson = fragment.get('lesson');
    if (lesson) sessionStorage.setItem(key(page, 'lesson'), lesson);
    else sessionStorage.removeItem(key(page, 'lesson'));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const token = sessionStorage.getItem(key(page, 'token'));
  if (!token) return undefined;
  const claims = decodeClaims(token);
  if (!claims) return undefined;
  const lessonId =
    sessionStorage.getItem(key(page, 'lesson')) ??
    (Array.isArray(claims.lessons) && claims.lessons.length === 1 ? claims.lessons[0] : undefined);
  return { token, claims, ...(lessonId ? { lessonId } : {}) };
}

const DEVICE_KEY = 'lessoncast.classroom.device';

/**
 * A school board's long-lived device credential (`#device=lcd1.…`, from the admin page's enrol
 * link): kept in localStorage so the board finds it again after a restart, and cleared from the
 * address bar like a token. It is only ever sent in a request body (POST /api/devices/session).
 */
export function takeDeviceCredential(): string | undefined {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get('device');
  if (fromUrl) {
    localStorage.setItem(DEVICE_KEY, fromUrl);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return localStorage.getItem(DEVICE_KEY) ?? undefined;
}

export function forgetDeviceCredential(): void {
  localStorage.removeItem(DEVICE_KEY);
}

export function forgetCredentials(page: string): void {
  sessionStorage.removeItem(key(page, 'token'));
  sessionStorage.removeItem(key(page, 'lesson'));
}

/** The token's claims, for display only: the server verifies the signature on every use. */
export function decodeClaims(token: string): TokenClaims | undefined {
  try {
    const payload = token.split('.')[1];
    if (!payload) return undefined;
    const json = atob(
      payload
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(payload.length / 4) * 4, '='),
    );
    const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (ch) => ch.charCodeAt(0)))) as Partial<TokenClaims>;
    if (typeof c.sub !== 'string' || typeof c.role !== 'string') return undefined;
    return {
      sub: c.sub,
      role: c.role,
      name: typeof c.name === 'string' ? c.name : c.sub,
      lessons: c.lessons ?? [],
      exp: typeof c.exp === 'number' ? c.exp : 0,
    };
  } catch {
    return undefined;
  }
}

export function isExpired(claims: TokenClaims): boolean {
  return claims.exp > 0 && claims.exp * 1000 < Date.now();
}

/** A page link carrying a token in its fragment. */
export function pageLink(path: string, token: string, lessonId?: string): string {
  const fragment = new URLSearchParams();
  if (lessonId) fragment.set('lesson', lessonId);
  fragment.set('token', token);
  return `${location.origin}${path}#${fragment.toString()}`;
}
