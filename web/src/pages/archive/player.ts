/** Plays a recording's HLS playlist with hls.js, every request carrying the bearer token. */
import Hls from 'hls.js';
import type { RecordingSummary } from '../../../../src/recording/archiveViews.js';
import type { RecordingManifest } from '../../../../src/recording/manifestSchema.js';
import { byId, tryPlay } from '../../lib/dom.js';
import { notice } from '../../lib/shell.js';

export class RecordingPlayer {
  private readonly video = byId<HTMLVideoElement>('player');
  private hls: Hls | undefined;
  /** Recent player errors, for diagnostics. */
  private readonly errors: string[] = [];

  constructor(private readonly token: string) {}

  play(summary: RecordingSummary, manifest: RecordingManifest): void {
    this.hls?.destroy();
    this.hls = undefined;
    if (!Hls.isSupported()) {
      notice('error', 'archive.noHls');
      return;
    }
    const hls = new Hls({
      // Files are protected: every playlist and segment request carries the bearer token (never the URL).
      xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${this.token}`),
      enableWorker: true,
      startPosition: 0,
    });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_ev, data) => {
      this.errors.push(`${data.fatal ? 'fatal ' : ''}${data.details}`);
      this.errors.splice(0, this.errors.length - 20);
      if (data.fatal) notice('error', 'archive.playFailed', {}, data.details);
    });
    // The user picked this recording: start it (their click allows sound).
    hls.on(Hls.Events.MANIFEST_PARSED, () => void tryPlay(this.video));
    hls.loadSource(
      `/api/recordings/${encodeURIComponent(summary.id)}/files/${manifest.playlist.split('/').map(encodeURIComponent).join('/')}`,
    );
    hls.attachMedia(this.video);
  }

  seek(offset: number): void {
    this.video.currentTime = offset;
    void tryPlay(this.video);
  }

  diagnostics() {
    const v = this.video;
    const ranges = Array.from({ length: v.buffered.length }, (_, i) => [v.buffered.start(i), v.buffered.end(i)]);
    return {
      currentTime: v.currentTime,
      paused: v.paused,
      videoWidth: v.videoWidth,
      readyState: v.readyState,
      buffered: ranges,
      errors: [...this.errors],
    };
  }
}
