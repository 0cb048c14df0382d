/**
 * One-way mode: when this board's receive transport does not connect (a school network with no
 * UDP and no reachable TURN), the lesson is watched from its live recording instead — HLS over the
 * page's own HTTP(S) origin, with a delay of a few segments. WebRTC keeps trying underneath (the
 * media session restarts ICE whenever its transport fails) and the page goes back to live media
 * the moment the receive transport connects. Signalling is untouched, so the hand still works;
 * speaking does not (docs/web.md, *One-way mode*).
 */
import type HlsType from 'hls.js';
import type { OneWayStream } from '../../../../src/signalling/protocol.js';
import { tryPlay } from '../../lib/dom.js';
import { SignalError } from '../../lib/signal.js';

/** The receive transport not connected this long → one-way mode. */
export const ONE_WAY_AFTER_MS = 15_000;
/** hls.js plays this many segments behind the newest listed one: fewer stalls at the edge, more delay. */
const LIVE_SYNC_SEGMENTS = 1.5;
/** After a failed request or a fatal player error, try again after this long. */
const RETRY_MS = 5000;

/**
 * What the stage shows: live WebRTC (or not decided yet), the live recording, or nothing to fall
 * back to (the lesson is not recorded, its recording is not running, or this browser has no MSE).
 */
export type StageMode = 'live' | 'one-way' | 'no-fallback';
export type NoFallbackReason = 'notRecorded' | 'notRunning' | 'noHls';

export interface OneWayDeps {
  /** The `<video>` the live recording plays in. */
  video: HTMLVideoElement;
  /** Asks the server for a link (`oneWayStream`); rejects with a SignalError. */
  request(): Promise<OneWayStream>;
  /** The mode, the player's state or the delay changed: render. */
  onChange(): void;
}

export class OneWayFallback {
  mode: StageMode = 'live';
  reason: NoFallbackReason | undefined;
  /** Seconds from capture to display, measured on the playing picture (programme date-time), or estimated before that. */
  delaySeconds: number | null = null;
  /** Sound was refused without a user gesture: the picture plays muted until "Turn sound on". */
  mutedByBrowser = false;
  private connected = false;
  private armed?: number;
  private retryTimer?: number;
  private renewTimer?: number;
  private hls: HlsType | undefined;
  private access = '';
  /** Server clock minus this clock (ms), from the last answer. */
  private clockOffsetMs = 0;
  private delayShownAt = 0;
  private readonly stats = { renewals: 0, starts: 0, capabilitiesUsed: new Set<string>(), errors: [] as string[] };

  constructor(private readonly deps: OneWayDeps) {
    deps.video.addEventListener('timeupdate', () => this.onTime());
    deps.video.addEventListener('playing', () => this.setPlaying(true));
    deps.video.addEventListener('waiting', () => this.setPlaying(false));
  }

  get active(): boolean {
    return this.mode !== 'live';
  }

  /** The page started receiving (a consumer on the receive transport): the clock runs until it connects. */
  receiving(): void {
    if (!this.connected) this.arm();
  }

  /** The receive transport's state ('connected' ends one-way mode; anything else starts the clock). */
  transportState(state: string): void {
    this.connected = state === 'connected';
    if (!this.connected) return this.arm();
    clearTimeout(this.armed);
    this.armed = undefined;
    if (this.active) this.leave();
  }

  /** A new join: its receive transport has yet to connect (one-way mode, if on, stays on until it does). */
  rejoined(): void {
    this.connected = false;
    clearTimeout(this.armed);
    this.armed = undefined;
  }

  /** The lesson ended or the page goes away: stop everything. */
  stop(): void {
    clearTimeout(this.armed);
    this.armed = undefined;
    this.leave();
  }

  /** "Turn sound on" was clicked. */
  async resumeSound(): Promise<boolean> {
    if (this.mode !== 'one-way') return true;
    this.deps.video.muted = false;
    const ok = await tryPlay(this.deps.video);
    this.mutedByBrowser = !ok;
    if (!ok) {
      this.deps.video.muted = true;
      void tryPlay(this.deps.video);
    }
    return ok;
  }

  diagnostics() {
    const v = this.deps.video;
    return {
      mode: this.mode,
      reason: this.reason ?? null,
      afterMs: ONE_WAY_AFTER_MS,
      playing: v.dataset['state'] === 'playing',
      currentTime: v.currentTime,
      videoWidth: v.videoWidth,
      framesDecoded: v.getVideoPlaybackQuality().totalVideoFrames,
      delaySeconds: this.delaySeconds,
      latency: this.hls?.latency ?? null,
      renewals: this.stats.renewals,
      starts: this.stats.starts,
      /** Distinct capabilities the player's requests carried (renewals replace them). */
      capabilitiesUsed: this.stats.capabilitiesUsed.size,
      errors: [...this.stats.errors],
    };
  }

  // -- switching -----------------------------------------------------------------

  private arm(): void {
    if (this.armed !== undefined || this.active) return;
    this.armed = window.setTimeout(() => {
      this.armed = undefined;
      if (!this.connected) this.enter();
    }, ONE_WAY_AFTER_MS);
  }

  private enter(): void {
    this.mode = 'one-way';
    this.reason = undefined;
    this.deps.onChange();
    void this.start();
  }

  private leave(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.renewTimer);
    this.destroyPlayer();
    this.mode = 'live';
    this.reason = undefined;
    this.delaySeconds = null;
    this.deps.onChange();
  }

  private noFallback(reason: NoFallbackReason): void {
    this.destroyPlayer();
    this.mode = 'no-fallback';
    this.reason = reason;
    this.deps.onChange();
  }

  // -- the player ------------------------------------------------------------------

  private async start(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.stats.starts++;
    let stream: OneWayStream;
    try {
      stream = await this.deps.request();
    } catch (e) {
      return this.refused(e);
    }
    const { default: Hls } = await import('hls.js');
    if (!this.active) return; // WebRTC connected meanwhile
    if (!Hls.isSupported()) return this.noFallback('noHls');
    this.accept(stream);
    this.mode = 'one-way';
    this.reason = undefined;
    this.destroyPlayer();
    const video = this.deps.video;
    const segment = stream.segmentSeconds;
    this.delaySeconds ??= Math.round(segment * (LIVE_SYNC_SEGMENTS + 1));
    const hls = new Hls({
      enableWorker: true,
      // Behind the newest listed segment by this much; caught up (seek) past the maximum, e.g. after a stall.
      liveSyncDuration: segment * LIVE_SYNC_SEGMENTS,
      liveMaxLatencyDuration: segment * (LIVE_SYNC_SEGMENTS + 3),
      maxLiveSyncPlaybackRate: 1.1,
      // Every request carries the newest capability: a renewal takes effect at the next playlist reload or segment.
      xhrSetup: (xhr, url) => {
        const u = new URL(url, location.href);
        if (u.searchParams.has('access')) u.searchParams.set('access', this.access);
        this.stats.capabilitiesUsed.add(this.access);
        xhr.open('GET', u.toString(), true);
      },
    });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_ev, data) => {
      this.note(`${data.fatal ? 'fatal ' : ''}${data.details}`);
      if (!data.fatal || this.hls !== hls) return;
      // A playlist not there yet, an expired capability, a network fault: ask again shortly.
      this.destroyPlayer();
      this.retry();
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => void this.play());
    hls.loadSource(stream.url);
    hls.attachMedia(video);
    this.deps.onChange();
  }

  private async play(): Promise<void> {
    const video = this.deps.video;
    video.muted = false;
    if (await tryPlay(video)) return;
    // No sound without a gesture: play the picture muted, and offer "Turn sound on".
    this.mutedByBrowser = true;
    video.muted = true;
    await tryPlay(video);
    this.deps.onChange();
  }

  private refused(e: unknown): void {
    const err = e instanceof SignalError ? e : new SignalError('INTERNAL', String(e));
    this.note(err.code);
    if (!this.active) return;
    if (err.code === 'NOT_RECORDING') {
      const reason = err.details?.['reason'] === 'notRecorded' ? 'notRecorded' : 'notRunning';
      this.noFallback(reason);
      // A lesson that is not recorded never will be; a recorder that is not running may start again.
      if (reason === 'notRecorded') return;
    }
    this.retry();
  }

  private retry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => void (this.active && this.start()), RETRY_MS);
  }

  private accept(stream: OneWayStream): void {
    this.access = new URL(stream.url, location.href).searchParams.get('access') ?? '';
    this.clockOffsetMs = Date.parse(stream.serverTime) - Date.now();
    clearTimeout(this.renewTimer);
    this.renewTimer = window.setTimeout(() => void this.renew(), Math.max(1, stream.renewAfterSeconds) * 1000);
  }

  /** A fresh capability before the current one expires (it has half its life left). */
  private async renew(): Promise<void> {
    if (this.mode !== 'one-way') return;
    try {
      this.accept(await this.deps.request());
      this.stats.renewals++;
    } catch (e) {
      this.note(`renew ${e instanceof SignalError ? e.code : String(e)}`);
      this.renewTimer = window.setTimeout(() => void this.renew(), RETRY_MS);
    }
  }

  private destroyPlayer(): void {
    this.hls?.destroy();
    this.hls = undefined;
    const video = this.deps.video;
    video.removeAttribute('src');
    video.load();
    this.setPlaying(false);
  }

  private setPlaying(playing: boolean): void {
    this.deps.video.dataset['state'] = playing && this.hls ? 'playing' : 'stopped';
  }

  /** The delay as the picture shows it: now (on the server's clock) minus the programme date-time being shown. */
  private onTime(): void {
    const shown = this.hls?.playingDate;
    if (!shown) return;
    const delay = (Date.now() + this.clockOffsetMs - shown.getTime()) / 1000;
    if (!(delay > 0 && delay < 600)) return;
    // The notice changes at most every 5 s, and only by whole seconds.
    if (Date.now() - this.delayShownAt < 5000) return;
    this.delayShownAt = Date.now();
    const rounded = Math.round(delay);
    if (rounded !== this.delaySeconds) {
      this.delaySeconds = rounded;
      this.deps.onChange();
    }
  }

  private note(error: string): void {
    this.stats.errors.push(error);
    this.stats.errors.splice(0, this.stats.errors.length - 20);
  }
}
