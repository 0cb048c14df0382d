/** The raise-hand queue (give the floor, lower) and who holds the floor (take it back). */
import { byId, fill, h, show } from '../../lib/dom.js';
import { clock } from '../../lib/format.js';
import { icon } from '../../lib/icons.js';
import { t } from '../../lib/i18n.js';
import type { Roster } from '../../lib/roster.js';
import { keepFocus } from '../../lib/widgets.js';

export type FloorAction = 'grantFloor' | 'revokeFloor' | 'lowerHand';

export class FloorPanel {
  private readonly queue = byId('hand-queue');
  private readonly count = byId('hand-count');
  private readonly handsEmpty = byId('hands-empty');
  private readonly floor = byId('floor-list');
  private readonly floorEmpty = byId('floor-empty');

  constructor(
    private readonly roster: Roster,
    private readonly act: (action: FloorAction, participantId: string) => void,
  ) {}

  render(): void {
    this.renderHands();
    this.renderFloor();
  }

  /** Waiting times, updated in place so that focus stays put. */
  tick(): void {
    for (const el of Array.from(this.queue.querySelectorAll<HTMLElement>('time[data-since]')))
      el.textContent = clock((Date.now() - Number(el.dataset['since'])) / 1000);
  }

  private renderHands(): void {
    const queue = this.roster.handQueue();
    this.count.textContent = queue.length ? `(${queue.length})` : '';
    show(this.handsEmpty, queue.length === 0);
    keepFocus(this.queue, () =>
      fill(
        this.queue,
        ...queue.map((p, i) =>
          h(
            'li',
            { class: 'queue-item', 'data-participant': p.id },
            h('span', { class: 'queue-pos', 'aria-hidden': 'true' }, String(i + 1)),
            h('span', { class: 'queue-name' }, p.name),
            h('time', { class: 'queue-wait', 'data-since': String(p.handRaisedAt) }, clock((Date.now() - p.handRaisedAt!) / 1000)),
            h(
              'span',
              { class: 'queue-actions' },
              // A one-way classroom cannot speak (it would hand the floor straight back): say why instead.
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn primary',
                  'data-focus-key': `grant:${p.id}`,
                  disabled: p.mediaMode === 'one-way',
                  'aria-describedby': p.mediaMode === 'one-way' ? `one-way-${p.id}` : null,
                  onclick: () => this.act('grantFloor', p.id),
                },
                icon('mic'),
                t('studio.giveFloor'),
              ),
              p.mediaMode === 'one-way' ? h('span', { class: 'queue-reason', id: `one-way-${p.id}` }, t('studio.floorOneWay')) : null,
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn',
                  'data-focus-key': `lower:${p.id}`,
                  'aria-label': t('studio.lowerHandOf', { name: p.name }),
                  onclick: () => this.act('lowerHand', p.id),
                },
                t('studio.lowerHand'),
              ),
            ),
          ),
        ),
      ),
    );
  }

  private renderFloor(): void {
    const holders = this.roster.floor();
    show(this.floorEmpty, holders.length === 0);
    keepFocus(this.floor, () =>
      fill(
        this.floor,
        ...holders.map((p) =>
          h(
            'li',
            { class: 'queue-item on-floor', 'data-participant': p.id },
            icon('mic'),
            h('span', { class: 'queue-name' }, p.name),
            h(
              'button',
              { type: 'button', class: 'btn danger', 'data-focus-key': `revoke:${p.id}`, onclick: () => this.act('revokeFloor', p.id) },
              t('studio.takeBack'),
            ),
          ),
        ),
      ),
    );
  }
}
