/**
 * What the control room sees of every node: live lessons, the schools in each,
 * the nodes themselves, and the events between them. Plain JSON-able values:
 * the Redis store keeps them as JSON, the in-process store as objects.
 */
import type { LinkLayer, MediaMode, RecordingStatus } from '../domain/index.js';

/** How well one school receives, over the last sampling interval. */
export interface QualitySummary {
  /** Media this node sends the school (all its consumers), kbit/s. */
  bitrateKbps: number;
  /** Packets lost on the way to the school, % of packets sent, from its receiver reports. */
  lossPct: number;
  /** Round-trip time to the school from RTCP; null until a report carries it. */
  rttMs: number | null;
  /**
   * Jitter of the streams the school receives, as they arrived at this node (mediasoup 3.19
   * keeps no jitter from the school's own receiver reports); null without media.
   */
  jitterMs: number | null;
  /** mediasoup's 0–10 score, the worst of the school's streams; null without media. */
  score: number | null;
  sampledAt: string;
}

/**
 * How well this node receives one publisher (the instructor, or a classroom holding the floor)
 * over the last sampling interval: the publisher's uplink. A school's `lossPct` is only its own
 * downlink (mediasoup >= 3.29), so a lossy instructor link shows here and not on every school.
 */
export interface UplinkQuality {
  participantId: string;
  role: 'instructor' | 'classroom';
  /** Media this node receives from the publisher (all its producers), kbit/s. */
  bitrateKbps: number;
  /** Packets that never arrived (after retransmissions), % of packets the publisher sent. */
  lossPct: number;
  /** Arrival jitter of the publisher's streams at this node, ms; null without media. */
  jitterMs: number | null;
  /** mediasoup's 0–10 score of the publisher's streams, the worst of them. */
  score: number | null;
  sampledAt: string;
}

export interface LiveLesson {
  id: string;
  title: string;
  instructorId: string;
  /** The node hosting it (in a cluster, its origin). */
  node: string;
  /** In a cluster: the other nodes serving classrooms of it (edges), by id; [] on one node. */
  edges: string[];
  /** 'created': open (someone joined) but not live yet. */
  state: 'created' | 'live';
  startedAt: string | null;
  recording: RecordingStatus;
  /** The publishers' uplinks at the last sampling tick; empty until someone publishes. */
  uplink: UplinkQuality[];
}

export interface LiveSchool {
  schoolId: string;
  name: string;
  /** First joined this lesson. */
  since: string;
  /** Signalling up and media transport not failed. */
  connected: boolean;
  /** 'one-way': its network blocks live media; it watches the live recording and cannot speak. */
  mediaMode: MediaMode;
  /** The camera layer it receives (high/medium/low), or 'audio-only' while its video is paused for a weak link; null until judged. */
  link: LinkLayer | null;
  quality: QualitySummary | null;
}

export interface NodeLoad {
  workers: number;
  lessons: number;
  schools: number;
  consumers: number;
}

export interface LiveNode {
  id: string;
  /** Base URL users reach this node at. */
  address: string;
  startedAt: string;
  heartbeatAt: string;
  load: NodeLoad;
}

export type LiveLessonView = LiveLesson & { schools: LiveSchool[] };

export interface LiveSnapshot {
  nodes: LiveNode[];
  lessons: LiveLessonView[];
  /** Set when the shared store is unreachable: this is the local node's view only. */
  degraded?: string;
}

export type AlertRule = 'packetLoss' | 'schoolDisconnected' | 'recordingFault' | 'audioOnly';

export interface SchoolQuality {
  schoolId: string;
  connected: boolean;
  quality: QualitySummary | null;
}

/** Every event on the bus; `id` (uuid v7), `at` and `node` (the publisher) are added on publish. */
export type LiveEventBody =
  | { type: 'lessonOpened'; lessonId: string; lesson: LiveLesson }
  | { type: 'lessonStarted'; lessonId: string; lesson: LiveLesson }
  | { type: 'lessonEnded'; lessonId: string; reason: string }
  | { type: 'schoolJoined'; lessonId: string; schoolId: string; name: string; rejoined: boolean }
  | { type: 'schoolDisconnected'; lessonId: string; schoolId: string }
  | { type: 'schoolLeft'; lessonId: string; schoolId: string }
  | { type: 'schoolMediaMode'; lessonId: string; schoolId: string; mode: MediaMode }
  | { type: 'schoolLink'; lessonId: string; schoolId: string; layer: LinkLayer; availableKbps: number | null }
  | { type: 'handRaised'; lessonId: string; schoolId: string }
  | { type: 'handLowered'; lessonId: string; schoolId: string }
  | { type: 'floorChanged'; lessonId: string; holders: string[]; granted?: string; revoked?: string }
  | { type: 'recordingChanged'; lessonId: string; recording: RecordingStatus }
  | { type: 'recordingFault'; lessonId: string; message: string; detail?: Record<string, unknown> }
  | { type: 'alert'; rule: AlertRule; state: 'raised' | 'cleared'; lessonId: string; schoolId?: string; message: string; value?: number }
  | { type: 'quality'; lessonId: string; schools: SchoolQuality[]; uplink: UplinkQuality[] }
  | { type: 'nodeLost'; lostNode: string; lessons: Array<{ id: string; title: string; schools: number }> }
  /** A token, device, person or school was revoked (every node closes its connections; not shown in the live feed). */
  | { type: 'revoked'; kind: 'token' | 'device' | 'person' | 'school'; subject: string; revokedAt: number };

export type LiveEvent = LiveEventBody & {
  id: string;
  at: string;
  node: string;
};
