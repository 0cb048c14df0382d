/** Download MP4 and Verify integrity for the recording shown. */
import type { VerifyReport } from '../../../../src/recording/archiveViews.js';
import { api } from '../../lib/api.js';
import { byId, h } from '../../lib/dom.js';
import { bytes } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';
import { notice } from '../../lib/shell.js';

export class RecordingActions {
  private readonly download = byId<HTMLButtonElement>('download');
  private readonly verify = byId<HTMLButtonElement>('verify');
  private readonly result = byId<HTMLOutputElement>('verify-result');

  constructor(
    private readonly token: string,
    private readonly recordingId: () => string | undefined,
  ) {
    this.download.addEventListener('click', () => {
      const id = recordingId();
      if (id) this.startDownload(id);
    });
    this.verify.addEventListener('click', () => {
      const id = recordingId();
      if (id) this.runVerify(id);
    });
  }

  /** A newly opened recording has no verdict yet. */
  reset(): void {
    this.result.value = '';
    this.result.className = 'verify-result';
  }

  private startDownload(id: string): void {
    this.download.disabled = true;
    // A lesson's MP4 can be large: let the browser stream it to disk through a plain link with a
    // short-lived key for this one recording (the page's own token never goes into a URL).
    api<{ access: string }>(this.token, `/api/recordings/${encodeURIComponent(id)}/access`, { method: 'POST', body: {} })
      .then(({ access }) => {
        const a = h('a', {
          href: `/api/recordings/${encodeURIComponent(id)}/download.mp4?access=${encodeURIComponent(access)}`,
          download: '',
        });
        document.body.append(a);
        a.click();
        a.remove();
      })
      .catch((e: unknown) => notice('error', 'archive.downloadFailed', {}, (e as Error).message))
      .finally(() => (this.download.disabled = false));
  }

  private runVerify(id: string): void {
    this.verify.disabled = true;
    this.result.value = t('archive.verifying');
    this.result.className = 'verify-result';
    api<VerifyReport>(this.token, `/api/recordings/${encodeURIComponent(id)}/verify`, { method: 'POST', body: {} })
      .then((r) => {
        this.result.value = r.ok
          ? t('archive.verifyOk', { n: r.checkedFiles, size: bytes(r.checkedBytes) })
          : t('archive.verifyBad', { n: r.mismatches.length });
        this.result.className = `verify-result ${r.ok ? 'ok' : 'bad'}`;
      })
      .catch((e: unknown) => {
        this.result.value = t('archive.verifyFailed');
        notice('error', 'common.failed', {}, (e as Error).message);
      })
      .finally(() => (this.verify.disabled = false));
  }
}
