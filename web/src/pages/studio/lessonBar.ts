/** The lesson's title, live and recording badges, and the Go live / End lesson buttons (with their confirmation). */
import type { LessonView, RecordingStatus } from '../../../../src/domain/index.js';
import { byId, show } from '../../lib/dom.js';
import { clock } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';

export interface LessonBarActions {
  goLive(): Promise<void>;
  /** Confirmed in the dialog. */
  end(): void;
}

export class LessonBar {
  private readonly title = byId('lesson-title');
  private readonly rec = byId('rec');
  private readonly recElapsed = byId('rec-elapsed');
  private readonly liveBadge = byId('live-badge');
  private readonly goLive = byId<HTMLButtonElement>('go-live');
  private readonly endLesson = byId<HTMLButtonElement>('end-lesson');
  private readonly endDialog = byId<HTMLDialogElement>('end-dialog');

  constructor(actions: LessonBarActions) {
    this.goLive.addEventListener('click', () => {
      this.goLive.disabled = true;
      void actions.goLive();
    });
    this.endLesson.addEventListener('click', () => this.endDialog.showModal());
    this.endDialog.addEventListener('close', () => {
      if (this.endDialog.returnValue === 'end') actions.end();
    });
  }

  render(lesson: LessonView | undefined, recording: RecordingStatus, joined: boolean): void {
    const live = lesson?.state === 'live';
    const ended = lesson?.state === 'ended';
    this.title.textContent = lesson ? lesson.title : '';
    show(this.liveBadge, live);
    show(this.goLive, !live && !ended);
    this.goLive.disabled = !lesson || live || ended || !joined;
    show(this.endLesson, live);
    show(this.rec, live && recording.state !== 'stopped');
    this.rec.classList.toggle('fault', recording.state === 'fault');
    this.rec.title = recording.state === 'fault' ? t('studio.recordingFault', { message: recording.message ?? '' }) : '';
    this.tick(recording);
  }

  /** Elapsed recording time, once a second. */
  tick(recording: RecordingStatus): void {
    if (recording.at && recording.state === 'recording')
      this.recElapsed.textContent = clock((Date.now() - Date.parse(recording.at)) / 1000);
  }
}
