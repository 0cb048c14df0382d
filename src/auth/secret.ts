import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The token-signing secret: the configured one, or one generated once into
 * `secretFile` (mode 0600) so the embedded default works without set-up and
 * tokens minted by the CLI stay valid across restarts.
 */
export function resolveTokenSecret(configured: string, secretFile: string): Uint8Array {
  if (configured) return new TextEncoder().encode(configured);
  const file = path.resolve(secretFile);
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, randomBytes(48).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 32) throw new Error(`token secret in ${file} is shorter than 32 characters`);
  return new TextEncoder().encode(secret);
}
