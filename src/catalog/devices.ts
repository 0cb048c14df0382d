import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { LessoncastError } from '../errors.js';
import type { CatalogStore } from './store.js';
import type { Device, School } from './types.js';

/** Device credentials look like `lcd1.<device id>.<secret>`; only the secret's SHA-256 is stored. */
const PREFIX = 'lcd1';
const CREDENTIAL = /^lcd1\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;

const hashOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/**
 * School boards enrolled as devices. A device holds one long-lived credential (shown once, as a
 * link); it trades it for short-lived session tokens, so a leaked page URL expires by itself.
 * Revoking the device refuses the credential and every session derived from it.
 */
export class Devices {
  constructor(private readonly store: CatalogStore) {}

  /** Enrols a board of a school (SCHOOL_NOT_FOUND when unknown or deleted); the credential is returned here only. */
  async enrol(schoolId: string, name: string, now = Date.now()): Promise<{ device: Device; credential: string }> {
    await this.store.schools.get(schoolId);
    const device: Device = { id: uuidv7(), schoolId, name, createdAt: now, lastSeenAt: null, revokedAt: null };
    const secret = randomBytes(32).toString('base64url');
    await this.store.addDevice(device, hashOf(secret));
    return { device, credential: `${PREFIX}.${device.id}.${secret}` };
  }

  /**
   * The device and its school a credential speaks for: UNAUTHENTICATED when it is not one,
   * TOKEN_REVOKED when the device is revoked or its school deleted.
   */
  async verify(credential: string): Promise<{ device: Device; school: School }> {
    const m = CREDENTIAL.exec(credential);
    const found = m ? await this.store.deviceWithCredential(m[1]!) : undefined;
    const given = Buffer.from(hashOf(m?.[2] ?? ''), 'hex');
    const stored = Buffer.from(found?.credentialHash ?? '0'.repeat(64), 'hex');
    if (!found || given.length !== stored.length || !timingSafeEqual(given, stored))
      throw new LessoncastError('UNAUTHENTICATED', 'not a device credential of this region');
    if (found.device.revokedAt !== null) throw new LessoncastError('TOKEN_REVOKED', 'this device was revoked');
    const school = await this.store.schools.find(found.device.schoolId);
    if (!school || school.deletedAt !== null) throw new LessoncastError('TOKEN_REVOKED', "this device's school was deleted");
    await this.store.touchDevice(found.device.id);
    return { device: found.device, school };
  }
}
