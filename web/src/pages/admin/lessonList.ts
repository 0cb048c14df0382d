/** Every lesson, newest first, with New links for those not ended. */
import type { LessonView } from '../../../../src/domain/index.js';
import { api } from '../../lib/api.js';
import { byId, fill, h } from '../../lib/dom.js';
import { dateTime } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';
import { notice } from '../../lib/shell.js';

export class LessonList {
  private readonly rows = byId('lessons').querySelector('tbody')!;

  constructor(
    private readonly token: string,
    private readonly relink: (lesson: LessonView) => void,
  ) {
    byId<HTMLButtonElement>('refresh').addEventListener('click', () => void this.load());
  }

  async load(): Promise<void> {
    try {
      const { lessons } = await api<{ lessons: Array<LessonView & { participants: number }> }>(this.token, '/api/lessons');
      lessons.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      fill(
        this.rows,
        ...lessons.map((l) =>
          h(
            'tr',
            { 'data-lesson': l.id },
            h('th', { scope: 'row' }, l.title),
            h('td', {}, h('span', { class: `state state-${l.state}` }, t(`state.${l.state}`))),
            h('td', {}, l.instructorId),
            h('td', {}, dateTime(l.createdAt)),
            h('td', {}, String(l.participants)),
            h(
              'td',
              {},
              l.state === 'ended'
                ? ''
                : h('button', { type: 'button', class: 'btn small', onclick: () => this.relink(l) }, t('admin.newLinks')),
            ),
          ),
        ),
      );
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }
}
