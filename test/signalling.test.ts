import t from 'tap';
import { SignalClient, createLesson, expectCode, startTestServer, type TestServer } from './support/lessoncast.js';

let s: TestServer;
t.before(async () => {
  s = await startTestServer({ lessons: { reconnectGraceSeconds: 2 } });
});
t.teardown(() => s.close());

t.test('authentication and order: every out-of-place request gets a typed error', async (t) => {
  const c = await SignalClient.connect(s.wsUrl);
  t.teardown(() => c.close());
  t.ok(await expectCode(c.request('join', { lessonId: 'x' }), 'UNAUTHENTICATED'), 'join before authenticate');
  t.ok(await expectCode(c.request('authenticate', { token: 'not-a-jwt' }), 'UNAUTHENTICATED'), 'garbage token');
  const expired = (await s.server.tokens.mint({ role: 'classroom', id: 'school-9', lessons: '*', ttlSeconds: -10 })).token;
  t.ok(await expectCode(c.request('authenticate', { token: expired }), 'TOKEN_EXPIRED'), 'expired token');
  await c.request('authenticate', { token: await s.token('classroom', 'school-1') });
  t.ok(await expectCode(c.request('authenticate', { token: await s.token('classroom', 'school-1') }), 'OUT_OF_ORDER'), 'second authenticate');
  t.ok(await expectCode(c.request('consume', { transportId: 't', producerId: 'p', rtpCapabilities: {} }), 'NOT_IN_LESSON'), 'consume before join');
  t.ok(await expectCode(c.request('raiseHand', {}), 'NOT_IN_LESSON'), 'raise hand before join');
  t.ok(await expectCode(c.request('join', { lessonId: 'no-such-lesson' }), 'LESSON_NOT_FOUND'));
});

t.test('permission rules are refused with the right code', async (t) => {
  const lessonId = await createLesson(s);
  const other = await createLesson(s, { instructorId: 'teacher-2' });
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  const { client: school2 } = await SignalClient.join(s, 'classroom', 'school-2', lessonId);
  t.teardown(() => [teacher, school, school2].forEach((c) => c.close()));

  // Joining
  const stranger = await SignalClient.connect(s.wsUrl);
  t.teardown(() => stranger.close());
  await stranger.request('authenticate', { token: await s.token('classroom', 'school-3', [other]) });
  t.ok(await expectCode(stranger.request('join', { lessonId }), 'FORBIDDEN'), 'classroom whose token lacks the lesson');
  const wrongTeacher = await SignalClient.connect(s.wsUrl);
  t.teardown(() => wrongTeacher.close());
  await wrongTeacher.request('authenticate', { token: await s.token('instructor', 'teacher-2', [lessonId]) });
  t.ok(await expectCode(wrongTeacher.request('join', { lessonId }), 'FORBIDDEN'), 'another instructor cannot teach this lesson');
  const archivist = await SignalClient.connect(s.wsUrl);
  t.teardown(() => archivist.close());
  await archivist.request('authenticate', { token: await s.token('archivist', 'arch-1') });
  t.ok(await expectCode(archivist.request('join', { lessonId }), 'FORBIDDEN'), 'an archivist has no media');

  // Teaching actions are the instructor's
  t.ok(await expectCode(school.request('goLive', {}), 'FORBIDDEN'), 'classroom cannot go live');
  t.ok(await expectCode(school.request('endLesson', {}), 'FORBIDDEN'), 'classroom cannot end');
  t.ok(await expectCode(school.request('grantFloor', { participantId: 'school-1' }), 'FORBIDDEN'), 'classroom cannot grant the floor');
  t.ok(await expectCode(school.request('revokeFloor', { participantId: 'school-2' }), 'FORBIDDEN'), 'classroom cannot revoke another\'s floor');
  t.ok(await expectCode(teacher.request('raiseHand', {}), 'FORBIDDEN'), 'instructor does not raise hands');
  await school2.request('raiseHand', {});
  t.ok(await expectCode(school.request('lowerHand', { participantId: 'school-2' }), 'FORBIDDEN'), 'classroom cannot lower another\'s hand');

  // Publishing
  const sendT = await school.request('createTransport', { direction: 'send' });
  const rtp = { codecs: [], encodings: [{ ssrc: 1111 }] };
  t.ok(await expectCode(school.request('produce', { transportId: sendT.transportId, kind: 'audio', rtpParameters: rtp, source: 'microphone' }), 'FORBIDDEN'), 'classroom without the floor cannot publish');
  await teacher.request('grantFloor', { participantId: 'school-1' });
  t.ok(await expectCode(school.request('produce', { transportId: sendT.transportId, kind: 'video', rtpParameters: rtp, source: 'screen' }), 'FORBIDDEN'), 'classroom with the floor cannot share a screen');
  t.ok(await expectCode(school.request('produce', { transportId: sendT.transportId, kind: 'audio', rtpParameters: rtp, source: 'microphone' }), 'MEDIA_REJECTED'), 'bad RTP parameters are mediasoup\'s to reject, typed');
  t.ok(await expectCode(teacher.request('grantFloor', { participantId: 'nobody' }), 'NOT_FOUND'), 'floor to an unknown participant');
  t.ok(await expectCode(school.request('connectTransport', { transportId: sendT.transportId, dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-999', value: 'zz' }] } }), 'MEDIA_REJECTED'), 'bad DTLS parameters');
  t.ok(await expectCode(school.request('connectTransport', { transportId: 'not-mine', dtlsParameters: {} }), 'TRANSPORT_NOT_FOUND'), 'someone else\'s transport id');

  // REST
  const asClassroom = await fetch(`${s.url}/api/lessons`, { method: 'POST', headers: { authorization: `Bearer ${await s.token('classroom', 'school-1')}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'x' }) });
  t.equal(asClassroom.status, 403, 'classroom cannot create lessons');
  t.equal(((await asClassroom.json()) as { code: string }).code, 'FORBIDDEN');
  const mint = await fetch(`${s.url}/api/tokens`, { method: 'POST', headers: { authorization: `Bearer ${await s.token('instructor', 'teacher-1')}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'admin', id: 'me' }) });
  t.equal(mint.status, 403, 'only an admin mints tokens');
  t.equal((await fetch(`${s.url}/api/lessons`)).status, 401, 'no token, no lessons');
  const adminMint = await fetch(`${s.url}/api/tokens`, { method: 'POST', headers: { authorization: `Bearer ${await s.token('admin', 'ops')}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'classroom', id: 'school-77', name: 'School 77', lessons: [lessonId] }) });
  t.equal(adminMint.status, 201, 'an admin mints a classroom token');
  const minted = (await adminMint.json()) as { token: string; expiresAt: string };
  t.same(await s.server.tokens.verify(minted.token), { id: 'school-77', role: 'classroom', name: 'School 77', lessons: [lessonId] }, 'and it verifies with the claims asked for');

  // ICE restart answers new credentials
  const recvT = await school2.request('createTransport', { direction: 'recv' });
  const restarted = await school2.request('restartIce', { transportId: recvT.transportId });
  t.not((restarted.iceParameters as { usernameFragment: string }).usernameFragment, (recvT.iceParameters as { usernameFragment: string }).usernameFragment, 'ICE restart gives new credentials');
  const tcpOnly = await school2.request('createTransport', { direction: 'recv', forceTcp: true });
  t.ok(tcpOnly.iceCandidates.every((c) => c['protocol'] === 'tcp'), 'forceTcp offers only TCP candidates (for schools that block UDP)');
  const badBody = await fetch(`${s.url}/api/lessons`, { method: 'POST', headers: { authorization: `Bearer ${await s.token('admin', 'a')}`, 'content-type': 'application/json' }, body: JSON.stringify({ title: '', extra: 1 }) });
  t.equal(badBody.status, 400, 'invalid body is a 400 problem');
  t.equal(((await badBody.json()) as { code: string }).code, 'INVALID_REQUEST');
});

t.test('hands, floor, monitor and lifecycle notifications', async (t) => {
  const lessonId = await createLesson(s);
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: a } = await SignalClient.join(s, 'classroom', 'school-a', lessonId);
  const { client: b, joined: bJoined } = await SignalClient.join(s, 'classroom', 'school-b', lessonId);
  const { client: monitor, joined: mJoined } = await SignalClient.join(s, 'monitor', 'control-room', lessonId);
  t.teardown(() => [teacher, a, b, monitor].forEach((c) => c.close()));
  t.same(bJoined!.participants.map((p) => p.id).sort(), ['school-a', 'school-b', 'teacher-1'], 'join lists who is there');
  t.notOk(mJoined!.participants.some((p) => p.id === 'control-room'), 'the monitor is not in the list');
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(teacher.notifications.some((n) => n.event === 'participantJoined' && (n.data as { id: string }).id === 'control-room'), 'nobody is told a monitor joined');

  await teacher.request('goLive', {});
  await a.waitFor('lessonStarted');
  await a.request('raiseHand', {});
  await teacher.waitFor('handRaised', (d) => d.participantId === 'school-a');
  await monitor.waitFor('handRaised', (d) => d.participantId === 'school-a');
  await teacher.request('grantFloor', { participantId: 'school-a' });
  await b.waitFor('floorGranted', (d) => d.participantId === 'school-a');
  await a.waitFor('handLowered', (d) => d.participantId === 'school-a');
  // One at a time: giving it to b takes it from a.
  await teacher.request('grantFloor', { participantId: 'school-b' });
  await a.waitFor('floorRevoked', (d) => d.participantId === 'school-a');
  await a.waitFor('floorGranted', (d) => d.participantId === 'school-b');
  await b.request('revokeFloor', { participantId: 'school-b' });
  await teacher.waitFor('floorRevoked', (d) => d.participantId === 'school-b');

  const ended = teacher.request('endLesson', {});
  await a.waitFor('lessonEnded');
  t.equal((await ended).lesson.state, 'ended');
  const late = await SignalClient.connect(s.wsUrl);
  t.teardown(() => late.close());
  await late.request('authenticate', { token: await s.token('classroom', 'school-c') });
  t.ok(await expectCode(late.request('join', { lessonId }), 'LESSON_ENDED'), 'an ended lesson cannot be joined');
});

t.test('reconnection keeps seat and hand within the grace period; a second connection replaces the first', async (t) => {
  const lessonId = await createLesson(s);
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  t.teardown(() => teacher.close());
  const { client: first } = await SignalClient.join(s, 'classroom', 'school-r', lessonId);
  await first.request('raiseHand', {});
  first.ws.terminate(); // network drop, no goodbye
  await teacher.waitFor('participantUpdated', (p) => p.id === 'school-r' && !p.connected);
  const { client: second, joined } = await SignalClient.join(s, 'classroom', 'school-r', lessonId);
  t.teardown(() => second.close());
  t.equal(joined!.rejoined, true, 'rejoined, not new');
  const me = joined!.participants.filter((p) => p.id === 'school-r');
  t.equal(me.length, 1, 'no duplicate participant');
  t.ok(me[0]!.handRaisedAt, 'hand still raised');
  t.notOk(teacher.notifications.some((n) => n.event === 'participantLeft'), 'nobody saw it leave');

  // A third connection for the same school replaces the second.
  const { client: third } = await SignalClient.join(s, 'classroom', 'school-r', lessonId);
  t.teardown(() => third.close());
  await second.waitFor('sessionReplaced');
  t.equal((await second.closed).code, 4001, 'old connection closed with 4001');
  const view = await fetch(`${s.url}/api/lessons/${lessonId}`, { headers: { authorization: `Bearer ${await s.token('admin', 'a')}` } });
  const body = (await view.json()) as { participants: Array<{ id: string; connected: boolean }> };
  t.same(body.participants.filter((p) => p.id === 'school-r').map((p) => p.connected), [true], 'one seat, connected');

  // Past the grace period the seat is given up.
  third.ws.terminate();
  await teacher.waitFor('participantLeft', (d) => d.participantId === 'school-r', 6000);
});
