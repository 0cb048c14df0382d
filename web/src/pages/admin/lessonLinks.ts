/** The links made for one lesson: its instructor's and each invited school's. */
import type { LessonView } from '../../../../src/domain/index.js';
import { byId, fill, show } from '../../lib/dom.js';
import { t } from '../../lib/i18n.js';
import { linkItem, mintLink, type PageLink } from './links.js';

export interface Invitee {
  id: string;
  name: string;
}

export class LessonLinks {
  private readonly panel = byId('links-panel');
  private readonly title = byId('links-h');
  private readonly list = byId('links');
  links: PageLink[] = [];

  constructor(private readonly token: string) {}

  /** Mints the instructor's link and one per school, then shows them. */
  async make(lesson: Pick<LessonView, 'id' | 'title'>, instructor: Invitee, schools: Invitee[], ttlSeconds: number): Promise<void> {
    const links = [await mintLink(this.token, 'instructor', instructor.id, instructor.name, [lesson.id], ttlSeconds)];
    for (const s of schools) links.push(await mintLink(this.token, 'classroom', s.id, s.name, [lesson.id], ttlSeconds));
    this.links = links;
    show(this.panel, true);
    this.panel.dataset['lesson'] = lesson.id;
    this.title.textContent = t('admin.linksFor', { title: lesson.title });
    this.render();
    this.title.tabIndex = -1;
    this.title.focus();
  }

  render(): void {
    if (this.links.length) fill(this.list, ...this.links.map(linkItem));
  }
}
