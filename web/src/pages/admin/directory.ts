/**
 * One directory of the catalog (schools, people) on the admin page: a table, a form that adds a
 * new entry or edits the one picked (PUT /api/<base>/:id creates or replaces), and Delete (soft:
 * the server keeps its recordings and ledger, and revokes its tokens).
 */
import { api } from '../../lib/api.js';
import { fieldText, fill, h } from '../../lib/dom.js';
import { t, type MessageKey } from '../../lib/i18n.js';
import { clearNotice, notice } from '../../lib/shell.js';
import { showApiError } from './errors.js';

export interface Entry {
  id: string;
  name: string;
}

export interface DirectoryOptions<T extends Entry> {
  /** The REST collection (`/api/<base>`) and the key of one entry in its answers. */
  base: 'schools' | 'people';
  form: HTMLFormElement;
  /** Where the table goes. */
  list: HTMLElement;
  /** The table's columns after the name and the id: their headings and cells. */
  heads: MessageKey[];
  cells(e: T): Array<Node | string>;
  /** The PUT body from the form. */
  body(form: FormData): Record<string, unknown>;
  /** Buttons besides Edit and Delete. */
  actions?(e: T): HTMLElement[];
  nameHead: MessageKey;
  idHead: MessageKey;
  deleteConfirm: MessageKey;
  saved: MessageKey;
}

export class DirectoryEditor<T extends Entry> {
  entries: T[] = [];
  private readonly idInput: HTMLInputElement;
  private readonly rows = h('tbody');
  private readonly listeners: Array<(entries: T[]) => void> = [];

  constructor(
    private readonly token: string,
    private readonly o: DirectoryOptions<T>,
  ) {
    this.idInput = o.form.querySelector<HTMLInputElement>('[name=id]')!;
    // data-i18n: the page's language switch renames them.
    const head = (key: MessageKey) => h('th', { scope: 'col', 'data-i18n': key }, t(key));
    const columns = [o.nameHead, o.idHead, ...o.heads].map((k) => head(k));
    const actions = h('th', { scope: 'col' }, h('span', { class: 'visually-hidden', 'data-i18n': 'admin.actions' }, t('admin.actions')));
    fill(o.list, h('table', { id: `${o.base}-table`, class: 'results' }, h('thead', {}, h('tr', {}, ...columns, actions)), this.rows));
    o.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.save();
    });
    o.form.addEventListener('reset', () => (this.idInput.readOnly = false));
  }

  /** Called with the entries after every load (other sections offer them in their forms). */
  onChange(listener: (entries: T[]) => void): void {
    this.listeners.push(listener);
  }

  async load(): Promise<void> {
    try {
      this.entries = (await api<Record<string, T[]>>(this.token, `/api/${this.o.base}`))[this.o.base] ?? [];
    } catch (e) {
      return showApiError(e);
    }
    this.render();
    for (const l of this.listeners) l(this.entries);
  }

  render(): void {
    fill(
      this.rows,
      ...this.entries.map((e) =>
        h(
          'tr',
          { 'data-id': e.id },
          h('th', { scope: 'row' }, e.name),
          h('td', {}, h('code', {}, e.id)),
          ...this.o.cells(e).map((c) => h('td', {}, c)),
          h(
            'td',
            { class: 'row-actions' },
            h('button', { type: 'button', class: 'btn small', 'data-action': 'edit', onclick: () => this.edit(e) }, t('admin.edit')),
            ...(this.o.actions?.(e) ?? []),
            h(
              'button',
              { type: 'button', class: 'btn small danger', 'data-action': 'delete', onclick: () => void this.remove(e) },
              t('admin.delete'),
            ),
          ),
        ),
      ),
    );
  }

  /** Fills the form with an entry's values; its id stays (Save replaces it). */
  private edit(e: T): void {
    for (const el of Array.from(this.o.form.elements) as HTMLInputElement[]) {
      const value = el.name ? (e as unknown as Record<string, unknown>)[el.name] : undefined;
      if (typeof value === 'string' || typeof value === 'number') el.value = String(value);
    }
    this.idInput.readOnly = true;
    this.o.form.querySelector<HTMLInputElement>('[name=name]')?.focus();
  }

  private async save(): Promise<void> {
    const form = new FormData(this.o.form);
    const id = this.idInput.value.trim();
    try {
      await api(this.token, `/api/${this.o.base}/${encodeURIComponent(id)}`, { method: 'PUT', body: this.o.body(form) });
    } catch (e) {
      return showApiError(e);
    }
    this.o.form.reset();
    notice('info', this.o.saved, { name: fieldText(form, 'name') || id });
    await this.load();
  }

  private async remove(e: T): Promise<void> {
    if (!confirm(t(this.o.deleteConfirm, { name: e.name }))) return;
    try {
      await api(this.token, `/api/${this.o.base}/${encodeURIComponent(e.id)}`, { method: 'DELETE' });
    } catch (err) {
      return showApiError(err);
    }
    clearNotice();
    await this.load();
  }
}
