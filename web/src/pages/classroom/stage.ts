/**
 * The lesson on the board: camera and board pictures (one, the other, or side by side) and the
 * waiting message; in one-way mode the live recording's picture instead (`data-mode` on #stage).
 */
import type { MediaSource } from '../../../../src/domain/index.js';
import { byId, show, tryPlay } from '../../lib/dom.js';
import { tx, type MessageKey } from '../../lib/i18n.js';
import type { ConsumerInfo } from '../../lib/media.js';
import type { StageMode } from './oneWay.js';

type Layout = 'camera' | 'board' | 'both';
type Slot = 'camera' | 'screen';

export class Stage {
  private readonly stage = byId('stage');
  private readonly waiting = byId('waiting');
  private readonly waitingText = byId('waiting-text');
  private readonly camera = byId<HTMLVideoElement>('camera-video');
  private readonly board = byId<HTMLVideoElement>('board-video');
  /** The live recording's picture and sound (one-way mode). */
  readonly oneWayVideo = byId<HTMLVideoElement>('one-way-video');
  private readonly layoutButtons = Array.from(document.querySelectorAll<HTMLButtonElement>('button[data-layout]'));
  private readonly videos = new Map<Slot, ConsumerInfo>();
  private layout: Layout = 'camera';

  constructor(private readonly onChange: () => void) {
    for (const b of this.layoutButtons) {
      b.addEventListener('click', () => {
        this.layout = b.dataset['layout'] as Layout;
        onChange();
      });
    }
  }

  has(slot: Slot): boolean {
    return this.videos.has(slot);
  }

  /** Shows a received picture; resolves its element (the camera's, for the first-frame figure). */
  show(info: ConsumerInfo): HTMLVideoElement {
    const slot: Slot = info.source === 'screen' ? 'screen' : 'camera';
    this.videos.set(slot, info);
    const el = this.element(slot);
    el.srcObject = new MediaStream([info.consumer.track]);
    void tryPlay(el);
    // A board appearing is worth seeing beside the teacher.
    if (slot === 'screen' && this.layout === 'camera') this.layout = 'both';
    this.onChange();
    return el;
  }

  forget(producerId: string): void {
    for (const [slot, v] of this.videos) {
      if (v.producerId !== producerId) continue;
      this.videos.delete(slot);
      this.element(slot).srcObject = null;
      if (slot === 'screen' && this.layout !== 'camera') this.layout = 'camera';
    }
    this.onChange();
  }

  /** Forgets every picture without touching the elements (a rejoin brings them back). */
  reset(): void {
    this.videos.clear();
  }

  clear(): void {
    this.videos.clear();
    this.camera.srcObject = null;
    this.board.srcObject = null;
  }

  render(message: MessageKey | undefined, mode: StageMode = 'live'): void {
    const oneWay = mode === 'one-way';
    const hasBoard = this.videos.has('screen') && !oneWay;
    const hasCamera = this.videos.has('camera') && !oneWay;
    const effective: Layout = !hasBoard ? 'camera' : !hasCamera ? 'board' : this.layout;
    this.stage.dataset['layout'] = effective;
    this.stage.dataset['mode'] = mode;
    show(this.camera, hasCamera && effective !== 'board');
    show(this.board, hasBoard && effective !== 'camera');
    show(this.oneWayVideo, oneWay);
    for (const b of this.layoutButtons) {
      const l = b.dataset['layout'] as Layout;
      // The live recording has one picture (the camera, else the board): no layouts to choose.
      b.disabled = oneWay || (l !== 'camera' && !hasBoard);
      b.setAttribute('aria-pressed', String(l === effective));
    }
    show(this.waiting, message !== undefined);
    if (message) tx(this.waitingText, message);
  }

  videoSize(which: MediaSource): { width: number; height: number; currentTime: number } {
    const el = which === 'screen' ? this.board : this.camera;
    return { width: el.videoWidth, height: el.videoHeight, currentTime: el.currentTime };
  }

  private element(slot: Slot): HTMLVideoElement {
    return slot === 'screen' ? this.board : this.camera;
  }
}
