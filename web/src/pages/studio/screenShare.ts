/** Sharing a screen or smart board: the button, its preview, and the published screen while live. */
import { byId, show, tryPlay } from '../../lib/dom.js';
import { tx } from '../../lib/i18n.js';
import type { CurrentMedia } from '../../lib/media.js';
import { notice } from '../../lib/shell.js';

export class ScreenShare {
  private readonly button = byId<HTMLButtonElement>('share-screen');
  private readonly figure = byId('screen-figure');
  private readonly preview = byId<HTMLVideoElement>('screen-preview');
  track?: MediaStreamTrack;

  constructor(
    private readonly media: CurrentMedia,
    private readonly isLive: () => boolean,
    private readonly onChange: () => void,
  ) {
    this.button.addEventListener('click', () => void (this.track ? this.stop() : this.start()));
  }

  async stop(): Promise<void> {
    this.track?.stop();
    this.track = undefined;
    this.preview.srcObject = null;
    await this.media.current?.unpublish('screen');
    this.onChange();
  }

  /** The lesson is over: stop capturing (the media session is closed already). */
  release(): void {
    this.track?.stop();
    this.track = undefined;
  }

  render(live: boolean): void {
    this.button.disabled = !live;
    this.button.setAttribute('aria-pressed', String(Boolean(this.track)));
    tx(this.button, this.track ? 'studio.stopSharing' : 'studio.shareScreen');
    show(this.figure, Boolean(this.track));
  }

  private async start(): Promise<void> {
    try {
      const track = (
        await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false })
      ).getVideoTracks()[0]!;
      this.track = track;
      // Stopping from the browser's own "stop sharing" bar ends the track.
      track.addEventListener('ended', () => void this.stop());
      this.preview.srcObject = new MediaStream([track]);
      void tryPlay(this.preview);
      if (this.isLive()) await this.media.with((m) => m.publish('screen', track));
    } catch (e) {
      if ((e as Error).name !== 'NotAllowedError') notice('error', 'studio.shareFailed', {}, (e as Error).message);
    }
    this.onChange();
  }
}
