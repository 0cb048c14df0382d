import type { RawData } from 'ws';
import { LessoncastError } from '../errors.js';
import { salvageId } from './validate.js';

/**
 * Frames above this many times `http.maxMessageBytes` close the socket (1009) instead of being
 * answered MESSAGE_TOO_LARGE. 4× (docs/protocol.md), not "at least 1 MiB": the cap exists to bound
 * what one client makes us buffer and decode, so it scales with the limit an operator chose; no
 * honest client sends four times the largest message the protocol takes.
 */
export const CLOSE_FACTOR = 4;

/** Only this much of a frame too large to parse is searched for its id: bounded work. */
const SALVAGE_BYTES = 512;

/** One received WebSocket message as a single buffer (ws hands over fragments as an array). */
export function frameBuffer(raw: RawData): Buffer {
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
}

/** The answer to a frame above the limit (the connection goes on). */
export const tooLarge = (bytes: number, max: number): LessoncastError =>
  new LessoncastError('MESSAGE_TOO_LARGE', `message of ${bytes} bytes exceeds ${max}`);

/** The id to answer a frame with, as far as it can be read: from the whole frame when it is small enough to parse, else from its first bytes. */
export function readableId(frame: Buffer, maxMessageBytes: number): number | string | null {
  const prefix = (): number | string | null => idFromPrefix(frame.subarray(0, SALVAGE_BYTES).toString('utf8'));
  if (frame.length > maxMessageBytes) return prefix();
  try {
    return salvageId(JSON.parse(frame.toString('utf8')));
  } catch {
    return prefix(); // not JSON (cut off, say): its start may still name the id
  }
}

/**
 * The top-level `"id"` of a JSON object, read from its first bytes without parsing the rest: skips
 * strings, tracks nesting, and takes a value only when it is complete (a number followed by `,` or
 * `}`, a whole string), so a cut-off `"id":12…` is never misread as 12.
 */
export function idFromPrefix(prefix: string): number | string | null {
  let depth = 0;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix[i];
    if (c === '"') {
      const end = stringEnd(prefix, i);
      if (end < 0) return null;
      if (depth === 1 && prefix.slice(i, end + 1) === '"id"') {
        const value = /^\s*:\s*(\d+(?=\s*[,}])|"(?:[^"\\]|\\.)*")/.exec(prefix.slice(end + 1))?.[1];
        if (value !== undefined) return salvageId({ id: parseOr(value) });
      }
      i = end;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return null;
}

const parseOr = (json: string): unknown => {
  try {
    return JSON.parse(json);
  } catch {
    return null; // an escape JSON does not know
  }
};

/** Index of the quote closing the string that opens at `start`, or -1 when it is cut off. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}
