import { EventEmitter } from 'node:events';
import type { MediaKind, MediaSource } from '../../src/domain/index.js';
import { LessoncastError } from '../../src/errors.js';
import type {
  ConsumerParams,
  HeldMedia,
  LessonMediaEvents,
  LessonMediaPort,
  MediaParameters,
  ProducerInfo,
  TransportParams,
} from '../../src/lessons/mediaPort.js';

interface FakePeer {
  transports: Map<string, 'send' | 'recv'>;
  producers: Set<string>;
  consumers: Map<string, { producerId: string; paused: boolean }>;
}

/**
 * A lesson's media in memory: just enough bookkeeping to unit-test the lesson's rules (who may
 * publish, caps, the floor) without a mediasoup worker. Real media is tested in lesson-media.test.ts.
 */
export class FakeMedia extends EventEmitter<LessonMediaEvents> implements LessonMediaPort {
  readonly rtpCapabilities: MediaParameters = { codecs: [] };
  readonly producers = new Map<string, ProducerInfo>();
  readonly peers = new Map<string, FakePeer>();
  opened = 0;
  closed = false;
  private next = 0;

  async ensureOpen(): Promise<void> {
    this.opened++;
  }

  listProducers(): ProducerInfo[] {
    return [...this.producers.values()];
  }

  held(peerId: string): HeldMedia {
    const p = this.peers.get(peerId);
    return { transports: p?.transports.size ?? 0, producers: p?.producers.size ?? 0, consumers: p?.consumers.size ?? 0 };
  }

  async createTransport(peerId: string, direction: 'send' | 'recv'): Promise<TransportParams> {
    const transportId = this.id('t');
    this.peer(peerId).transports.set(transportId, direction);
    return { transportId, iceParameters: {}, iceCandidates: [], dtlsParameters: {} };
  }

  async connectTransport(peerId: string, transportId: string): Promise<void> {
    this.transport(peerId, transportId);
  }

  async restartIce(peerId: string, transportId: string): Promise<MediaParameters> {
    this.transport(peerId, transportId);
    return { usernameFragment: this.id('ice') };
  }

  async produce(peerId: string, transportId: string, kind: MediaKind, _rtp: MediaParameters, source: MediaSource): Promise<string> {
    if (this.transport(peerId, transportId) !== 'send')
      throw new LessoncastError('INVALID_REQUEST', 'cannot produce on a receive transport');
    const producerId = this.id('p');
    this.producers.set(producerId, { producerId, peerId, kind, source });
    this.peer(peerId).producers.add(producerId);
    return producerId;
  }

  closeProducer(peerId: string, producerId: string): void {
    if (!this.peers.get(peerId)?.producers.has(producerId))
      throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} of yours`);
    this.dropProducer(producerId);
  }

  closeProducersOf(peerId: string): void {
    for (const id of [...(this.peers.get(peerId)?.producers ?? [])]) this.dropProducer(id);
  }

  async consume(peerId: string, transportId: string, producerId: string): Promise<ConsumerParams> {
    if (this.transport(peerId, transportId) !== 'recv') throw new LessoncastError('INVALID_REQUEST', 'cannot consume on a send transport');
    const producer = this.producers.get(producerId);
    if (!producer) throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} in this lesson`);
    const consumerId = this.id('c');
    this.peer(peerId).consumers.set(consumerId, { producerId, paused: true });
    return { consumerId, producerId, kind: producer.kind, rtpParameters: {}, paused: true, producerPaused: false };
  }

  async resumeConsumer(peerId: string, consumerId: string): Promise<void> {
    this.consumer(peerId, consumerId).paused = false;
  }

  async pauseConsumer(peerId: string, consumerId: string): Promise<void> {
    this.consumer(peerId, consumerId).paused = true;
  }

  async setPreferredLayers(peerId: string, consumerId: string): Promise<void> {
    this.consumer(peerId, consumerId);
  }

  closePeer(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    for (const id of [...peer.producers]) this.dropProducer(id);
    this.peers.delete(peerId);
  }

  close(): void {
    this.closed = true;
    this.peers.clear();
    this.producers.clear();
  }

  private dropProducer(producerId: string): void {
    const info = this.producers.get(producerId);
    if (!info) return;
    this.producers.delete(producerId);
    this.peers.get(info.peerId)?.producers.delete(producerId);
    for (const [peerId, peer] of this.peers) {
      for (const [consumerId, c] of peer.consumers) {
        if (c.producerId !== producerId) continue;
        peer.consumers.delete(consumerId);
        this.emit('consumerClosed', peerId, consumerId, producerId);
      }
    }
    this.emit('producerClosed', info);
  }

  private peer(peerId: string): FakePeer {
    let p = this.peers.get(peerId);
    if (!p) this.peers.set(peerId, (p = { transports: new Map(), producers: new Set(), consumers: new Map() }));
    return p;
  }

  private transport(peerId: string, transportId: string): 'send' | 'recv' {
    const direction = this.peers.get(peerId)?.transports.get(transportId);
    if (!direction) throw new LessoncastError('TRANSPORT_NOT_FOUND', `no transport ${transportId} of yours`);
    return direction;
  }

  private consumer(peerId: string, consumerId: string): { producerId: string; paused: boolean } {
    const c = this.peers.get(peerId)?.consumers.get(consumerId);
    if (!c) throw new LessoncastError('CONSUMER_NOT_FOUND', `no consumer ${consumerId} of yours`);
    return c;
  }

  private id(prefix: string): string {
    return `${prefix}${++this.next}`;
  }
}
