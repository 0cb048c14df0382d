/**
 * Archive: search recordings, play one with hls.js beside the lesson's event
 * timeline (a click seeks), download it as MP4, and verify its integrity.
 */
import type { RecordingSummary } from '../../../src/recording/archiveViews.js';
import type { RecordingManifest } from '../../../src/recording/manifestSchema.js';
import { api } from '../lib/api.js';
import { byId, show } from '../lib/dom.js';
import { bytes, clock, dateTime } from '../lib/format.js';
import { onLangChange } from '../lib/i18n.js';
import { exposeDiagnostics, notice, runWithToken, startPage } from '../lib/shell.js';
import { RecordingPlayer } from './archive/player.js';
import { LedgerTable } from './archive/ledger.js';
import { RecordingActions } from './archive/recordingActions.js';
import { RecordingSearch } from './archive/search.js';
import { Timeline } from './archive/timeline.js';

startPage();

runWithToken('archive', run);

function run(token: string): void {
  const viewer = byId('viewer');
  const title = byId('viewer-title');
  const meta = byId('viewer-meta');
  /** The recording shown. */
  let current: RecordingSummary | undefined;
  const search = new RecordingSearch(
    token,
    (id) => void open(id),
    () => current?.id,
  );
  const player = new RecordingPlayer(token);
  const timeline = new Timeline((offset) => player.seek(offset));
  const actions = new RecordingActions(token, () => current?.id);
  const ledger = new LedgerTable(token);

  async function open(id: string): Promise<void> {
    let manifest: RecordingManifest;
    try {
      const res = await api<{ recording: RecordingSummary; manifest: RecordingManifest }>(
        token,
        `/api/recordings/${encodeURIComponent(id)}`,
      );
      current = res.recording;
      manifest = res.manifest;
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
      return;
    }
    show(viewer, true);
    title.textContent = current.title || id;
    meta.textContent = [
      current.subject,
      current.instructorId,
      dateTime(current.startedAt),
      clock(current.durationSeconds),
      bytes(current.sizeBytes),
    ]
      .filter(Boolean)
      .join(' · ');
    actions.reset();
    timeline.show(manifest);
    // A recording's id is its lesson's.
    void ledger.show(id);
    search.render();
    player.play(current, manifest);
    title.tabIndex = -1;
    title.focus();
  }

  onLangChange(() => {
    search.render();
    timeline.render();
    ledger.render();
  });
  void search.search();

  exposeDiagnostics({
    page: 'archive',
    recordings: () => search.results.map((r) => ({ id: r.id, title: r.title, state: r.state })),
    player: () => player.diagnostics(),
    timeline: () => timeline.events().map((e) => e.type),
    ledger: () => ledger.shown().map((r) => ({ schoolId: r.schoolId, attendance: r.attendance, minutes: r.connectedMinutes })),
  });
}
