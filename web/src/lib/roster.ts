/** Who is in the lesson, whose hand is up and who holds the floor, kept from the join reply and notifications. */
import type { ParticipantView } from '../../../src/domain/index.js';
import { Emitter } from './emitter.js';
import type { JoinInfo, LessonLink } from './link.js';

export class Roster extends Emitter<{ change: [] }> {
  readonly participants = new Map<string, ParticipantView>();

  constructor(link: LessonLink) {
    super();
    const upsert = (p: ParticipantView) => {
      this.participants.set(p.id, p);
      this.emit('change');
    };
    const patch = (id: string, change: Partial<ParticipantView>) => {
      const p = this.participants.get(id);
      if (!p) return;
      this.participants.set(id, { ...p, ...change });
      this.emit('change');
    };
    link.on('participantJoined', upsert);
    link.on('participantUpdated', upsert);
    link.on('participantLeft', ({ participantId }) => {
      this.participants.delete(participantId);
      this.emit('change');
    });
    link.on('handRaised', ({ participantId, at }) => patch(participantId, { handRaisedAt: at }));
    link.on('handLowered', ({ participantId }) => patch(participantId, { handRaisedAt: null }));
    link.on('floorGranted', ({ participantId }) => patch(participantId, { hasFloor: true }));
    link.on('floorRevoked', ({ participantId }) => patch(participantId, { hasFloor: false }));
  }

  reset(info: JoinInfo): void {
    this.participants.clear();
    for (const p of info.participants) this.participants.set(p.id, p);
    this.emit('change');
  }

  get(id: string): ParticipantView | undefined {
    return this.participants.get(id);
  }

  classrooms(): ParticipantView[] {
    return [...this.participants.values()].filter((p) => p.role === 'classroom').sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Raised hands, first come first served. */
  handQueue(): ParticipantView[] {
    return [...this.participants.values()].filter((p) => p.handRaisedAt !== null).sort((a, b) => a.handRaisedAt! - b.handRaisedAt!);
  }

  floor(): ParticipantView[] {
    return [...this.participants.values()].filter((p) => p.hasFloor);
  }

  name(id: string): string {
    return this.participants.get(id)?.name ?? id;
  }
}
