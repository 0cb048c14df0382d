import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { REVOCATION_KINDS } from '../auth/revocations.js';
import type { TokenService } from '../auth/tokens.js';
import type { Devices } from '../catalog/devices.js';
import type { CatalogStore } from '../catalog/store.js';
import type { Device, Revocation } from '../catalog/types.js';
import { requirePermission, throttled } from './authGuard.js';
import { ID_PATTERN, timetableView } from './catalogRoutes.js';

const Id = Type.String({ pattern: ID_PATTERN });
const EnrolBody = Type.Object({ schoolId: Id, name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
const DeviceParams = Type.Object({ id: Id }, { additionalProperties: false });
const DeviceQuery = Type.Object({ schoolId: Type.Optional(Id) }, { additionalProperties: false });
const SessionBody = Type.Object({ credential: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
const RevokeBody = Type.Object(
  {
    kind: Type.Union(REVOCATION_KINDS.map((k) => Type.Literal(k))),
    subject: Type.String({ minLength: 1, maxLength: 128 }),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

const HOUR = 3600_000;
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const deviceView = (d: Device) => ({ ...d, createdAt: iso(d.createdAt), lastSeenAt: iso(d.lastSeenAt), revokedAt: iso(d.revokedAt) });

export interface DeviceRoutesDeps {
  catalog: CatalogStore;
  devices: Devices;
  tokens: TokenService;
  /** The URL users reach (the board's link starts with it). */
  publicUrl(): string;
  sessionTtlSeconds: number;
  revoke(r: Revocation): Promise<void>;
}

/** REST for boards (enrol, list, revoke, trade a credential for a session) and for revocations. */
export function registerDeviceRoutes(app: FastifyInstance, deps: DeviceRoutesDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { catalog, devices, tokens } = deps;
  const manage = requirePermission(tokens, 'catalog.manage');

  r.post(
    '/api/devices',
    { schema: { summary: "Enrol a school's board: its long-lived credential and link", body: EnrolBody }, preHandler: manage },
    async (req, reply) => {
      const { device, credential } = await devices.enrol(req.body.schoolId, req.body.name);
      req.log.info({ device: device.id, school: device.schoolId, by: req.principal!.id }, 'device enrolled');
      // The credential travels in the fragment: browsers never send it to a server, so no log holds it.
      const link = `${deps.publicUrl()}/classroom#device=${credential}`;
      return reply.status(201).send({ device: deviceView(device), credential, link });
    },
  );

  r.get('/api/devices', { schema: { summary: 'List enrolled boards', querystring: DeviceQuery }, preHandler: manage }, async (req) => ({
    devices: (await catalog.listDevices(req.query.schoolId)).map(deviceView),
  }));

  r.delete('/api/devices/:id', { schema: { summary: 'Revoke a board', params: DeviceParams }, preHandler: manage }, async (req) => {
    const device = await catalog.revokeDevice(req.params.id);
    await deps.revoke({ kind: 'device', subject: device.id, at: device.revokedAt!, reason: 'device revoked' });
    req.log.info({ device: device.id, by: req.principal!.id }, 'device revoked');
    return { device: deviceView(device) };
  });

  r.post(
    '/api/devices/session',
    { schema: { summary: "A board's short-lived session token, from its device credential", body: SessionBody } },
    async (req, reply) => {
      const { device, school } = await throttled(req, reply, () => devices.verify(req.body.credential));
      const now = Date.now();
      const lessons = await catalog.listLessons({
        schoolId: school.id,
        from: now - 12 * HOUR,
        to: now + 12 * HOUR,
        states: ['created', 'live'],
      });
      const minted = await tokens.mint({
        role: 'classroom',
        id: school.id,
        name: school.name,
        lessons: lessons.map((l) => l.id),
        ttlSeconds: deps.sessionTtlSeconds,
        device: device.id,
      });
      req.log.info({ device: device.id, school: school.id, lessons: lessons.length }, 'device session');
      return {
        token: minted.token,
        expiresAt: minted.expiresAt,
        school: { id: school.id, name: school.name },
        device: { id: device.id, name: device.name },
        lessons: lessons.map(timetableView),
      };
    },
  );

  r.post(
    '/api/revocations',
    { schema: { summary: 'Revoke a token, device, person or school', body: RevokeBody }, preHandler: manage },
    async (req, reply) => {
      const revocation: Revocation = { kind: req.body.kind, subject: req.body.subject, at: Date.now(), reason: req.body.reason ?? '' };
      await deps.revoke(revocation);
      req.log.info({ kind: revocation.kind, subject: revocation.subject, by: req.principal!.id }, 'revoked');
      return reply.status(201).send({ revocation: { ...revocation, at: iso(revocation.at) } });
    },
  );
}
