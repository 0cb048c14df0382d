/**
 * The weak-link policy's rules without media (docs/links.md): the state machine over bandwidth
 * estimates, the driver's actions on consumers (against small fakes of mediasoup's objects), the
 * audio-only alert, and the lesson's journal of both moments. The same policy on real links is
 * test/links.test.ts.
 */
import t from 'tap';
import type { types } from 'mediasoup';
import { LinkPolicy, LinkRules, layerWord, type LinkSettings } from '../src/media/linkPolicy.js';
import { AlertRules } from '../src/monitor/alerts.js';
import { Lesson } from '../src/lessons/lesson.js';
import { LessonJournal } from '../src/lessons/journal.js';
import type { LinkLayer } from '../src/domain/index.js';
import { FakeMedia } from './support/fakeMedia.js';

const settings: LinkSettings = {
  enabled: true,
  checkSeconds: 1,
  floorBelowKbps: 600,
  floorSpatialLayer: 0,
  pauseBelowKbps: 350,
  resumeAboveKbps: 500,
  holdSeconds: 3,
  retrySeconds: 20,
  keyFrameRequestDelayMs: 1000,
  cameraPriority: 1,
  screenPriority: 2,
};

/** Feeds one estimate (kbit/s) per second from `from` s; returns the modes entered, with their second. */
function feed(r: LinkRules, from: number, kbps: number[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  kbps.forEach((k, i) => {
    const m = r.observe((from + i) * 1000, k * 1000);
    if (m) out.push([from + i, m]);
  });
  return out;
}

t.test('a narrow link: held at the floor at once, paused after holdSeconds, back at the floor then open', async (t) => {
  const r = new LinkRules(settings);
  t.same(feed(r, 0, [2000, 1500, 900]), [], 'room enough: mediasoup chooses');
  t.same(feed(r, 3, [550]), [[3, 'floor']], 'under floorBelowKbps: held at the floor at once');
  t.same(feed(r, 4, [300, 300, 300]), [], 'under pauseBelowKbps: not before holdSeconds');
  t.same(feed(r, 7, [300]), [[7, 'paused']], 'paused after 3 s below');
  t.same(feed(r, 8, [450, 600, 600]), [], 'above resumeAboveKbps for less than holdSeconds: still paused');
  t.same(feed(r, 11, [600]), [], 'the estimate has been above for 2 s only');
  t.same(feed(r, 12, [600]), [[12, 'floor']], 'resumed at the floor layer after holdSeconds above');
  t.same(feed(r, 13, [700, 740, 700, 740, 800, 700]), [], 'below 1.25 × floorBelowKbps for most of it: still held');
  t.same(feed(r, 19, [800, 800, 800, 800]), [[22, 'open']], 'let go once 1.25× above for holdSeconds');
});

t.test('a short dip does not pause, and a pause that never recovers is retried with back-off', async (t) => {
  const r = new LinkRules(settings);
  t.same(feed(r, 0, [300, 300, 900, 300, 300]), [[0, 'floor']], 'two seconds below, then above: not paused');
  t.equal(r.mode, 'floor');
  t.same(feed(r, 5, [300, 300]), [[6, 'paused']], 'below from 3 s to 6 s: paused');
  const modes = feed(
    r,
    7,
    Array.from({ length: 160 }, () => 200),
  );
  t.same(
    modes.map(([, m]) => m),
    ['floor', 'paused', 'floor', 'paused', 'floor', 'paused'],
    'tried again, paused again',
  );
  const gaps = modes.filter(([, m]) => m === 'floor').map(([s]) => s);
  t.equal(gaps[0], 26, 'first try retrySeconds after the pause');
  t.ok(gaps[1]! - gaps[0]! > gaps[0]! - 6, 'the wait grows after a failed try');
});

t.test('thresholds at 0 turn the rule off', async (t) => {
  const r = new LinkRules({ ...settings, floorBelowKbps: 0, pauseBelowKbps: 0 });
  t.same(feed(r, 0, [100, 100, 100, 100, 100, 100]), []);
});

t.test('layer words', async (t) => {
  t.equal(layerWord(2, 3), 'high');
  t.equal(layerWord(1, 3), 'medium');
  t.equal(layerWord(0, 3), 'low');
  t.equal(layerWord(0, 1), 'high', 'a single layer is the top one');
  t.equal(layerWord(null, 3), undefined, 'no video flowing: no word from layers');
});

interface FakeConsumer {
  id: string;
  kind: 'video';
  type: 'simulcast';
  paused: boolean;
  producerPaused: boolean;
  closed: boolean;
  currentLayers: types.ConsumerLayers | undefined;
  rtpParameters: { encodings: Array<{ scalabilityMode: string }> };
  preferred?: types.ConsumerLayers;
  keyFrames: number;
  pause(): Promise<void>;
  resume(): Promise<void>;
  setPreferredLayers(l: types.ConsumerLayers): Promise<void>;
  requestKeyFrame(): Promise<void>;
}

function fakeConsumer(id: string): FakeConsumer {
  const c: FakeConsumer = {
    id,
    kind: 'video',
    type: 'simulcast',
    paused: false,
    producerPaused: false,
    closed: false,
    currentLayers: { spatialLayer: 2, temporalLayer: 2 },
    rtpParameters: { encodings: [{ scalabilityMode: 'L3T3' }] },
    keyFrames: 0,
    pause: async () => void (c.paused = true),
    resume: async () => void (c.paused = false),
    setPreferredLayers: async (l) => {
      c.preferred = l;
      c.currentLayers = { spatialLayer: Math.min(2, l.spatialLayer), temporalLayer: 2 };
    },
    requestKeyFrame: async () => void c.keyFrames++,
  };
  return c;
}

t.test('the driver pauses video, keeps a receiver’s own pause, resumes at the floor layer and reports words', async (t) => {
  let estimate = 2_000_000;
  const transport = { id: 'T', closed: false, getStats: async () => [{ availableOutgoingBitrate: estimate }] };
  const cam = fakeConsumer('cam');
  const other = fakeConsumer('other');
  const clientPaused = new Set<string>();
  const words: LinkLayer[] = [];
  const policy = new LinkPolicy(settings, {
    recvTransports: () => [{ peerId: 'school-a', transport: transport as unknown as types.WebRtcTransport }],
    videoConsumers: () => [cam, other] as unknown as types.Consumer[],
    preferredLayers: () => undefined,
    pausedByClient: (id) => clientPaused.has(id),
    changed: (_peer, layer) => words.push(layer),
    failed: (err) => t.fail(String(err)),
  });
  t.teardown(() => policy.close());
  // Drive the clock through Date.now: each check is one second later.
  let now = 1_000_000;
  const realNow = Date.now;
  Date.now = () => now;
  t.teardown(() => void (Date.now = realNow));
  const tick = async (n = 1) => {
    for (let i = 0; i < n; i++) {
      now += 1000;
      await policy.check();
    }
  };

  await tick();
  t.same(words, ['high'], 'the top layer: high');
  estimate = 300_000;
  await tick();
  t.same(cam.preferred, { spatialLayer: 0 }, 'held at the floor layer');
  t.same(words, ['high', 'low']);
  await tick(3);
  t.ok(cam.paused && other.paused, 'paused after holdSeconds');
  t.equal(words.at(-1), 'audio-only');
  t.ok(policy.holdsPaused('T'));
  clientPaused.add('other'); // the receiver pauses one itself meanwhile
  estimate = 900_000;
  await tick(4); // holdSeconds above: the first sample starts the clock
  t.notOk(cam.paused, 'resumed');
  t.ok(other.paused, 'what the receiver paused itself stays paused');
  t.same(cam.preferred, { spatialLayer: 0 }, 'at the floor layer first');
  t.equal(cam.keyFrames, 1, 'a keyframe asked for the resumed consumer');
  t.equal(words.at(-1), 'low');
  estimate = 2_000_000;
  await tick(4);
  t.same(cam.preferred, { spatialLayer: 255 }, 'then let go to the best layer the link carries');
  t.equal(words.at(-1), 'high');
});

t.test('the audio-only alert is raised and cleared once, and forgotten with the school', async (t) => {
  const r = new AlertRules({ lossPct: 5, lossSeconds: 10, disconnectedSeconds: 5, recordingFault: true });
  t.match(r.link('L', 's1', true, 280), [{ rule: 'audioOnly', state: 'raised', schoolId: 's1', value: 280 }]);
  t.same(r.link('L', 's1', true, 250), [], 'once');
  t.match(r.link('L', 's1', false, 900), [{ rule: 'audioOnly', state: 'cleared' }]);
  t.same(r.link('L', 's1', false, 900), []);
  r.link('L', 's1', true, null);
  t.match(r.forget('L', 's1'), [{ rule: 'audioOnly', state: 'cleared', message: 's1 left the lesson' }]);
});

t.test('the lesson tells linkChanged on a change of word, and its journal keeps the pause and the resume', async (t) => {
  const media = new FakeMedia();
  const lesson = new Lesson(
    {
      id: 'L1',
      title: 't',
      subject: '',
      instructorId: 'teacher-1',
      schools: [],
      record: true,
      createdAt: new Date(),
    },
    media,
    {
      reconnectGraceMs: 1000,
      maxFloorHolders: 1,
      limits: { transports: 4, producers: 4, consumers: 64, actionBurst: 10, actionsPerSecond: 1 },
    },
  );
  const journal = new LessonJournal(lesson, { origin: new Date(), onChange: () => undefined, onError: (_e, err) => t.fail(String(err)) });
  journal.open();
  const told: string[] = [];
  lesson.on('linkChanged', (l) => told.push(l.layer));
  const teacher = (await lesson.join({ id: 'teacher-1', role: 'instructor', name: 'T', lessons: '*' }, 'c1')).participant;
  const school = (await lesson.join({ id: 'school-a', role: 'classroom', name: 'A', lessons: '*' }, 'c2')).participant;
  media.emit('linkChanged', 'school-a', 'high', 4000);
  media.emit('linkChanged', 'school-a', 'high', 3900);
  media.emit('linkChanged', 'school-a', 'audio-only', 280);
  media.emit('linkChanged', 'school-a', 'low', 700);
  media.emit('linkChanged', 'nobody', 'low', 700);
  t.same(told, ['high', 'audio-only', 'low'], 'only changes, only participants');
  const moments = journal.events().filter((e) => e.type.endsWith('ForLink'));
  t.equal(moments.length, 2, 'two moments, not every layer change');
  t.match(moments, [
    { type: 'videoPausedForLink', participantId: 'school-a', detail: { availableKbps: 280 } },
    { type: 'videoResumedForLink', participantId: 'school-a', detail: { availableKbps: 700, layer: 'low' } },
  ]);
  t.same(
    lesson.links(teacher).map((l) => l.participantId),
    ['school-a'],
    'the instructor sees every school’s link',
  );
  t.same(
    lesson.links(school).map((l) => l.layer),
    ['low'],
    'a school its own',
  );
  journal.close();
  lesson.end(undefined, 'done');
});
