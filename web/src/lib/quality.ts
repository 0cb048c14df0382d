/** How well a school receives, in four words the control room and the studio colour alike. */
import type { MessageKey } from './i18n.js';

/** The figures the live view gives per school (null: not measured yet). */
export interface QualitySample {
  bitrateKbps: number;
  lossPct: number;
  rttMs: number | null;
  jitterMs: number | null;
  /** mediasoup's 0–10 score of the streams the school receives. */
  score: number | null;
}

export type QualityLevel = 'good' | 'fair' | 'poor' | 'offline' | 'unknown';

/** Thresholds meant for a lesson: a little loss is hidden by NACK/FEC, several percent shows. */
export function qualityLevel(connected: boolean, q: Partial<QualitySample> | undefined | null): QualityLevel {
  if (!connected) return 'offline';
  if (!q || q.score === undefined || q.score === null) return 'unknown';
  const loss = q.lossPct ?? 0;
  const rtt = q.rttMs ?? 0;
  if (q.score <= 4 || loss >= 5 || rtt >= 600) return 'poor';
  if (q.score <= 7 || loss >= 2 || rtt >= 250) return 'fair';
  return 'good';
}

export const QUALITY_LABEL: Record<QualityLevel, MessageKey> = {
  good: 'quality.good',
  fair: 'quality.fair',
  poor: 'quality.poor',
  offline: 'quality.offline',
  unknown: 'quality.unknown',
};
