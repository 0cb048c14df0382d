import type { MediaKind, MediaSource } from './media.js';
import type { Role } from './roles.js';

export const LESSON_STATES = ['created', 'live', 'ended'] as const;
/** 'created': scheduled or open, not yet live; 'ended' is final. */
export type LessonState = (typeof LESSON_STATES)[number];

/** A lesson as its participants, the control room and the REST API see it. */
export interface LessonView {
  id: string;
  title: string;
  subject: string;
  instructorId: string;
  state: LessonState;
  record: boolean;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

/**
 * How a participant receives the lesson: 'live' (WebRTC, or not decided yet), or 'one-way' (its
 * network blocks live media: it watches the live recording and cannot speak).
 */
export const MEDIA_MODES = ['live', 'one-way'] as const;
export type MediaMode = (typeof MEDIA_MODES)[number];

/**
 * What a participant's weak-link policy lets through (docs/links.md): the simulcast layer of the
 * camera it receives ('high' = the top layer, 'low' = the lowest, 'medium' = between), or
 * 'audio-only' while the server holds its video paused because its link is too narrow.
 */
export const LINK_LAYERS = ['high', 'medium', 'low', 'audio-only'] as const;
export type LinkLayer = (typeof LINK_LAYERS)[number];

/** One participant's link, as the server last judged it. */
export interface LinkView {
  participantId: string;
  layer: LinkLayer;
  /** The server's estimate of what the participant's link carries, kbit/s; null without an estimate. */
  availableKbps: number | null;
}

/** A participant as the others in the lesson see them. */
export interface ParticipantView {
  id: string;
  role: Role;
  name: string;
  connected: boolean;
  handRaisedAt: number | null;
  hasFloor: boolean;
  /** As the participant last reported it (`reportMediaMode`); 'live' until then. */
  mediaMode: MediaMode;
}

/** A published track, as a receiver is told of it. */
export interface ProducerView {
  producerId: string;
  participantId: string;
  kind: MediaKind;
  source: MediaSource;
}
