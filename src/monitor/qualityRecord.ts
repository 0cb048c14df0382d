/** One line of quality.ndjson: one school at one sampling tick. */
export interface QualityRecord {
  at: string;
  schoolId: string;
  connected: boolean;
  bitrateKbps: number | null;
  lossPct: number | null;
  rttMs: number | null;
  jitterMs: number | null;
  score: number | null;
}
