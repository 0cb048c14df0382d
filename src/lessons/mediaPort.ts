import type { EventEmitter } from 'node:events';
import type { LinkLayer, MediaKind, MediaSource } from '../domain/index.js';

/**
 * What a lesson needs of media, and nothing about how it is made: `media/LessonMedia` implements
 * it on this node's mediasoup routers; a router on another node can implement it later; unit
 * tests implement it with a small fake. Media parameters (RTP, ICE, DTLS) pass through as
 * opaque records: the lesson checks who may do what, the media layer checks the parameters.
 */
export type MediaParameters = Record<string, unknown>;

export interface TransportParams {
  transportId: string;
  iceParameters: MediaParameters;
  iceCandidates: MediaParameters[];
  dtlsParameters: MediaParameters;
}

export interface ConsumerParams {
  consumerId: string;
  producerId: string;
  kind: MediaKind;
  rtpParameters: MediaParameters;
  paused: boolean;
  producerPaused: boolean;
}

/** A producer as the lesson tracks it: whose it is and what it carries. */
export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: MediaKind;
  source: MediaSource;
}

/** How many media objects one participant holds (the lesson caps each). */
export interface HeldMedia {
  transports: number;
  producers: number;
  consumers: number;
}

export type LessonMediaEvents = {
  producerClosed: [info: ProducerInfo];
  consumerClosed: [peerId: string, consumerId: string, producerId: string];
  consumerLayersChanged: [peerId: string, consumerId: string, spatialLayer: number | null, temporalLayer: number | null];
  /** What a peer's link lets through changed (the weak-link policy; docs/links.md). */
  linkChanged: [peerId: string, layer: LinkLayer, availableKbps: number | null];
  /** The media of these peers was lost (e.g. their router's worker died): they must set it up again. */
  mediaLost: [peerIds: string[], reason: string];
};

export interface LessonMediaPort extends Pick<EventEmitter<LessonMediaEvents>, 'on' | 'off'> {
  /** Creates what the lesson's media needs on first use (lessons may be created long before they start). */
  ensureOpen(): Promise<void>;
  /** What receivers need to know of the lesson's codecs (valid after ensureOpen). */
  readonly rtpCapabilities: MediaParameters;
  listProducers(): ProducerInfo[];
  held(peerId: string): HeldMedia;
  createTransport(peerId: string, direction: 'send' | 'recv', forceTcp?: boolean): Promise<TransportParams>;
  connectTransport(peerId: string, transportId: string, dtlsParameters: MediaParameters): Promise<void>;
  restartIce(peerId: string, transportId: string): Promise<MediaParameters>;
  /** The new producer's id. */
  produce(peerId: string, transportId: string, kind: MediaKind, rtpParameters: MediaParameters, source: MediaSource): Promise<string>;
  closeProducer(peerId: string, producerId: string): void;
  closeProducersOf(peerId: string): void;
  consume(peerId: string, transportId: string, producerId: string, rtpCapabilities: MediaParameters): Promise<ConsumerParams>;
  resumeConsumer(peerId: string, consumerId: string): Promise<void>;
  pauseConsumer(peerId: string, consumerId: string): Promise<void>;
  setPreferredLayers(peerId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void>;
  /** A participant leaves or reconnects: everything of theirs closes. */
  closePeer(peerId: string): void;
  /** Idempotent. */
  close(): void;
}
