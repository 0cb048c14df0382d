/**
 * The fan-out bench's browser-classroom outputs (issue 18): each a WebRTC receive transport made
 * by the target as for a classroom (FanoutTarget.openBrowserOutput), consumed with exactly the
 * Chromium fixture's capabilities, connected over ICE and DTLS-SRTP by a kit/lightReceiver.ts.
 *
 * The first k outputs have real receivers: they read every packet and send transport-cc feedback
 * and receiver reports, so the SFU's bandwidth estimation runs closed-loop on them, and they are
 * the step's loss probes. The other n − k are mute stand-ins: same transport, same consumers,
 * same handshake and consent checks, but their socket is never read and they send no feedback
 * (kit/lightReceiver.ts), so the generator can afford hundreds. The bench's agreement check
 * measures both kinds at the same n.
 */
import type { types } from 'mediasoup';
import { LightReceiver } from '../../kit/lightReceiver.js';
import { inBatches } from '../lib.js';
import type { LossProbe } from './probes.js';
import type { BrowserOutput, FanoutTarget } from './target.js';

interface Output {
  out: BrowserOutput;
  rx: LightReceiver;
  mute: boolean;
}

/** Handshakes at once (each an ICE check and a DTLS handshake in JavaScript on the generator's core). */
const PARALLEL = 8;
const TRIES = 3;

export class BrowserOutputs {
  private readonly outputs: Output[] = [];

  constructor(
    private readonly target: FanoutTarget,
    private readonly rtpCapabilities: types.RtpCapabilities,
  ) {
    if (!target.openBrowserOutput) throw new Error(`${target.name} has no browser-classroom outputs`);
  }

  /** Exactly n outputs, the first min(k, n) with real receivers, the rest mute; outputs of the wrong kind are replaced. */
  async set(n: number, k: number): Promise<void> {
    while (this.outputs.length > n) closeOutput(this.outputs.pop()!);
    const todo: number[] = [];
    for (let i = 0; i < n; i++) {
      const o = this.outputs[i];
      if (o && o.mute === i >= k) continue;
      if (o) closeOutput(o);
      todo.push(i);
    }
    await inBatches(todo, PARALLEL, async (i) => {
      this.outputs[i] = await this.open(i, i >= k);
    });
  }

  get count(): number {
    return this.outputs.length;
  }

  /** The real receivers as loss probes (sequence numbers of every media packet they read). */
  probes(): LossProbe[] {
    return this.real().map((o, i) => ({ label: `browser-${i}`, counters: () => o.rx.counters() }));
  }

  /** Bandwidth estimates (bps) of the real receivers' transports, or of the stand-ins', sorted. */
  async estimates(standIns = false): Promise<number[]> {
    const all = await Promise.all(this.outputs.filter((o) => o.mute === standIns).map((o) => o.out.estimate()));
    return all.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  }

  /** Feedback messages and receiver reports the real receivers have sent so far. */
  sentFeedback(): { feedback: number; reports: number } {
    return this.real().reduce((a, o) => ({ feedback: a.feedback + o.rx.feedbackMessages, reports: a.reports + o.rx.reports }), {
      feedback: 0,
      reports: 0,
    });
  }

  close(): void {
    while (this.outputs.length) closeOutput(this.outputs.pop()!);
  }

  private real(): Output[] {
    return this.outputs.filter((o) => !o.mute);
  }

  /** Opens output i; a handshake lost on a busy generator core is tried again on a new transport. */
  private async open(i: number, mute: boolean): Promise<Output> {
    for (let attempt = 1; ; attempt++) {
      const out = await this.target.openBrowserOutput!(i, structuredClone(this.rtpCapabilities));
      try {
        const rx = await LightReceiver.connect({
          transport: out.transport,
          connect: out.connect,
          consumers: out.consumers,
          mute,
          connectTimeoutMs: 20_000,
        });
        await out.resume();
        return { out, rx, mute };
      } catch (err) {
        out.close();
        if (attempt >= TRIES) throw err;
        console.log(`browser output ${i}: ${(err as Error).message}; trying again`);
      }
    }
  }
}

function closeOutput(o: Output): void {
  o.rx.close();
  o.out.close();
}
