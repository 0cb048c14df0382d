import type { RecordingManifest } from './manifestSchema.js';

/** What the archive answers about recordings (REST), declared free of Node so the archive page can import it. */
export interface RecordingSummary {
  id: string;
  title: string;
  subject: string;
  instructorId: string;
  state: RecordingManifest['state'];
  recovered: boolean;
  pinned: boolean;
  startedAt: string;
  endedAt: string | null;
  durationSeconds: number;
  sizeBytes: number;
  /** Classrooms that attended. */
  schools: Array<{ id: string; name: string }>;
  invitedSchools: string[];
  tracks: Array<{ id: string; kind: string; codec: string; transcoded: boolean; segments: number; durationSeconds: number }>;
  faults: number;
}

export interface VerifyReport {
  recordingId: string;
  ok: boolean;
  state: RecordingManifest['state'];
  checkedFiles: number;
  checkedBytes: number;
  mismatches: Array<{ uri: string; problem: 'missing' | 'size' | 'sha256'; expected: string | number; actual: string | number | null }>;
}
