import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

let tempCounter = 0;

/**
 * Writes a file atomically: a temp file beside it, flushed to disk, then
 * renamed over the target. Readers see the old or the new content, never half.
 */
export async function writeFileAtomic(file: string, content: string | Buffer, opts: { fsync?: boolean } = {}): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++tempCounter}.tmp`);
  const handle = await open(temp, 'w', 0o644);
  try {
    await handle.writeFile(content);
    if (opts.fsync) await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** SHA-256 (hex) and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(file);
    stream.on('data', (chunk) => {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    });
    stream.once('error', reject);
    stream.once('end', () => resolve());
  });
  return { sha256: hash.digest('hex'), size };
}

/**
 * One file rewritten often (a live playlist, the manifest): writes are
 * serialized and coalesced — while one write runs, later requests collapse
 * into one more write of the latest content.
 */
export class AtomicFile {
  private chain: Promise<void> = Promise.resolve();
  /** A write requested but not started yet: it will render the latest content, so later requests join it. */
  private queued: Promise<void> | null = null;

  constructor(
    readonly file: string,
    private readonly render: () => string,
    private readonly onError: (err: NodeJS.ErrnoException) => void,
    private readonly opts: { fsync?: boolean } = {},
  ) {}

  /** Requests a write of the current content; resolves once a write that includes it has finished (or failed). */
  write(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(async () => {
      this.queued = null;
      try {
        await writeFileAtomic(this.file, this.render(), this.opts);
      } catch (err) {
        this.onError(err as NodeJS.ErrnoException);
      }
    });
    this.queued = next;
    this.chain = next;
    return next;
  }
}
