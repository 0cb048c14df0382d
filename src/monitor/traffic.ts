export interface TrafficCounts {
  bytesIn: number;
  packetsIn: number;
  bytesOut: number;
  packetsOut: number;
}

const zero = (): TrafficCounts => ({ bytesIn: 0, packetsIn: 0, bytesOut: 0, packetsOut: 0 });

/**
 * Node-wide traffic totals built from the cumulative counters each sampling
 * tick reads anyway: bytes from transports (RTP, RTCP, ICE, DTLS), packets
 * from producers (in) and consumers (out). An object that is
 * no longer seen has closed: its last values are kept, so the totals only grow
 * (what it carried after its last sample is not counted).
 */
export class TrafficTotals {
  private readonly current = new Map<string, TrafficCounts>();
  private readonly seen = new Set<string>();
  private readonly closed = zero();

  beginTick(): void {
    this.seen.clear();
  }

  /** The cumulative counters of one transport (bytes) or RTP stream (packets), as read now. */
  record(objectId: string, counts: Partial<TrafficCounts>): void {
    this.current.set(objectId, { ...zero(), ...counts });
    this.seen.add(objectId);
  }

  endTick(): void {
    for (const [id, c] of this.current) {
      if (this.seen.has(id)) continue;
      add(this.closed, c);
      this.current.delete(id);
    }
  }

  totals(): TrafficCounts {
    const t = { ...this.closed };
    for (const c of this.current.values()) add(t, c);
    return t;
  }
}

function add(into: TrafficCounts, c: TrafficCounts): void {
  into.bytesIn += c.bytesIn;
  into.packetsIn += c.packetsIn;
  into.bytesOut += c.bytesOut;
  into.packetsOut += c.packetsOut;
}
