/**
 * /metrics during a real lesson: Prometheus text that parses line by line,
 * mediasoup object gauges equal to what the worker itself reports, joins and
 * join failures counted, no lesson or school ids anywhere.
 */
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, expectCode, startTestServer } from './support/lessoncast.js';
import { Watcher, publish } from '../kit/peers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Samples = Map<string, number>;

/**
 * A strict reader of the Prometheus text format (0.0.4): every line is a
 * HELP, a TYPE (once per family, before its samples) or a sample with valid
 * names, quoted label values and a number. Returns "name{labels}" → value.
 */
function parseExposition(text: string): Samples {
  const samples: Samples = new Map();
  const typed = new Map<string, string>();
  const helped = new Set<string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\["\\\\n])*"';
  const sampleLine = new RegExp(
    `^(${name})(\\{(?:${label})(?:,(?:${label}))*,?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:[eE][-+]?\\d+)?)|[-+]?Inf|NaN)( -?\\d+)?$`,
  );
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${name}) (.*)$`).exec(line))) {
      if (helped.has(m[1]!)) throw new Error(`line ${i + 1}: second HELP for ${m[1]}`);
      helped.add(m[1]!);
    } else if ((m = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (typed.has(m[1]!)) throw new Error(`line ${i + 1}: second TYPE for ${m[1]}`);
      typed.set(m[1]!, m[2]!);
    } else if ((m = sampleLine.exec(line))) {
      const family = [...typed.keys()].find((f) => m![1] === f || m![1]!.startsWith(`${f}_`));
      if (!family) throw new Error(`line ${i + 1}: sample ${m[1]} without a TYPE`);
      const key = `${m[1]}${m[2] ?? ''}`;
      if (samples.has(key)) throw new Error(`line ${i + 1}: duplicate sample ${key}`);
      samples.set(key, Number(m[3]!.replace(/Inf$/, 'Infinity')));
    } else {
      throw new Error(`line ${i + 1} is not Prometheus text: ${JSON.stringify(line)}`);
    }
  }
  return samples;
}

const sum = (samples: Samples, metric: string): number => {
  let n = 0;
  for (const [k, v] of samples) if (k === metric || k.startsWith(`${metric}{`)) n += v;
  return n;
};

const s = await startTestServer({ monitor: { sampleSeconds: 60 } });
t.teardown(() => s.close());

async function scrape(): Promise<{ text: string; samples: Samples; contentType: string | null }> {
  const res = await fetch(`${s.url}/metrics`);
  t.equal(res.status, 200);
  const text = await res.text();
  return { text, samples: parseExposition(text), contentType: res.headers.get('content-type') };
}

t.test('metrics match the real mediasoup objects of a lesson', async (t) => {
  const cleanups: Array<() => unknown> = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const lessonId = await createLesson(s, { title: 'Music: rhythm' });
  const { client: teacher, joined: tj } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  await teacher.request('goLive', {});
  const sender = await publish(teacher, tj!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => sender.close());
  const mic = sender.producerId('audio');
  const watchers: Watcher[] = [];
  for (const [role, id] of [
    ['classroom', 'school-1'],
    ['classroom', 'school-2'],
    ['monitor', 'control-room'],
  ] as const) {
    const { client, joined } = await SignalClient.join(s, role, id, lessonId);
    const w = await Watcher.start(client, joined!.producers);
    cleanups.push(
      () => client.close(),
      () => w.close(),
    );
    watchers.push(w);
  }
  for (const w of watchers) await w.firstPacket(mic);
  // Two refused joins.
  const { client: stranger } = await SignalClient.join(s, 'classroom', 'school-9', undefined);
  cleanups.push(() => stranger.close());
  t.ok(await expectCode(stranger.request('join', { lessonId: 'no-such-lesson' }), 'LESSON_NOT_FOUND'));
  const archivist = await SignalClient.connect(s.wsUrl);
  cleanups.push(() => archivist.close());
  await archivist.request('authenticate', { token: await s.token('archivist', 'arch-1') });
  t.ok(await expectCode(archivist.request('join', { lessonId }), 'FORBIDDEN'));

  await sleep(500);
  await s.internals.controlRoom.sampleNow();
  const { text, samples, contentType } = await scrape();
  t.match(contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text content type');
  t.pass(`${samples.size} samples parse strictly`);

  const router = s.internals.registry.mediaOf(lessonId)!.producerRouter;
  const dump = await router.dump();
  const realConsumers = dump.mapProducerIdConsumerIds.reduce((n, e) => n + e.values.length, 0);
  t.equal(realConsumers, 3, 'the worker holds 3 consumers (2 classrooms and the monitor)');
  t.equal(sum(samples, 'lessoncast_mediasoup_consumers'), realConsumers, "consumer gauge = the worker's own count");
  t.equal(samples.get('lessoncast_mediasoup_consumers{kind="audio"}'), 3);
  t.equal(samples.get('lessoncast_mediasoup_transports{type="webrtc"}'), dump.transportIds.length, "transports = the router's");
  t.equal(samples.get('lessoncast_mediasoup_producers{kind="audio"}'), 1);
  t.equal(
    samples.get('lessoncast_mediasoup_routers'),
    (await s.internals.pool.slots[0]!.worker.dump()).routerIds.length,
    "routers = the worker's",
  );
  t.equal(samples.get('lessoncast_mediasoup_workers{state="alive"}'), 1);
  t.equal(samples.get('lessoncast_joins_total'), 4, 'joins: instructor, 2 classrooms, monitor');
  t.equal(samples.get('lessoncast_join_failures_total{code="LESSON_NOT_FOUND"}'), 1);
  t.equal(samples.get('lessoncast_join_failures_total{code="FORBIDDEN"}'), 1);
  t.equal(samples.get('lessoncast_live_lessons'), 1);
  t.equal(samples.get('lessoncast_connected_schools'), 2);
  t.equal(samples.get('lessoncast_recordings_active'), 0);
  t.equal(samples.get('lessoncast_recording_faults_total'), 0);
  t.equal(samples.get('lessoncast_live_state_up'), 1);
  t.equal(samples.get('lessoncast_live_feed_dropped_total'), 0, 'no feed client lagged');
  t.ok(
    samples.get('lessoncast_rtp_received_packets_total')! > 20,
    `RTP packets in: ${samples.get('lessoncast_rtp_received_packets_total')}`,
  );
  t.ok(samples.get('lessoncast_rtp_sent_packets_total')! > 60, `RTP packets out: ${samples.get('lessoncast_rtp_sent_packets_total')}`);
  t.ok(
    samples.get('lessoncast_received_bytes_total')! > 0 &&
      samples.get('lessoncast_sent_bytes_total')! > samples.get('lessoncast_received_bytes_total')!,
    'bytes in and (fanned-out) bytes out',
  );
  t.ok(
    sum(samples, 'lessoncast_worker_cpu_seconds_total') > 0,
    `worker CPU ${sum(samples, 'lessoncast_worker_cpu_seconds_total').toFixed(3)} s`,
  );
  t.ok(
    samples.get('lessoncast_quality_stats_requests_total')! >= 8,
    `sampling made ${samples.get('lessoncast_quality_stats_requests_total')} stats requests`,
  );
  t.ok(samples.has('lessoncast_process_cpu_seconds_total'), 'process metrics too');
  for (const id of [lessonId, 'school-1', 'school-2', 'control-room', 'teacher-1']) t.notOk(text.includes(id), `no "${id}" in the metrics`);

  await teacher.request('endLesson', {});
  await sleep(200);
  const after = (await scrape()).samples;
  t.equal(sum(after, 'lessoncast_mediasoup_consumers'), 0, 'consumers gone with the lesson');
  t.equal(sum(after, 'lessoncast_mediasoup_transports'), 0, 'transports gone');
  t.equal(after.get('lessoncast_mediasoup_routers'), 0, 'router gone');
  t.equal(after.get('lessoncast_live_lessons'), 0);
  t.ok(after.get('lessoncast_rtp_sent_packets_total')! >= samples.get('lessoncast_rtp_sent_packets_total')!, 'counters never go back');
});

t.test('with metrics.token set, a scrape must bring it as a bearer token (compared in constant time)', async (t) => {
  const token = 'prometheus-scrape-0123456789abcdef';
  const guarded = await startTestServer({ metrics: { token }, auth: { maxFailuresPerAddress: 6 } });
  t.teardown(() => guarded.close());
  const refusals: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer prometheus-scrape-0123456789abcdeX' }],
    ['a prefix of it', { authorization: 'Bearer prometheus-scrape' }],
    ['the token without Bearer', { authorization: token }],
  ];
  for (const [name, headers] of refusals) {
    const res = await fetch(`${guarded.url}/metrics`, { headers });
    t.equal(res.status, 401, `${name}: 401`);
    t.match(res.headers.get('content-type'), /^application\/problem\+json/, `${name}: problem+json`);
    t.equal(res.headers.get('www-authenticate'), 'Bearer realm="metrics"');
    t.match(await res.json(), { status: 401, code: 'UNAUTHENTICATED' });
  }
  const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.status, 200, 'the right token scrapes');
  t.ok(parseExposition(await ok.text()).has('lessoncast_client_errors_total{code="UNAUTHENTICATED"}'), 'and the refusals were counted');
  // Wrong tokens count against the address's failure budget (6 here): past it, even the right one waits.
  const wrong = { authorization: 'Bearer prometheus-scrape-guess-000000000' };
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetch(`${guarded.url}/metrics`, { headers: wrong })).status);
  t.same(statuses, [401, 401, 429], 'guessing is throttled with the other failed authentications');
  const throttled = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(throttled.status, 429, 'and the address waits out the window, right token or not');
  t.match(await throttled.json(), { code: 'RATE_LIMITED', details: { limit: 'authFailures' } });
  t.equal((await fetch(`${s.url}/metrics`)).status, 200, 'empty metrics.token (the default): open, as before');
});

t.test('the recording service reports into the live view and metrics', async (t) => {
  const lessonId = await createLesson(s, { title: 'Drama', record: true });
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  t.teardown(() => teacher.close());
  await teacher.request('goLive', {});
  await sleep(100);
  const live = await (await fetch(`${s.url}/api/live`, { headers: { authorization: `Bearer ${await s.token('admin', 'ops')}` } })).json();
  t.match(live, { lessons: [{ id: lessonId, recording: { enabled: true, state: 'recording' } }] }, 'recording active in /api/live');
  t.equal((await scrape()).samples.get('lessoncast_recordings_active'), 1, 'and in the metrics');
  await teacher.request('endLesson', {});
});

t.test('a recording fault is counted, published and alerted', async (t) => {
  const lessonId = await createLesson(s, { title: 'Art', record: false });
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  t.teardown(() => teacher.close());
  await teacher.request('goLive', {});
  const seen: string[] = [];
  const off = s.internals.live.subscribe((e) => seen.push(e.type === 'alert' ? `alert:${e.rule}:${e.state}` : e.type));
  s.internals.registry.get(lessonId).setRecording({ state: 'recording', at: new Date().toISOString() });
  s.internals.controlRoom.onRecordingFault(lessonId, 'ffmpeg exited with code 1');
  await sleep(10);
  s.internals.registry
    .get(lessonId)
    .setRecording({ state: 'fault', at: new Date().toISOString(), message: 'ffmpeg exited with code 1', recovering: true });
  await sleep(10);
  s.internals.registry.get(lessonId).setRecording({ state: 'recording', at: new Date().toISOString() });
  await sleep(10);
  off();
  t.same(seen, [
    'recordingChanged',
    'recordingFault',
    'alert:recordingFault:raised',
    'recordingChanged',
    'recordingChanged',
    'alert:recordingFault:cleared',
  ]);
  const m = (await scrape()).samples;
  t.equal(m.get('lessoncast_recording_faults_total'), 1);
  t.equal(m.get('lessoncast_recordings_active'), 1);
  const live = await (await fetch(`${s.url}/api/live`, { headers: { authorization: `Bearer ${await s.token('admin', 'ops')}` } })).json();
  t.match(live, { lessons: [{ id: lessonId, recording: { state: 'recording' } }] });
  await teacher.request('endLesson', {});
});
