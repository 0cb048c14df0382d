/**
 * The lessoncast signalling protocol (WebSocket at /ws), version PROTOCOL_VERSION.
 * One schema per message; TypeScript types come from the same schemas.
 * This module has no Node dependencies so the browser client imports it too.
 *
 *   client → server  { kind: 'request', id, method, data }
 *   server → client  { kind: 'response', id, ok: true, data } | { kind: 'response', id, ok: false, error }
 *   server → client  { kind: 'notification', event, data }
 *
 * docs/protocol.md documents the flows.
 */
// A namespace import rather than `{ Type }`: esbuild then keeps only the builders used here, which
// keeps the browser bundle small (the `Type` object drags in all of TypeBox's type engine).
import * as Type from 'typebox';
import type { Static, TSchema } from 'typebox';
import {
  MEDIA_KINDS,
  MEDIA_MODES,
  MEDIA_SOURCES,
  ROLES,
  type LessonView,
  type LinkView,
  type MediaKind,
  type ParticipantView,
  type ProducerView,
  type RecordingStatus,
  type Role,
} from '../domain/index.js';

export const PROTOCOL_VERSION = 2;

const Id = Type.String({ minLength: 1, maxLength: 128 });
/** mediasoup validates media parameters deeply; we bound their size and shape, and check the numbers it would take out of range. */
const Open = <P extends Record<string, TSchema>>(properties: P) =>
  Type.Object(properties, { additionalProperties: true, maxProperties: 64 });
/** Checked against `schema`, typed as the opaque record clients pass through from mediasoup-client or werift. */
const MediaRecord = (schema: TSchema) => Type.Unsafe<Record<string, unknown>>(schema);

/** RTP payload types are 7 bits (RFC 3550). */
const PayloadType = Type.Integer({ minimum: 0, maximum: 127 });
/**
 * Header extension ids: 1–255, the two-byte form of RFC 8285, which browsers and mediasoup
 * negotiate (extmap-allow-mixed); the one-byte form's 1–14 would refuse ids they may use.
 */
const ExtensionId = Type.Integer({ minimum: 1, maximum: 255 });
const RtpParameters = MediaRecord(
  Open({
    codecs: Type.Array(Open({ payloadType: PayloadType }), { maxItems: 32 }),
    headerExtensions: Type.Optional(Type.Array(Open({ id: ExtensionId }), { maxItems: 32 })),
  }),
);
const RtpCapabilities = MediaRecord(
  Open({
    codecs: Type.Optional(Type.Array(Open({ preferredPayloadType: Type.Optional(PayloadType) }), { maxItems: 128 })),
    headerExtensions: Type.Optional(Type.Array(Open({ preferredId: ExtensionId }), { maxItems: 64 })),
  }),
);

/** Digest sizes of the DTLS fingerprint algorithms (RFC 8122): the value is that many hex pairs, colon-separated, either case. */
const FINGERPRINT_BYTES = { 'sha-1': 20, 'sha-224': 28, 'sha-256': 32, 'sha-384': 48, 'sha-512': 64 } as const;
const Fingerprint = Type.Object(
  { algorithm: Type.Enum(Object.keys(FINGERPRINT_BYTES)), value: Type.String({ maxLength: 191 }) },
  {
    additionalProperties: false,
    // One rule per algorithm: the value's length depends on it (JSON Schema if/then).
    allOf: Object.entries(FINGERPRINT_BYTES).map(([algorithm, bytes]) => ({
      if: { properties: { algorithm: { const: algorithm } } },
      then: {
        description: `a ${algorithm} fingerprint is ${bytes} colon-separated hex pairs`,
        properties: { value: { pattern: `^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){${bytes - 1}}$` } },
      },
    })),
  },
);
const DtlsParameters = MediaRecord(
  Type.Object(
    {
      role: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('client'), Type.Literal('server')])),
      fingerprints: Type.Array(Fingerprint, { minItems: 1, maxItems: 8 }),
    },
    { additionalProperties: false },
  ),
);

/** A union of literals from one of the domain's word lists, typed as the list's union. */
const OneOf = <T extends string>(words: readonly T[]) => Type.Unsafe<T>(Type.Union(words.map((w) => Type.Literal(w))));

export const RoleSchema = OneOf(ROLES);
const MediaSourceSchema = OneOf(MEDIA_SOURCES);
const MediaKindSchema = OneOf(MEDIA_KINDS);
const MediaModeSchema = OneOf(MEDIA_MODES);

export const Direction = Type.Union([Type.Literal('send'), Type.Literal('recv')]);

/** Every request method with the schema of its `data`. */
export const RequestSchemas = {
  authenticate: Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
  join: Type.Object({ lessonId: Id }, { additionalProperties: false }),
  leave: Type.Object({}, { additionalProperties: false }),
  goLive: Type.Object({}, { additionalProperties: false }),
  endLesson: Type.Object({}, { additionalProperties: false }),
  createTransport: Type.Object({ direction: Direction, forceTcp: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  connectTransport: Type.Object({ transportId: Id, dtlsParameters: DtlsParameters }, { additionalProperties: false }),
  restartIce: Type.Object({ transportId: Id }, { additionalProperties: false }),
  produce: Type.Object(
    {
      transportId: Id,
      kind: MediaKindSchema,
      rtpParameters: RtpParameters,
      source: MediaSourceSchema,
    },
    { additionalProperties: false },
  ),
  closeProducer: Type.Object({ producerId: Id }, { additionalProperties: false }),
  consume: Type.Object({ transportId: Id, producerId: Id, rtpCapabilities: RtpCapabilities }, { additionalProperties: false }),
  resumeConsumer: Type.Object({ consumerId: Id }, { additionalProperties: false }),
  pauseConsumer: Type.Object({ consumerId: Id }, { additionalProperties: false }),
  setPreferredLayers: Type.Object(
    {
      consumerId: Id,
      spatialLayer: Type.Integer({ minimum: 0, maximum: 2 }),
      temporalLayer: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 })),
    },
    { additionalProperties: false },
  ),
  raiseHand: Type.Object({}, { additionalProperties: false }),
  lowerHand: Type.Object({ participantId: Type.Optional(Id) }, { additionalProperties: false }),
  grantFloor: Type.Object({ participantId: Id }, { additionalProperties: false }),
  revokeFloor: Type.Object({ participantId: Id }, { additionalProperties: false }),
  oneWayStream: Type.Object({}, { additionalProperties: false }),
  reportMediaMode: Type.Object({ mode: MediaModeSchema }, { additionalProperties: false }),
} satisfies Record<string, TSchema>;

export type Method = keyof typeof RequestSchemas;
export type RequestData<M extends Method> = Static<(typeof RequestSchemas)[M]>;
export const METHODS = Object.keys(RequestSchemas) as Method[];

export const RequestEnvelope = Type.Object(
  {
    kind: Type.Literal('request'),
    id: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 64 })]),
    method: Type.String({ minLength: 1, maxLength: 64 }),
    data: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
export type RequestEnvelope = Static<typeof RequestEnvelope>;

/** A TURN server with this participant's time-limited credentials (RTCIceServer). */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}
/** 'relay': only TURN-relayed candidates (schools listed in turn.relaySchools). */
export type IceTransportPolicy = 'all' | 'relay';

/** What each method answers with. */
export interface ResponseData {
  authenticate: { participantId: string; role: Role; name: string; protocolVersion: number };
  join: {
    lesson: LessonView;
    participantId: string;
    rejoined: boolean;
    routerRtpCapabilities: Record<string, unknown>;
    participants: ParticipantView[];
    producers: ProducerView[];
    /** Whether the lesson is being recorded right now. */
    recording: RecordingStatus;
    /** For mediasoup-client's createSendTransport/createRecvTransport; [] when the server has no turn.urls. */
    iceServers: IceServer[];
    iceTransportPolicy: IceTransportPolicy;
    /** Links the weak-link policy has judged so far: every school's for the instructor, one's own otherwise. */
    links: LinkView[];
  };
  leave: Record<string, never>;
  goLive: { lesson: LessonView };
  endLesson: { lesson: LessonView };
  createTransport: {
    transportId: string;
    iceParameters: Record<string, unknown>;
    iceCandidates: Array<Record<string, unknown>>;
    dtlsParameters: Record<string, unknown>;
  };
  connectTransport: Record<string, never>;
  restartIce: { iceParameters: Record<string, unknown> };
  produce: { producerId: string };
  closeProducer: Record<string, never>;
  consume: {
    consumerId: string;
    producerId: string;
    kind: MediaKind;
    rtpParameters: Record<string, unknown>;
    paused: boolean;
    producerPaused: boolean;
  };
  resumeConsumer: Record<string, never>;
  pauseConsumer: Record<string, never>;
  setPreferredLayers: Record<string, never>;
  raiseHand: { handRaisedAt: number };
  lowerHand: Record<string, never>;
  grantFloor: Record<string, never>;
  revokeFloor: Record<string, never>;
  /** The lesson's live HLS for a page that cannot receive WebRTC (one-way mode); ask again after renewAfterSeconds. */
  oneWayStream: OneWayStream;
  reportMediaMode: Record<string, never>;
}

/** A link to a live lesson's recording as it is written (docs/protocol.md, *One-way mode*). */
export interface OneWayStream {
  /** Path on this server of the master playlist, with an `?access=` capability for this one recording's files. */
  url: string;
  /** When the capability stops working (server clock). */
  expiresAt: string;
  /** Ask again this many seconds from now (half the capability's life); the new capability replaces the old in every request. */
  renewAfterSeconds: number;
  /** The server's clock when it answered, to read the playlists' programme date-times against. */
  serverTime: string;
  /** The recording's HLS segment length (recording.segmentSeconds): the delay is about two to three of them. */
  segmentSeconds: number;
}

/** Server notifications and their data. */
export interface NotificationData {
  newProducer: ProducerView;
  producerClosed: { producerId: string };
  consumerClosed: { consumerId: string; producerId: string };
  consumerLayersChanged: { consumerId: string; spatialLayer: number | null; temporalLayer: number | null };
  /** The weak-link policy's word on a participant's link changed (to that participant and to the instructor). */
  linkChanged: LinkView;
  participantJoined: ParticipantView;
  participantUpdated: ParticipantView;
  participantLeft: { participantId: string };
  handRaised: { participantId: string; at: number };
  handLowered: { participantId: string };
  floorGranted: { participantId: string };
  floorRevoked: { participantId: string };
  lessonStarted: { lesson: LessonView };
  lessonEnded: { lesson: LessonView; reason: string };
  recordingChanged: RecordingStatus;
  reconnectRequested: { reason: string };
  sessionReplaced: Record<string, never>;
  serverShuttingDown: { reason: string };
}
export type NotificationEvent = keyof NotificationData;

export type ErrorReply = { code: string; message: string; details?: Record<string, unknown> };

export type ServerMessage =
  | { kind: 'response'; id: number | string | null; ok: true; data: unknown }
  | { kind: 'response'; id: number | string | null; ok: false; error: ErrorReply }
  | { [E in NotificationEvent]: { kind: 'notification'; event: E; data: NotificationData[E] } }[NotificationEvent];
