/** Raise/lower the hand (with the place in line), the on-air sign and Finish speaking while holding the floor. */
import type { ParticipantView } from '../../../../src/domain/index.js';
import { byId, show } from '../../lib/dom.js';
import { t, tx } from '../../lib/i18n.js';

export interface HandState {
  me: ParticipantView | undefined;
  /** The lesson is live and this board joined it. */
  live: boolean;
  /** 1 for the first raised hand; 0 when not in the queue. */
  place: number;
  speaking: boolean;
}

export class HandControls {
  readonly hand = byId<HTMLButtonElement>('hand');
  private readonly status = byId('hand-status');
  private readonly giveBack = byId<HTMLButtonElement>('give-back');
  private readonly onAir = byId('on-air');

  constructor(
    actions: { toggleHand(raised: boolean): void; finishSpeaking(): void },
    private readonly isRaised: () => boolean,
  ) {
    this.hand.addEventListener('click', () => {
      this.hand.disabled = true;
      actions.toggleHand(this.isRaised());
    });
    this.giveBack.addEventListener('click', () => actions.finishSpeaking());
  }

  render({ me, live, place, speaking }: HandState): void {
    const raised = me?.handRaisedAt != null;
    const onFloor = Boolean(me?.hasFloor) && live;
    this.hand.disabled = !live || onFloor;
    this.hand.setAttribute('aria-pressed', String(raised));
    tx(this.hand, raised ? 'classroom.lowerHand' : 'classroom.raiseHand');
    this.hand.classList.toggle('raised', raised);
    this.status.textContent = raised ? t('classroom.handQueued', { n: place }) : '';
    show(this.onAir, onFloor && speaking);
    show(this.giveBack, onFloor);
  }
}
