/**
 * School boards: enrol one (its link, with the long-lived credential in the fragment, and a QR code
 * of it, shown once), list a school's boards with when each was last seen, revoke one.
 */
import qrcode from 'qrcode-generator';
import { api } from '../../lib/api.js';
import { byId, fieldText, fill, h, show } from '../../lib/dom.js';
import { dateTime } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';
import { clearNotice, notice } from '../../lib/shell.js';
import { showApiError } from './errors.js';
import type { School } from './people.js';
import { fillSelect } from './timetable.js';

interface Device {
  id: string;
  schoolId: string;
  name: string;
  createdAt: string;
  lastSeenAt: string | null;
  revokedAt: string | null;
}

/** A QR code of the link as an image (a data: URL, which the pages' policy allows for images). */
export function qrImage(text: string, alt: string): HTMLImageElement {
  // Type 0: the smallest version that holds the text; M: 15 % of it may be unreadable.
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  return h('img', { class: 'qr', src: qr.createDataURL(4, 4), alt, 'data-modules': qr.getModuleCount() });
}

export class Boards {
  devices: Device[] = [];
  private readonly form = byId<HTMLFormElement>('device-form');
  private readonly school = byId<HTMLSelectElement>('device-school');
  private readonly rows = byId<HTMLTableElement>('devices-table').tBodies[0]!;
  private readonly enrolled = byId('enrolled');

  constructor(private readonly token: string) {
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.enrol();
    });
    this.school.addEventListener('change', () => void this.load());
  }

  setSchools(schools: School[]): void {
    fillSelect(this.school, schools);
    void this.load();
  }

  async load(): Promise<void> {
    if (!this.school.value) return fill(this.rows);
    try {
      const q = new URLSearchParams({ schoolId: this.school.value });
      this.devices = (await api<{ devices: Device[] }>(this.token, `/api/devices?${q}`)).devices;
    } catch (e) {
      return showApiError(e);
    }
    this.render();
  }

  render(): void {
    fill(
      this.rows,
      ...this.devices.map((d) =>
        h(
          'tr',
          { 'data-device': d.id, 'data-revoked': String(d.revokedAt !== null) },
          h('th', { scope: 'row' }, d.name),
          h('td', {}, dateTime(d.createdAt)),
          h('td', {}, d.lastSeenAt ? dateTime(d.lastSeenAt) : t('admin.never')),
          h('td', {}, d.revokedAt ? t('admin.revokedAt', { when: dateTime(d.revokedAt) }) : t('admin.active')),
          h(
            'td',
            {},
            d.revokedAt
              ? ''
              : h(
                  'button',
                  { type: 'button', class: 'btn small danger', 'data-action': 'revoke', onclick: () => void this.revoke(d) },
                  t('admin.revoke'),
                ),
          ),
        ),
      ),
    );
  }

  private async enrol(): Promise<void> {
    const f = new FormData(this.form);
    let r: { device: Device; link: string };
    try {
      r = await api(this.token, '/api/devices', { method: 'POST', body: { schoolId: this.school.value, name: fieldText(f, 'name') } });
    } catch (e) {
      return showApiError(e);
    }
    clearNotice();
    this.form.querySelector<HTMLInputElement>('[name=name]')!.value = '';
    const input = h('input', { type: 'text', readonly: true, value: r.link, class: 'link-url', 'aria-label': t('admin.boardLink') });
    fill(
      byId('enrolled-body'),
      h('p', {}, t('admin.enrolledHint', { name: r.device.name })),
      input,
      qrImage(r.link, t('admin.qrAlt', { name: r.device.name })),
    );
    this.enrolled.dataset['device'] = r.device.id;
    show(this.enrolled, true);
    await this.load();
  }

  private async revoke(d: Device): Promise<void> {
    if (!confirm(t('admin.revokeBoardConfirm', { name: d.name }))) return;
    try {
      await api(this.token, `/api/devices/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
    } catch (e) {
      return showApiError(e);
    }
    notice('info', 'admin.boardRevoked', { name: d.name });
    if (this.enrolled.dataset['device'] === d.id) show(this.enrolled, false);
    await this.load();
  }
}
