export const RECORDING_STATES = ['recording', 'stopped', 'fault'] as const;
export type RecordingPhase = (typeof RECORDING_STATES)[number];

/**
 * Whether a lesson is being recorded: the one shape the studio (signalling), the control room
 * (live state and feed) and the recorder share.
 */
export interface RecordingStatus {
  /** The lesson is to be recorded (its own `record` flag). */
  enabled: boolean;
  state: RecordingPhase;
  /** When `state` last changed; null before the recorder said anything. */
  at: string | null;
  /** For faults: what went wrong (the live lesson is never affected). */
  message?: string;
  /** For faults: the recorder keeps retrying on its own. */
  recovering?: boolean;
}

/** The status of a lesson nothing has been recorded for yet. */
export const notRecording = (enabled: boolean): RecordingStatus => ({ enabled, state: 'stopped', at: null });
