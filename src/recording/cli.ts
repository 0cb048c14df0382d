import { stringOptions } from '../cliArgs.js';
import type { Logger } from '../logger.js';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { Archive, type ExportAudio, type RecordingIndexPort, type RecordingSearch } from './archive.js';
import { locateFfmpeg } from './ffmpeg.js';

export const RECORDINGS_USAGE = `  lessoncast recordings list [--from <date>] [--to <date>] [--instructor <id>] [--school <id>]
                             [--subject <s>] [--q <text>] [--limit <n>] [--json]
  lessoncast recordings verify <recordingId>... | --all     (exit 1 if anything does not match)
  lessoncast recordings export <recordingId> --out <file.mp4> [--audio auto|mixed|tracks]
  lessoncast recordings reindex     (rebuild the catalog's archive index from every manifest)
      Work on the recordings folder of the configuration (recording.dir), server running or not.`;

export class RecordingsUsageError extends Error {}

interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') };

/** What the command needs from outside recording/: the catalog's archive index (the CLI opens it). */
export interface RecordingsCommandDeps {
  openIndex(
    config: ReturnType<typeof loadConfig>,
    log: Logger,
  ): Promise<{ index: RecordingIndexPort; where: string; close(): Promise<void> }>;
}

/** `lessoncast recordings …`: returns the exit code. */
export async function recordingsCommand(args: string[], io: Io = stdio, deps?: RecordingsCommandDeps): Promise<number> {
  const [sub, ...rest] = args;
  const config = loadConfig();
  const recordingsDir = path.resolve(config.recording.dir);
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (o, m) => io.err(`${m} ${JSON.stringify(o)}`),
    error: (o, m) => io.err(`${m} ${JSON.stringify(o)}`),
  };
  const archive = (ffmpegPath = ''): Archive => new Archive({ recordingsDir, ffmpegPath, log, isLive: () => false });
  switch (sub) {
    case 'list':
      return list(archive(), rest, io);
    case 'verify':
      return verify(archive(), rest, io);
    case 'export':
      return exportOne(archive((await locateFfmpeg(config.recording.ffmpegPath)).path), rest, io);
    case 'reindex': {
      if (rest.length) throw new RecordingsUsageError('reindex takes no arguments');
      if (!deps) throw new RecordingsUsageError('reindex needs the catalog');
      const { index, where, close } = await deps.openIndex(config, log);
      try {
        const a = archive();
        a.useIndex(index);
        const r = await a.reindex();
        io.out(`reindexed ${r.total} recordings of ${recordingsDir} into ${where} in ${(r.ms / 1000).toFixed(1)} s`);
        return 0;
      } finally {
        await close();
      }
    }
    default:
      throw new RecordingsUsageError(
        sub ? `unknown recordings command "${sub}"` : 'recordings needs a command: list, verify, export or reindex',
      );
  }
}

async function list(archive: Archive, args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...stringOptions('from', 'to', 'instructor', 'school', 'subject', 'q', 'limit'),
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const date = (v: string | undefined, name: string): Date | undefined => {
    if (v === undefined) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new RecordingsUsageError(`--${name} is not a date: ${v}`);
    return d;
  };
  const limit = values.limit === undefined ? 1000 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new RecordingsUsageError('--limit must be a positive integer');
  const search: RecordingSearch = { limit };
  const from = date(values.from, 'from');
  const to = date(values.to, 'to');
  if (from) search.from = from;
  if (to) search.to = to;
  if (values.instructor) search.instructor = values.instructor;
  if (values.school) search.school = values.school;
  if (values.subject) search.subject = values.subject;
  if (values.q) search.q = values.q;
  const { total, recordings } = await archive.list(search);
  if (values.json) {
    io.out(JSON.stringify({ total, recordings }, null, 2));
    return 0;
  }
  for (const r of recordings) {
    const flags = [
      r.state === 'complete' ? '' : r.state,
      r.recovered ? 'recovered' : '',
      r.pinned ? 'pinned' : '',
      r.faults ? `${r.faults} faults` : '',
    ]
      .filter(Boolean)
      .join(',');
    io.out(
      `${r.id}  ${r.startedAt}  ${formatDuration(r.durationSeconds)}  ${(r.sizeBytes / 1e6).toFixed(1)} MB  ${r.instructorId}  ${r.title}${flags ? `  [${flags}]` : ''}`,
    );
  }
  io.err(`${recordings.length} of ${total} recordings in ${archive.recordingsDir}`);
  return 0;
}

async function verify(archive: Archive, args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { all: { type: 'boolean' } }, allowPositionals: true, strict: true });
  const ids = values.all ? (await archive.list({ limit: Number.MAX_SAFE_INTEGER })).recordings.map((r) => r.id) : positionals;
  if (ids.length === 0) throw new RecordingsUsageError('verify needs recording ids or --all');
  let failed = 0;
  for (const id of ids) {
    try {
      const report = await archive.verify(id);
      if (report.ok) io.out(`ok    ${id}  ${report.checkedFiles} files, ${(report.checkedBytes / 1e6).toFixed(1)} MB`);
      else {
        failed++;
        io.out(`FAIL  ${id}  ${report.mismatches.length} of ${report.checkedFiles} files do not match`);
        for (const m of report.mismatches) io.out(`      ${m.uri}: ${m.problem} (expected ${m.expected}, found ${m.actual ?? 'nothing'})`);
      }
    } catch (err) {
      failed++;
      io.out(`FAIL  ${id}  ${(err as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}

async function exportOne(archive: Archive, args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { out: { type: 'string' }, audio: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [id] = positionals;
  if (!id || positionals.length > 1) throw new RecordingsUsageError('export needs exactly one recording id');
  if (!values.out) throw new RecordingsUsageError('export needs --out <file.mp4>');
  const audio = (values.audio ?? 'auto') as ExportAudio;
  if (!['auto', 'mixed', 'tracks'].includes(audio)) throw new RecordingsUsageError('--audio must be auto, mixed or tracks');
  let made: 'mixed' | 'tracks';
  try {
    made = await archive.exportMp4(id, values.out, { audio });
  } catch (err) {
    if ((err as { code?: string }).code !== 'INTERNAL') throw err;
    io.err(`ffmpeg failed: ${(err as Error).message}`);
    return 1;
  }
  io.err(`wrote ${values.out} (audio: ${made})`);
  return 0;
}

function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}
