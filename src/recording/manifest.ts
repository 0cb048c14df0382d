import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Value } from 'typebox/value';
import { firstError } from '../schemaErrors.js';
import { RecordingManifest } from './manifestSchema.js';

// The schemas live apart, free of Node, so the browser pages can import their types too.
export * from './manifestSchema.js';

export const MANIFEST_NAME = 'manifest.json';
export const MASTER_PLAYLIST = 'index.m3u8';

/** Reads and checks a manifest; throws with a short reason when missing or malformed. */
export async function readManifest(recordingDir: string): Promise<RecordingManifest> {
  const text = await readFile(path.join(recordingDir, MANIFEST_NAME), 'utf8');
  const data: unknown = JSON.parse(text);
  if (!Value.Check(RecordingManifest, data)) {
    const first = firstError(Value.Errors(RecordingManifest, data));
    throw new Error(`malformed manifest${first ? ` at ${first}` : ''}`);
  }
  return data;
}

/** Recording ids are lesson ids: UUIDs, lower-case. Anything else never reaches the file system. */
export const RECORDING_ID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const RECORDING_ID = new RegExp(RECORDING_ID_PATTERN);
export const isRecordingId = (id: string): boolean => RECORDING_ID.test(id);

/** Files of a recording that may be served: playlists at its root and media under a track folder. */
const SERVABLE_FILE = /^(?:[a-z][a-z0-9-]{0,39}\.m3u8|[a-z][a-z0-9-]{0,39}\/r\d{3,6}-(?:init\.mp4|\d{5,9}\.m4s))$/;
export const isServableFile = (rel: string): boolean => SERVABLE_FILE.test(rel);

/** Total size of the media a manifest lists. */
export function manifestBytes(m: RecordingManifest): number {
  let total = 0;
  for (const t of m.tracks) {
    for (const s of t.segments) total += s.size;
    for (const r of t.runs) total += r.init?.size ?? 0;
  }
  return total;
}
