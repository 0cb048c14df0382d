import type { Logger } from '../logger.js';
/** What the control room is told when recording goes wrong (RecordingService 'fault' event; docs/recording.md). */
export interface RecordingFault {
  lessonId: string;
  /** The track concerned, or null for the whole recording. */
  trackId: string | null;
  kind: 'storage' | 'ffmpeg' | 'media' | 'recovery';
  /** ENOSPC, EACCES, ENOTDIR…, FFMPEG_EXITED, FFMPEG_START, TAP_FAILED, RECOVERY_FAILED. */
  code: string;
  message: string;
  at: string;
  /** True while the recorder keeps retrying on its own; the live lesson is never affected. */
  recovering: boolean;
  detail?: Record<string, unknown>;
}

/** A fault as its finder describes it; the reporter adds the lesson and the time. */
export type FaultReport = Omit<RecordingFault, 'lessonId' | 'at'>;

export interface FaultReporterOptions {
  lessonId: string;
  log: Logger;
  /** Delivers the fault to listeners (RecordingService 'fault'). */
  emit(fault: RecordingFault): void;
  /** Every fault reported, after throttling (the recorder notes it in the lesson's journal). */
  onReported(fault: RecordingFault): void;
  /** Every fault, before throttling: the recording's state follows each one (docs/protocol.md `recordingChanged`). */
  onFault?(fault: RecordingFault): void;
}

const FAULT_REPEAT_MS = 30_000;

/**
 * Reports one recording's faults: a log line, the listeners, a count. The same
 * fault repeating (a full disk fails every segment) is reported once per
 * interval, not once per segment.
 */
export class FaultReporter {
  /** Faults reported so far (the manifest's `faults`). */
  count = 0;
  private readonly lastReportedAt = new Map<string, number>();

  constructor(private readonly opts: FaultReporterOptions) {}

  report(f: FaultReport): void {
    const key = `${f.kind}:${f.code}:${f.trackId ?? ''}`;
    const now = Date.now();
    const fault: RecordingFault = { lessonId: this.opts.lessonId, at: new Date(now).toISOString(), ...f };
    try {
      this.opts.onFault?.(fault);
    } catch (err) {
      this.opts.log.error({ err }, 'a recording fault observer threw');
    }
    if (now - (this.lastReportedAt.get(key) ?? 0) < FAULT_REPEAT_MS) return;
    this.lastReportedAt.set(key, now);
    this.count++;
    this.opts.onReported(fault);
    this.opts.log.error(
      { lesson: fault.lessonId, track: fault.trackId, kind: fault.kind, code: fault.code, detail: fault.detail },
      `recording fault: ${fault.message}`,
    );
    try {
      this.opts.emit(fault);
    } catch (err) {
      this.opts.log.error({ err }, 'a recording fault listener threw');
    }
  }

  /** A file-system error while doing `what` (the folder, a playlist, the manifest). */
  reportStorage(err: NodeJS.ErrnoException, what: string, recovering = true): void {
    this.report({
      kind: 'storage',
      code: err.code ?? 'EIO',
      trackId: null,
      message: `recording storage failed while ${what}: ${err.message}`,
      recovering,
    });
  }
}
