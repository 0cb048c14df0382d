import type { types } from 'mediasoup';
import { publish, Watcher } from '../../kit/peers.js';
import { SignalClient } from '../../kit/signalClient.js';
import type { ResponseData } from '../../src/signalling/protocol.js';
import { createLesson, type TestServer } from './lessoncast.js';

/** A lesson with its instructor and one classroom joined over the real signalling. */
export async function lessonWithSchool(
  s: TestServer,
  schoolId: string,
): Promise<{
  lessonId: string;
  teacher: SignalClient;
  teacherJoined: ResponseData['join'];
  school: SignalClient;
  joined: ResponseData['join'];
  close(): void;
}> {
  const lessonId = await createLesson(s);
  const teacher = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const school = await SignalClient.join(s, 'classroom', schoolId, lessonId);
  return {
    lessonId,
    teacher: teacher.client,
    teacherJoined: teacher.joined!,
    school: school.client,
    joined: school.joined!,
    close: () => [teacher.client, school.client].forEach((c) => c.close()),
  };
}

/**
 * The instructor publishes video (werift + ffmpeg); the classroom receives it on a werift
 * receive transport set up as `opts` says (TURN relay, TCP only). Returns when the first packet
 * arrived, with mediasoup's side of the classroom's transport (its selected ICE tuple).
 */
export async function watchInstructor(
  s: TestServer,
  l: Awaited<ReturnType<typeof lessonWithSchool>>,
  schoolId: string,
  opts: Parameters<typeof Watcher.start>[2],
): Promise<{ firstPacketMs: number; packets(): number; transport: types.WebRtcTransport | undefined; close(): Promise<void> }> {
  const sender = await publish(l.teacher, l.teacherJoined.routerRtpCapabilities, { audio: false, video: 'h264' });
  const producerId = (await l.school.waitFor('newProducer')).producerId;
  const watcher = await Watcher.start(l.school, [], { connectTimeoutMs: 20_000, ...opts });
  const close = async (): Promise<void> => {
    await watcher.close();
    await sender.close();
  };
  try {
    await watcher.consume(producerId);
    const firstPacketMs = await watcher.firstPacket(producerId, 20_000);
    const hosted = s.internals.registry.hosted().find((h) => h.lesson.id === l.lessonId);
    const transport = hosted?.media
      .transportsOf(schoolId)
      .map((x) => x.transport as types.WebRtcTransport)
      .find((x) => x.iceSelectedTuple !== undefined);
    return { firstPacketMs, packets: () => watcher.packets(producerId), transport, close };
  } catch (err) {
    await close();
    throw err;
  }
}
