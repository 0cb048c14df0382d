/** A classroom speaks only while holding the floor: the microphone is opened on grant and closed on revoke. */
import { micConstraints } from '../../lib/devices.js';
import type { CurrentMedia } from '../../lib/media.js';
import { notice } from '../../lib/shell.js';

export class FloorMicrophone {
  private track?: MediaStreamTrack;

  constructor(
    private readonly media: CurrentMedia,
    /** Holds the floor in a live lesson now. */
    private readonly holdsFloor: () => boolean,
  ) {}

  async sync(): Promise<void> {
    const holding = this.holdsFloor();
    if (holding && this.media.current && !this.media.current.isPublishing('microphone')) {
      try {
        this.track ??= (await navigator.mediaDevices.getUserMedia({ audio: micConstraints(undefined) })).getAudioTracks()[0];
        const track = this.track;
        // Asked again after the wait for the microphone: the floor may have been taken back meanwhile.
        if (track && this.holdsFloor()) await this.media.with((m) => m.publish('microphone', track));
      } catch (e) {
        notice('error', 'classroom.micFailed', {}, (e as Error).message);
      }
    } else if (!holding) {
      await this.media.current?.unpublish('microphone');
      this.release();
    }
  }

  release(): void {
    this.track?.stop();
    this.track = undefined;
  }

  get speaking(): boolean {
    return Boolean(this.media.current?.isPublishing('microphone'));
  }
}
