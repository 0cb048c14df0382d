/** What one participant may hold and do (lessons.* settings). */
export interface ParticipantLimits {
  transports: number;
  producers: number;
  consumers: number;
  /** Hand and floor actions at once… */
  actionBurst: number;
  /** …and refilled per second. */
  actionsPerSecond: number;
}

/** The participant caps, by the name errors and metrics give them. */
export type HeldKind = 'transports' | 'producers' | 'consumers';

/**
 * A token bucket: `burst` actions at once, then `perSecond`. Kept with the participant, so a
 * reconnection does not refill it.
 */
export class TokenBucket {
  private tokens: number;
  private at = Date.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token: undefined when taken, else the whole seconds until one is back. */
  take(now = Date.now()): number | undefined {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / this.perSecond));
  }
}
