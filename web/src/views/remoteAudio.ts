/** The page's hidden box of voices (#remote-audio): one <audio> per audio consumer it hears. */
import { h, tryPlay } from '../lib/dom.js';
import type { ConsumerInfo } from '../lib/media.js';

export class RemoteAudio {
  constructor(private readonly box: HTMLElement) {}

  /** Starts a voice; resolves false when the browser wants a user gesture before it plays sound. */
  play(info: ConsumerInfo, attrs: Record<string, string> = {}): Promise<boolean> {
    const audio = h('audio', { autoplay: true, 'data-producer': info.producerId, ...attrs });
    audio.srcObject = new MediaStream([info.consumer.track]);
    this.box.append(audio);
    return tryPlay(audio);
  }

  remove(producerId: string): void {
    this.box.querySelector(`[data-producer="${CSS.escape(producerId)}"]`)?.remove();
  }

  clear(): void {
    this.box.replaceChildren();
  }

  /** Tries again every voice the browser held back; resolves whether all of them play now. */
  async resume(): Promise<boolean> {
    const held = Array.from(this.box.querySelectorAll('audio')).filter((a) => a.paused);
    return !(await Promise.all(held.map((a) => tryPlay(a)))).includes(false);
  }
}
