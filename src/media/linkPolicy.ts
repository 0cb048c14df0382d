import type { types } from 'mediasoup';
import type { LinkLayer } from '../domain/index.js';

/**
 * lessoncast's weak-link policy (settings media.links.*, docs/links.md). mediasoup already picks
 * each consumer's simulcast layer from its transport's bandwidth estimate, and already coalesces
 * keyframe requests per producer stream (the producer's keyFrameRequestDelay); this adds what it
 * does not do: hold a receiver under pressure at a floor layer instead of letting it swing between
 * layers (each climb costs a keyframe from the publisher's encoder, which every receiver gets), and
 * pause the video of a receiver whose link cannot carry it so its audio stays clean.
 */
export interface LinkSettings {
  enabled: boolean;
  checkSeconds: number;
  floorBelowKbps: number;
  floorSpatialLayer: number;
  pauseBelowKbps: number;
  resumeAboveKbps: number;
  holdSeconds: number;
  retrySeconds: number;
  keyFrameRequestDelayMs: number;
  cameraPriority: number;
  screenPriority: number;
}

/** A held receiver is let go (back to its own preferred layers) once its estimate is this far above floorBelowKbps. */
export const FLOOR_RELEASE_FACTOR = 1.25;
/** mediasoup takes layers above the producer's as its best. */
const BEST: types.ConsumerLayers = { spatialLayer: 255 };
/** A failed try doubles the wait before the next, this many times at most. */
const MAX_RETRY_DOUBLINGS = 3;

/** 'open': mediasoup chooses freely; 'floor': held at the floor layer; 'paused': audio only. */
export type LinkMode = 'open' | 'floor' | 'paused';

/**
 * The policy's rules for one receive transport, as a pure state machine over bandwidth estimates
 * (bps, at a time in ms). Each threshold must hold for holdSeconds before the mode changes.
 */
export class LinkRules {
  mode: LinkMode = 'open';
  /** Since when the condition that would change the mode has held (null: it does not hold). */
  private belowPauseSince: number | null = null;
  private belowFloorSince: number | null = null;
  private aboveSince: number | null = null;
  private pausedAt = 0;
  private retries = 0;

  constructor(
    private readonly s: Pick<LinkSettings, 'floorBelowKbps' | 'pauseBelowKbps' | 'resumeAboveKbps' | 'holdSeconds' | 'retrySeconds'>,
  ) {}

  /** Takes one estimate; returns the new mode when it changed. */
  observe(now: number, availableBps: number): LinkMode | undefined {
    const kbps = availableBps / 1000;
    const hold = this.s.holdSeconds * 1000;
    const held = (since: number | null): boolean => since !== null && now - since >= hold;
    const track = (cond: boolean, since: number | null): number | null => (cond ? (since ?? now) : null);
    this.belowPauseSince = track(this.s.pauseBelowKbps > 0 && kbps < this.s.pauseBelowKbps, this.belowPauseSince);
    this.belowFloorSince = track(this.s.floorBelowKbps > 0 && kbps < this.s.floorBelowKbps, this.belowFloorSince);
    switch (this.mode) {
      case 'open':
        if (held(this.belowPauseSince)) return this.pause(now);
        // Held at the floor at once: waiting would let mediasoup climb and fall meanwhile.
        if (this.belowFloorSince !== null) return this.to('floor');
        return undefined;
      case 'floor': {
        if (held(this.belowPauseSince)) return this.pause(now);
        this.aboveSince = track(kbps >= this.s.floorBelowKbps * FLOOR_RELEASE_FACTOR, this.aboveSince);
        if (held(this.aboveSince)) {
          this.retries = 0;
          return this.to('open');
        }
        return undefined;
      }
      case 'paused': {
        this.aboveSince = track(kbps >= this.s.resumeAboveKbps, this.aboveSince);
        if (held(this.aboveSince)) {
          this.retries = 0;
          return this.unpause();
        }
        // The estimate of a link carrying only audio may never climb: try video again now and then.
        const wait = this.s.retrySeconds * 1000 * 2 ** Math.min(this.retries, MAX_RETRY_DOUBLINGS);
        if (now - this.pausedAt >= wait) {
          this.retries++;
          return this.unpause();
        }
        return undefined;
      }
    }
  }

  private pause(now: number): LinkMode {
    this.pausedAt = now;
    return this.to('paused');
  }

  /** Back at the floor layer: the link gets a whole holdSeconds to show it carries video. */
  private unpause(): LinkMode {
    this.belowPauseSince = null;
    return this.to('floor');
  }

  /** The clock of the threshold just passed starts over; the pause clock runs on from open to floor. */
  private to(mode: LinkMode): LinkMode {
    this.mode = mode;
    this.aboveSince = null;
    if (mode === 'paused') this.belowPauseSince = null;
    return mode;
  }
}

/** The layer word for a simulcast consumer's current spatial layer out of `layers` (null: no video flows). */
export function layerWord(spatialLayer: number | null | undefined, layers: number): LinkLayer | undefined {
  if (spatialLayer === null || spatialLayer === undefined) return undefined;
  if (layers <= 1 || spatialLayer >= layers - 1) return 'high';
  return spatialLayer <= 0 ? 'low' : 'medium';
}

/** What the policy needs of the lesson's media: the receive transports and the consumers on each. */
export interface LinkSubject {
  /** Every WebRTC receive transport with its owner. */
  recvTransports(): Array<{ peerId: string; transport: types.WebRtcTransport }>;
  /** The video consumers on one transport. */
  videoConsumers(transportId: string): types.Consumer[];
  /** The layers a consumer's receiver asked for (setPreferredLayers), or undefined for the best. */
  preferredLayers(consumerId: string): types.ConsumerLayers | undefined;
  /** Whether the receiver itself paused (or has not yet resumed) this consumer. */
  pausedByClient(consumerId: string): boolean;
  /** A participant's link changed (layer word or paused). */
  changed(peerId: string, layer: LinkLayer, availableKbps: number | null): void;
  /** A policy action failed (its object closed meanwhile, most likely). */
  failed(err: unknown): void;
}

interface TransportLink {
  peerId: string;
  rules: LinkRules;
  availableBps: number | null;
  /** Consumers this policy paused (the receiver wanted them running). */
  held: Set<string>;
  reported?: LinkLayer;
}

/**
 * Runs the rules over every receive transport of one lesson, every checkSeconds, and acts on the
 * consumers: preferred layers to the floor and back, pause and resume. Nothing runs while no one
 * receives; close() stops it.
 */
export class LinkPolicy {
  private readonly links = new Map<string, TransportLink>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly s: LinkSettings,
    private readonly subject: LinkSubject,
  ) {}

  start(): void {
    if (!this.s.enabled || this.timer || this.closed) return;
    this.timer = setInterval(() => void this.check(), this.s.checkSeconds * 1000);
    this.timer.unref();
  }

  /** Whether the policy holds this transport's video paused (a consumer resumed by its receiver stays paused). */
  holdsPaused(transportId: string): boolean {
    return this.links.get(transportId)?.rules.mode === 'paused';
  }

  /** A consumer its receiver wants running while the policy holds it paused: resumed with the others. */
  hold(transportId: string, consumerId: string): void {
    this.links.get(transportId)?.held.add(consumerId);
  }

  /** The layers a new or re-preferred consumer on this transport is to get now (the floor while held there). */
  layersFor(transportId: string, wanted: types.ConsumerLayers | undefined): types.ConsumerLayers | undefined {
    const mode = this.links.get(transportId)?.rules.mode;
    if (mode === 'floor' || mode === 'paused') return this.floorOf(wanted);
    return wanted;
  }

  /** One pass over every receive transport (the timer's job; tests call it). */
  check(): Promise<void> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.links.clear();
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    const seen = new Set<string>();
    for (const { peerId, transport } of this.subject.recvTransports()) {
      if (this.closed) return;
      seen.add(transport.id);
      let link = this.links.get(transport.id);
      if (!link) this.links.set(transport.id, (link = { peerId, rules: new LinkRules(this.s), availableBps: null, held: new Set() }));
      try {
        const [stats] = await transport.getStats();
        link.availableBps = stats?.availableOutgoingBitrate ?? null;
        if (link.availableBps !== null) {
          const mode = link.rules.observe(now, link.availableBps);
          if (mode) await this.apply(transport.id, link, mode);
        }
        this.report(transport.id, link);
      } catch (err) {
        if (!transport.closed) this.subject.failed(err);
      }
    }
    for (const id of this.links.keys()) if (!seen.has(id)) this.links.delete(id);
  }

  private async apply(transportId: string, link: TransportLink, mode: LinkMode): Promise<void> {
    for (const c of this.subject.videoConsumers(transportId)) {
      if (mode === 'paused') {
        if (!c.paused) {
          link.held.add(c.id);
          await c.pause();
        }
        continue;
      }
      const wanted = this.subject.preferredLayers(c.id);
      if (c.type === 'simulcast' || c.type === 'svc') {
        const layers = mode === 'floor' ? this.floorOf(wanted) : (wanted ?? BEST);
        if (layers) await c.setPreferredLayers(layers);
      }
      // Back from a pause: the lowest layer first (set just above), then what the link carries.
      if (link.held.delete(c.id) && c.paused && !this.subject.pausedByClient(c.id)) {
        await c.resume();
        await c.requestKeyFrame().catch(() => undefined);
      }
    }
  }

  /** The floor layer, never above what the receiver asked for itself. */
  private floorOf(wanted: types.ConsumerLayers | undefined): types.ConsumerLayers {
    const spatialLayer = Math.min(this.s.floorSpatialLayer, wanted?.spatialLayer ?? Number.MAX_SAFE_INTEGER);
    return { spatialLayer, ...(wanted?.temporalLayer !== undefined ? { temporalLayer: wanted.temporalLayer } : {}) };
  }

  /** Tells the participant's link word when it changed. */
  private report(transportId: string, link: TransportLink): void {
    let layer: LinkLayer | undefined;
    if (link.rules.mode === 'paused') layer = 'audio-only';
    else {
      const video = this.subject.videoConsumers(transportId).filter((c) => !c.paused && !c.producerPaused);
      // The camera decides (a screen share is one layer); the first video otherwise.
      const c = video.find((x) => x.type === 'simulcast' || x.type === 'svc') ?? video[0];
      if (!c) return;
      if (c.type === 'simulcast' || c.type === 'svc') layer = layerWord(c.currentLayers?.spatialLayer, spatialLayersOf(c));
      else layer = 'high';
    }
    if (!layer || layer === link.reported) return;
    link.reported = layer;
    this.subject.changed(link.peerId, layer, link.availableBps === null ? null : Math.round(link.availableBps / 1000));
  }
}

/** How many spatial layers a consumer's producer sends (simulcast: one per encoding). */
function spatialLayersOf(c: types.Consumer): number {
  const mode = c.rtpParameters.encodings?.[0]?.scalabilityMode;
  const m = mode ? /^[LS](\d+)/.exec(mode) : null;
  return m ? Number(m[1]) : 1;
}
