import type { AlertRule } from '../live/types.js';

export interface AlertThresholds {
  /** Raise `packetLoss` when a school's loss stays above this (%)… */
  lossPct: number;
  /** …for at least this long. */
  lossSeconds: number;
  /** Raise `schoolDisconnected` once a school has been unreachable this long (0 = at once). */
  disconnectedSeconds: number;
  /** Raise `recordingFault` on every recording fault. */
  recordingFault: boolean;
}

export interface AlertOutcome {
  rule: AlertRule;
  state: 'raised' | 'cleared';
  lessonId: string;
  schoolId?: string;
  message: string;
  value?: number;
}

export interface SchoolObservation {
  connected: boolean;
  /** Loss over the interval just sampled; null when nothing was sent. */
  lossPct: number | null;
  /** Length of that interval (a lossy sample stands for the whole interval). */
  intervalMs: number;
  /** Why it counts as unreachable, for the alert message. */
  problem?: string;
}

interface SchoolAlerts {
  lossSince: number | null;
  lossRaised: boolean;
  downSince: number | null;
  downRaised: boolean;
  audioOnlyRaised: boolean;
}

/**
 * The alert rules, as a pure state machine over observations: each rule is
 * raised once when its condition has held long enough and cleared once when
 * it stops holding (or the school leaves).
 */
export class AlertRules {
  private readonly schools = new Map<string, SchoolAlerts>();
  private readonly faultyRecordings = new Set<string>();

  constructor(private readonly t: AlertThresholds) {}

  observe(now: number, lessonId: string, schoolId: string, o: SchoolObservation): AlertOutcome[] {
    const key = `${lessonId}/${schoolId}`;
    let s = this.schools.get(key);
    if (!s) this.schools.set(key, (s = newSchool()));
    const out: AlertOutcome[] = [];
    /** One outcome of this school's rules (the value, when given, is the measured loss). */
    const tell = (rule: AlertOutcome['rule'], state: AlertOutcome['state'], message: string, value?: number): void => {
      out.push({ lessonId, schoolId, rule, state, message, ...(value === undefined ? {} : { value }) });
    };

    if (!o.connected) {
      s.downSince ??= now;
      if (!s.downRaised && now - s.downSince >= this.t.disconnectedSeconds * 1000) {
        s.downRaised = true;
        tell('schoolDisconnected', 'raised', `${schoolId} is unreachable${o.problem ? `: ${o.problem}` : ''}`);
      }
      // Loss of a school that receives nothing is meaningless: that rule starts over.
      s.lossSince = null;
      if (s.lossRaised) {
        s.lossRaised = false;
        tell('packetLoss', 'cleared', `${schoolId} is unreachable; loss no longer measured`);
      }
      return out;
    }
    s.downSince = null;
    if (s.downRaised) {
      s.downRaised = false;
      tell('schoolDisconnected', 'cleared', `${schoolId} is reachable again`);
    }
    if (o.lossPct === null) return out;
    if (o.lossPct > this.t.lossPct) {
      s.lossSince ??= now - o.intervalMs;
      if (!s.lossRaised && now - s.lossSince >= this.t.lossSeconds * 1000) {
        s.lossRaised = true;
        const seconds = Math.round((now - s.lossSince) / 1000);
        tell(
          'packetLoss',
          'raised',
          `${schoolId} loses ${round1(o.lossPct)} % of packets (over ${this.t.lossPct} % for ${seconds} s)`,
          round1(o.lossPct),
        );
      }
    } else {
      s.lossSince = null;
      if (s.lossRaised) {
        s.lossRaised = false;
        tell('packetLoss', 'cleared', `${schoolId} loss back to ${round1(o.lossPct)} %`, round1(o.lossPct));
      }
    }
    return out;
  }

  /** The school left (or, without schoolId, the lesson ended): clear what was raised and forget it. */
  forget(lessonId: string, schoolId?: string): AlertOutcome[] {
    const out: AlertOutcome[] = [];
    for (const [key, s] of this.schools) {
      const [lid, sid] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
      if (lid !== lessonId || (schoolId !== undefined && sid !== schoolId)) continue;
      const why = schoolId ? 'left the lesson' : 'lesson ended';
      if (s.downRaised) out.push({ rule: 'schoolDisconnected', state: 'cleared', lessonId, schoolId: sid, message: `${sid} ${why}` });
      if (s.lossRaised) out.push({ rule: 'packetLoss', state: 'cleared', lessonId, schoolId: sid, message: `${sid} ${why}` });
      if (s.audioOnlyRaised) out.push({ rule: 'audioOnly', state: 'cleared', lessonId, schoolId: sid, message: `${sid} ${why}` });
      this.schools.delete(key);
    }
    if (!schoolId && this.faultyRecordings.delete(lessonId))
      out.push({ rule: 'recordingFault', state: 'cleared', lessonId, message: 'lesson ended' });
    return out;
  }

  /** The weak-link policy paused a school's video (raised) or let it back (cleared). */
  link(lessonId: string, schoolId: string, audioOnly: boolean, availableKbps: number | null): AlertOutcome[] {
    const key = `${lessonId}/${schoolId}`;
    let s = this.schools.get(key);
    if (!s) this.schools.set(key, (s = newSchool()));
    if (s.audioOnlyRaised === audioOnly) return [];
    s.audioOnlyRaised = audioOnly;
    const est = availableKbps === null ? '' : ` (link estimate ${availableKbps} kbit/s)`;
    const message = audioOnly
      ? `${schoolId} is on audio only: its video is paused for a weak link${est}`
      : `${schoolId} receives video again${est}`;
    return [
      {
        lessonId,
        schoolId,
        rule: 'audioOnly',
        state: audioOnly ? 'raised' : 'cleared',
        message,
        ...(availableKbps === null ? {} : { value: availableKbps }),
      },
    ];
  }

  recordingFault(lessonId: string, message: string): AlertOutcome[] {
    if (!this.t.recordingFault) return [];
    this.faultyRecordings.add(lessonId);
    return [{ rule: 'recordingFault', state: 'raised', lessonId, message: `recording fault: ${message}` }];
  }

  recordingRecovered(lessonId: string): AlertOutcome[] {
    if (!this.faultyRecordings.delete(lessonId)) return [];
    return [{ rule: 'recordingFault', state: 'cleared', lessonId, message: 'recording is running again' }];
  }
}

const newSchool = (): SchoolAlerts => ({ lossSince: null, lossRaised: false, downSince: null, downRaised: false, audioOnlyRaised: false });

const round1 = (x: number): number => Math.round(x * 10) / 10;
