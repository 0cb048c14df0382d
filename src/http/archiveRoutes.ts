import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { can, type Permission } from '../auth/permissions.js';
import type { AccessUse } from '../auth/recordingAccess.js';
import { mayAccessLesson, type Principal, type TokenService } from '../auth/tokens.js';
import { LessoncastError } from '../errors.js';
import type { Archive, RecordingSearch } from '../recording/archive.js';
import { MASTER_PLAYLIST, RECORDING_ID_PATTERN } from '../recording/manifest.js';
import type { OneWayStreams } from '../signalling/session.js';
import { bearerPrincipal, permitted, throttled } from './authGuard.js';
import { markPermission } from './openapi.js';

const RecordingParams = Type.Object({ id: Type.String({ pattern: RECORDING_ID_PATTERN }) }, { additionalProperties: false });
const FileParams = Type.Object(
  { id: Type.String({ pattern: RECORDING_ID_PATTERN }), '*': Type.String({ maxLength: 200 }) },
  { additionalProperties: false },
);
const DateParam = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?(Z|[+-]\\d{2}:?\\d{2})?)?$' });
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });
const ListQuery = Type.Object(
  {
    from: Type.Optional(DateParam),
    to: Type.Optional(DateParam),
    instructor: Type.Optional(Text(128)),
    school: Type.Optional(Text(128)),
    subject: Type.Optional(Text(100)),
    q: Type.Optional(Text(200)),
    limit: Type.Optional(Type.String({ pattern: '^(?:[1-9]\\d{0,2}|1000)$' })),
    offset: Type.Optional(Type.String({ pattern: '^\\d{1,7}$' })),
  },
  { additionalProperties: false },
);
const AccessQuery = Type.Object({ access: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })) }, { additionalProperties: false });
const DownloadQuery = Type.Object(
  {
    access: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    audio: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('mixed'), Type.Literal('tracks')])),
  },
  { additionalProperties: false },
);
const PinBody = Type.Object({ pinned: Type.Boolean() }, { additionalProperties: false });
const DeleteQuery = Type.Object({ reason: Type.Optional(Text(500)) }, { additionalProperties: false });

/**
 * Verifies the bearer token, checks the permission and, for one recording, that the token covers
 * that lesson. Where `accessKeyFor` (files, the MP4), a request without the header may show an
 * `?access=` capability for this recording and that use instead (RecordingAccess): never a bearer token.
 */
function requireRecordings(tokens: TokenService, permission: Permission, accessKeyFor?: AccessUse) {
  const check = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const id = (req.params as { id?: string } | undefined)?.id;
    const access = accessKeyFor && !req.headers.authorization ? (req.query as { access?: string } | undefined)?.access : undefined;
    req.principal =
      access && id && accessKeyFor
        ? await throttled(req, reply, () => tokens.recordingAccess.verify(access, id, accessKeyFor))
        : await bearerWith(req, reply, tokens, permission, id);
  };
  return markPermission(check, permission, accessKeyFor !== undefined);
}

async function bearerWith(
  req: FastifyRequest,
  reply: FastifyReply,
  tokens: TokenService,
  permission: Permission,
  recordingId: string | undefined,
): Promise<Principal> {
  const principal = permitted(await bearerPrincipal(req, reply, tokens), permission);
  if (recordingId && !mayAccessLesson(principal, recordingId))
    throw new LessoncastError('FORBIDDEN', 'your token does not cover this recording');
  return principal;
}

/** REST for the archive: search, details, files (with ranges), MP4 download, verify, pin, delete. */
export async function registerArchiveRoutes(app: FastifyInstance, deps: { archive: Archive; tokens: TokenService }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { archive, tokens } = deps;
  const read = requireRecordings(tokens, 'recordings.read');
  const readFilesWithLink = requireRecordings(tokens, 'recordings.read', 'files');
  const downloadWithLink = requireRecordings(tokens, 'recordings.read', 'download');
  const remove = requireRecordings(tokens, 'recordings.delete');

  r.get('/api/recordings', { schema: { summary: 'Search recordings', querystring: ListQuery }, preHandler: read }, async (req) => {
    const q = req.query;
    const who = req.principal!;
    const search: RecordingSearch = {
      ...(q.from ? { from: parseDate(q.from, 'from', false) } : {}),
      ...(q.to ? { to: parseDate(q.to, 'to', true) } : {}),
      ...(q.instructor ? { instructor: q.instructor } : {}),
      ...(q.school ? { school: q.school } : {}),
      ...(q.subject ? { subject: q.subject } : {}),
      ...(q.q ? { q: q.q } : {}),
      limit: q.limit ? Number(q.limit) : 100,
      offset: q.offset ? Number(q.offset) : 0,
    };
    // A token that lists lessons sees their recordings (a recording's id is its lesson's).
    return archive.list(search, who.role === 'admin' || who.lessons === '*' ? 'all' : who.lessons);
  });

  r.get(
    '/api/recordings/:id',
    { schema: { summary: 'One recording and its manifest', params: RecordingParams }, preHandler: read },
    async (req) => {
      const [summary, manifest] = await Promise.all([archive.summary(req.params.id), archive.manifest(req.params.id)]);
      return { recording: summary, manifest };
    },
  );

  // Files go through @fastify/static (ranges, ETag, 304), registered in a context of its own: its
  // reply.sendFile is decorated there with the archive's options, shadowing the web pages' one
  // (pre-compressed siblings, which recordings do not have) instead of clashing with it.
  await app.register(async (files) => {
    await files.register(fastifyStatic, { serve: false, preCompressed: false, cacheControl: false, contentType: false });
    files.withTypeProvider<TypeBoxTypeProvider>().get(
      '/api/recordings/:id/files/*',
      {
        schema: { summary: "A recording's playlist, init or segment file (byte ranges)", params: FileParams, querystring: AccessQuery },
        preHandler: readFilesWithLink,
        errorHandler: (err, req, reply) => sendRefusals(files, err, req, reply),
      },
      async (req, reply) => {
        const file = await archive.file(req.params.id, req.params['*']);
        const isPlaylist = file.path.endsWith('.m3u8');
        const access = req.query.access;
        if (isPlaylist && access && !req.headers.authorization) {
          // Opened through a link: carry the link's capability (good for this recording's files only) into the URIs, so that any player (Safari, VLC) can follow them.
          const text = withAccess(await readFile(file.path, 'utf8'), access);
          return reply.header('cache-control', 'no-store').type('application/vnd.apple.mpegurl').send(text);
        }
        // Our types and caching, not @fastify/send's (its mime table and `public, max-age`): these files are private.
        void reply
          .type(isPlaylist ? 'application/vnd.apple.mpegurl' : file.path.endsWith('.m4s') ? 'video/iso.segment' : 'video/mp4')
          // Playlists grow while the lesson is live; segments never change once listed.
          .header('cache-control', isPlaylist ? 'no-cache' : 'private, max-age=31536000, immutable')
          .header('accept-ranges', 'bytes');
        // archive.file() has checked the name and that it is a regular file inside the recording.
        return reply.sendFile(path.basename(file.path), path.dirname(file.path));
      },
    );
    files.withTypeProvider<TypeBoxTypeProvider>().get(
      '/api/recordings/:id/download.mp4',
      {
        schema: { summary: 'The recording as one progressive MP4', params: RecordingParams, querystring: DownloadQuery },
        preHandler: downloadWithLink,
        errorHandler: (err, req, reply) => sendRefusals(files, err, req, reply),
      },
      async (req, reply) => {
        const summary = await archive.summary(req.params.id);
        // A progressive MP4 (index first), made once and then served like any file: its length, byte ranges (seeking), ETag.
        const mp4 = await archive.mp4(req.params.id, { audio: req.query.audio ?? 'auto' });
        const name = `${summary.startedAt.slice(0, 10)}-${summary.title}`.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100);
        if (!req.headers.range)
          req.log.info(
            { recording: req.params.id, audio: mp4.audio, made: mp4.made, bytes: mp4.size, by: req.principal!.id },
            'recording download',
          );
        void reply
          .type('video/mp4')
          .header('content-disposition', `attachment; filename="${name}.mp4"`)
          .header('cache-control', 'private, no-cache')
          .header('accept-ranges', 'bytes')
          .header('x-lessoncast-audio', mp4.audio);
        return reply.sendFile(path.basename(mp4.path), path.dirname(mp4.path), { dotfiles: 'allow' });
      },
    );
  });

  r.post(
    '/api/recordings/:id/access',
    { schema: { summary: "A short-lived link capability for this recording's files", params: RecordingParams }, preHandler: read },
    async (req) => {
      await archive.summary(req.params.id);
      // A capability to read this one recording's files, whatever the caller's own role: not a token.
      return tokens.recordingAccess.mint(req.params.id, req.principal!);
    },
  );

  r.post(
    '/api/recordings/:id/verify',
    { schema: { summary: 'Recompute every file hash against the manifest', params: RecordingParams }, preHandler: read },
    async (req) => {
      const report = await archive.verify(req.params.id);
      if (!report.ok) req.log.warn({ recording: req.params.id, mismatches: report.mismatches.length }, 'recording failed verification');
      return report;
    },
  );

  r.post(
    '/api/recordings/:id/pin',
    { schema: { summary: 'Keep a recording from retention, or release it', params: RecordingParams, body: PinBody }, preHandler: read },
    async (req) => {
      const who = req.principal!;
      // Keeping a recording is harmless; releasing it to the retention policy is an admin's decision.
      if (!req.body.pinned && !can(who.role, 'recordings.delete'))
        throw new LessoncastError('FORBIDDEN', 'only an admin may unpin a recording');
      await archive.setPinned(req.params.id, req.body.pinned, { id: who.id, role: who.role });
      return { id: req.params.id, pinned: req.body.pinned };
    },
  );

  r.delete(
    '/api/recordings/:id',
    { schema: { summary: 'Delete a recording', params: RecordingParams, querystring: DeleteQuery }, preHandler: remove },
    async (req, reply) => {
      const who = req.principal!;
      await archive.delete(req.params.id, { id: who.id, role: who.role }, req.query.reason ?? '');
      req.log.info({ recording: req.params.id, by: who.id }, 'recording deleted');
      return reply.status(204).send();
    },
  );
}

/**
 * Links for one-way viewers (`oneWayStream`, docs/protocol.md): the live master playlist of a lesson
 * whose recorder runs, with a `live` capability (this recording's playlists and segments only) that
 * lives `ttlSeconds`; the page asks again at half-life.
 */
export function oneWayLinks(deps: {
  tokens: TokenService;
  isRecording(lessonId: string): boolean;
  ttlSeconds: number;
  segmentSeconds: number;
}): OneWayStreams {
  return {
    async link(lesson, by) {
      if (!lesson.recorded)
        throw new LessoncastError('NOT_RECORDING', 'this lesson is not recorded, so there is no live stream to fall back to', {
          reason: 'notRecorded',
        });
      if (!deps.isRecording(lesson.id))
        throw new LessoncastError('NOT_RECORDING', 'the recording of this lesson is not running', { reason: 'notRunning' });
      const { access, expiresAt } = await deps.tokens.recordingAccess.mint(lesson.id, by, 'live', deps.ttlSeconds);
      return {
        url: `/api/recordings/${encodeURIComponent(lesson.id)}/files/${MASTER_PLAYLIST}?access=${encodeURIComponent(access)}`,
        expiresAt,
        renewAfterSeconds: Math.floor(deps.ttlSeconds / 2),
        serverTime: new Date().toISOString(),
        segmentSeconds: deps.segmentSeconds,
      };
    },
  };
}

/** A playlist whose URIs (segment lines and URI="…" attributes) carry `?access=`. */
export function withAccess(playlist: string, access: string): string {
  const q = `access=${encodeURIComponent(access)}`;
  const add = (uri: string): string => `${uri}${uri.includes('?') ? '&' : '?'}${q}`;
  return playlist
    .split('\n')
    .map((line) =>
      line.startsWith('#') ? line.replace(/URI="([^"]+)"/g, (_m, uri: string) => `URI="${add(uri)}"`) : line.trim() ? add(line) : line,
    )
    .join('\n');
}

function parseDate(value: string, name: string, endOfDay: boolean): Date {
  // A bare date means the whole day: `to=2025-03-01` includes that day.
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T${endOfDay ? '23:59:59.999' : '00:00:00.000'}Z` : value;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new LessoncastError('INVALID_REQUEST', `${name} is not a valid date`);
  return date;
}

/**
 * @fastify/send refuses a request with an http-errors 412 or 416 (carrying Content-Range): ours to
 * answer as problem+json with our codes; anything else goes to the app's error handler as it is.
 */
function sendRefusals(
  app: FastifyInstance,
  err: FastifyError & { headers?: Record<string, string> },
  req: FastifyRequest,
  reply: FastifyReply,
): void {
  let e: unknown = err;
  if (!(err instanceof LessoncastError) && err.statusCode === 416) {
    const unsatisfied = err.headers?.['Content-Range'] ?? ''; // `bytes */<size>`
    void reply.header('content-range', unsatisfied);
    e = new LessoncastError('RANGE_NOT_SATISFIABLE', `the file has ${unsatisfied.split('/')[1] ?? '?'} bytes`);
  } else if (!(err instanceof LessoncastError) && err.statusCode === 412) {
    e = new LessoncastError('PRECONDITION_FAILED', 'the file does not match If-Match / If-Unmodified-Since');
  }
  app.errorHandler(e as FastifyError, req, reply);
}
