import { SignJWT } from 'jose';
import t from 'tap';
import { TokenService } from '../src/auth/tokens.js';
import { FeedClient } from './support/liveFeed.js';
import { type RequestFailed, SignalClient } from '../kit/signalClient.js';
import { createLesson, expectCode, metricValue, startTestServer, type TestServer } from './support/lessoncast.js';

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
  const expired = (await s.internals.tokens.mint({ role: 'classroom', id: 'school-9', lessons: '*', ttlSeconds: -10 })).token;
  t.ok(await expectCode(c.request('authenticate', { token: expired }), 'TOKEN_EXPIRED'), 'expired token');
  await c.request('authenticate', { token: await s.token('classroom', 'school-1') });
  t.ok(
    await expectCode(c.request('authenticate', { token: await s.token('classroom', 'school-1') }), 'OUT_OF_ORDER'),
    'second authenticate',
  );
  t.ok(
    await expectCode(c.request('consume', { transportId: 't', producerId: 'p', rtpCapabilities: {} }), 'NOT_IN_LESSON'),
    'consume before join',
  );
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
  t.match(
    await archivist.request('join', { lessonId }).catch((e: RequestFailed) => e),
    { code: 'FORBIDDEN', message: 'FORBIDDEN: an archivist cannot join lessons' },
    'an archivist has no media (and is called an archivist)',
  );

  // Teaching actions are the instructor's
  t.ok(await expectCode(school.request('goLive', {}), 'FORBIDDEN'), 'classroom cannot go live');
  t.ok(await expectCode(school.request('endLesson', {}), 'FORBIDDEN'), 'classroom cannot end');
  t.ok(await expectCode(school.request('grantFloor', { participantId: 'school-1' }), 'FORBIDDEN'), 'classroom cannot grant the floor');
  t.ok(
    await expectCode(school.request('revokeFloor', { participantId: 'school-2' }), 'FORBIDDEN'),
    "classroom cannot revoke another's floor",
  );
  t.ok(await expectCode(teacher.request('raiseHand', {}), 'FORBIDDEN'), 'instructor does not raise hands');
  await school2.request('raiseHand', {});
  t.ok(await expectCode(school.request('lowerHand', { participantId: 'school-2' }), 'FORBIDDEN'), "classroom cannot lower another's hand");

  // Publishing
  const sendT = await school.request('createTransport', { direction: 'send' });
  const rtp = { codecs: [], encodings: [{ ssrc: 1111 }] };
  t.ok(
    await expectCode(
      school.request('produce', { transportId: sendT.transportId, kind: 'audio', rtpParameters: rtp, source: 'microphone' }),
      'FORBIDDEN',
    ),
    'classroom without the floor cannot publish',
  );
  await teacher.request('grantFloor', { participantId: 'school-1' });
  t.ok(
    await expectCode(
      school.request('produce', { transportId: sendT.transportId, kind: 'video', rtpParameters: rtp, source: 'screen' }),
      'FORBIDDEN',
    ),
    'classroom with the floor cannot share a screen',
  );
  t.ok(
    await expectCode(
      school.request('produce', { transportId: sendT.transportId, kind: 'audio', rtpParameters: rtp, source: 'microphone' }),
      'MEDIA_REJECTED',
    ),
    "bad RTP parameters are mediasoup's to reject, typed",
  );
  t.ok(await expectCode(teacher.request('grantFloor', { participantId: 'nobody' }), 'NOT_FOUND'), 'floor to an unknown participant');
  t.ok(
    await expectCode(
      school.request('connectTransport', {
        transportId: sendT.transportId,
        dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-999', value: 'zz' }] },
      }),
      'INVALID_REQUEST',
    ),
    'bad DTLS parameters',
  );
  t.ok(
    await expectCode(
      school.request('connectTransport', { transportId: 'not-mine', dtlsParameters: dtls('sha-256', 32) }),
      'TRANSPORT_NOT_FOUND',
    ),
    "someone else's transport id",
  );

  // REST
  const asClassroom = await fetch(`${s.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('classroom', 'school-1')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'x' }),
  });
  t.equal(asClassroom.status, 403, 'classroom cannot create lessons');
  t.equal(((await asClassroom.json()) as { code: string }).code, 'FORBIDDEN');
  const mint = await fetch(`${s.url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('instructor', 'teacher-1')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'admin', id: 'me' }),
  });
  t.equal(mint.status, 403, 'only an admin mints tokens');
  t.equal((await fetch(`${s.url}/api/lessons`)).status, 401, 'no token, no lessons');
  const adminMint = await fetch(`${s.url}/api/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('admin', 'ops')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'classroom', id: 'school-77', name: 'School 77', lessons: [lessonId] }),
  });
  t.equal(adminMint.status, 201, 'an admin mints a classroom token');
  const minted = (await adminMint.json()) as { token: string; expiresAt: string; tokenId: string };
  const { issuedAt, ...claims } = await s.internals.tokens.verify(minted.token);
  t.ok(typeof issuedAt === 'number', 'issued at a time');
  t.same(
    claims,
    { id: 'school-77', role: 'classroom', name: 'School 77', lessons: [lessonId], tokenId: minted.tokenId },
    'and it verifies with the claims asked for',
  );

  // ICE restart answers new credentials
  const recvT = await school2.request('createTransport', { direction: 'recv' });
  const restarted = await school2.request('restartIce', { transportId: recvT.transportId });
  t.not(
    (restarted.iceParameters as { usernameFragment: string }).usernameFragment,
    (recvT.iceParameters as { usernameFragment: string }).usernameFragment,
    'ICE restart gives new credentials',
  );
  const tcpOnly = await school2.request('createTransport', { direction: 'recv', forceTcp: true });
  t.ok(
    tcpOnly.iceCandidates.every((c) => c['protocol'] === 'tcp'),
    'forceTcp offers only TCP candidates (for schools that block UDP)',
  );
  const badBody = await fetch(`${s.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('admin', 'a')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: '', extra: 1 }),
  });
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
  t.notOk(
    mJoined!.participants.some((p) => p.id === 'control-room'),
    'the monitor is not in the list',
  );
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(
    teacher.notifications.some((n) => n.event === 'participantJoined' && (n.data as { id: string }).id === 'control-room'),
    'nobody is told a monitor joined',
  );

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
  t.notOk(
    teacher.notifications.some((n) => n.event === 'participantLeft'),
    'nobody saw it leave',
  );

  // A third connection for the same school replaces the second.
  const { client: third } = await SignalClient.join(s, 'classroom', 'school-r', lessonId);
  t.teardown(() => third.close());
  await second.waitFor('sessionReplaced');
  t.equal((await second.closed).code, 4001, 'old connection closed with 4001');
  const view = await fetch(`${s.url}/api/lessons/${lessonId}`, { headers: { authorization: `Bearer ${await s.token('admin', 'a')}` } });
  const body = (await view.json()) as { participants: Array<{ id: string; connected: boolean }> };
  t.same(
    body.participants.filter((p) => p.id === 'school-r').map((p) => p.connected),
    [true],
    'one seat, connected',
  );

  // Past the grace period the seat is given up.
  third.ws.terminate();
  await teacher.waitFor('participantLeft', (d) => d.participantId === 'school-r', 6000);
});

/** Well-formed DTLS parameters: `bytes` hex pairs for `algorithm`. */
function dtls(algorithm: string, bytes: number, pair = 'AB'): Record<string, unknown> {
  return { role: 'client', fingerprints: [{ algorithm, value: Array.from({ length: bytes }, () => pair).join(':') }] };
}

const opus = (payloadType: number, ssrc: number, headerExtensions: Array<{ uri: string; id: number }> = []) => ({
  codecs: [{ mimeType: 'audio/opus', payloadType, clockRate: 48000, channels: 2 }],
  headerExtensions,
  encodings: [{ ssrc }],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Fails instead of hanging when what should happen does not. */
const within = <T>(promise: Promise<T> | void, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise as Promise<T>,
    new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms).unref()),
  ]);

t.test('media parameters are checked against their ranges before mediasoup sees them (INVALID_REQUEST)', async (t) => {
  const lessonId = await createLesson(s);
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  t.teardown(() => teacher.close());
  const send = await teacher.request('createTransport', { direction: 'send' });
  const produce = (rtpParameters: Record<string, unknown>) =>
    teacher.request('produce', { transportId: send.transportId, kind: 'audio', rtpParameters, source: 'microphone' });
  t.ok(await expectCode(produce(opus(1000, 1)), 'INVALID_REQUEST'), 'payload type 1000');
  t.ok(await expectCode(produce(opus(-1, 1)), 'INVALID_REQUEST'), 'payload type -1');
  t.ok(
    await expectCode(produce(opus(111, 1, [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 300 }])), 'INVALID_REQUEST'),
    'header extension id 300',
  );
  t.ok(
    await expectCode(produce(opus(111, 1, [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 0 }])), 'INVALID_REQUEST'),
    'header extension id 0',
  );
  const connect = (dtlsParameters: Record<string, unknown>) =>
    teacher.request('connectTransport', { transportId: send.transportId, dtlsParameters });
  t.ok(await expectCode(connect(dtls('sha-999', 32)), 'INVALID_REQUEST'), 'an unknown fingerprint algorithm');
  t.ok(await expectCode(connect(dtls('sha-256', 20)), 'INVALID_REQUEST'), 'a sha-256 fingerprint of 20 bytes');
  t.ok(await expectCode(connect(dtls('sha-256', 32, 'ZZ')), 'INVALID_REQUEST'), 'a fingerprint that is not hex');
  t.ok(
    await expectCode(connect({ role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB'.repeat(32) }] }), 'INVALID_REQUEST'),
    'hex pairs without colons',
  );
  t.ok(await expectCode(connect({ role: 'client', fingerprints: [] }), 'INVALID_REQUEST'), 'no fingerprint');
  const recv = await teacher.request('createTransport', { direction: 'recv' });
  t.ok(
    await expectCode(
      teacher.request('consume', {
        transportId: recv.transportId,
        producerId: 'p',
        rtpCapabilities: { codecs: [{ mimeType: 'audio/opus', kind: 'audio', preferredPayloadType: 200, clockRate: 48000 }] },
      }),
      'INVALID_REQUEST',
    ),
    'capabilities with payload type 200',
  );

  // In range, they reach mediasoup: two-byte extension ids (15–255) and lower-case fingerprints included.
  const { producerId } = await produce(opus(111, 1, [{ uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 15 }]));
  t.ok(producerId, 'a producer with payload type 111 and extension id 15');
  t.same(await connect(dtls('sha-512', 64, 'ab')), {}, 'a sha-512 fingerprint in lower case connects');
  t.ok(joined, 'joined');
});

t.test(
  'an oversized frame is answered with its id; above 4× http.maxMessageBytes the socket is closed (1009); both are counted',
  async (t) => {
    const c = await SignalClient.connect(s.wsUrl);
    t.teardown(() => c.close());
    const sample = 'lessoncast_client_errors_total{code="MESSAGE_TOO_LARGE"}';
    const before = await metricValue(s, sample);
    const big = `{"kind":"request","id":"big-1","method":"raiseHand","data":{"pad":"${'x'.repeat(70 * 1024)}"}}`;
    t.same(
      await within(c.sendRaw(big, 'big-1'), 5000, 'the reply with id big-1'),
      { ok: false, code: 'MESSAGE_TOO_LARGE' },
      'MESSAGE_TOO_LARGE, answered with the id at the start of the frame',
    );
    t.same(c.orphanErrors, [], 'not with id null');
    t.equal(c.ws.readyState, c.ws.OPEN, 'and the connection goes on');
    // 4 × 64 KiB + a little: below ws's own 1 MiB cap, above the documented 4×.
    c.ws.send(`{"kind":"request","id":"huge","method":"raiseHand","data":{"pad":"${'x'.repeat(4 * 65536)}"}}`);
    t.equal((await within(c.closed, 5000, 'close')).code, 1009, 'a frame above 4× the limit closes the socket with 1009');
    t.equal(await metricValue(s, sample), before + 2, 'both counted in /metrics');
  },
);

t.test(
  'tokens living longer than auth.maxTokenTtlSeconds are refused, whoever signed them; the longest links handed out still work',
  async (t) => {
    const secret = new TextEncoder().encode(s.server.config.auth.tokenSecret);
    const now = Math.floor(Date.now() / 1000);
    const forge = (iat: number | undefined, exp: number): Promise<string> => {
      const jwt = new SignJWT({ role: 'admin', name: 'Forger', lessons: '*' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('ops')
        .setIssuer('lessoncast')
        .setAudience('lessoncast')
        .setExpirationTime(exp);
      return (iat === undefined ? jwt : jwt.setIssuedAt(iat)).sign(secret);
    };
    const refusedEverywhere = async (token: string, what: string) => {
      const c = await SignalClient.connect(s.wsUrl);
      t.ok(await expectCode(c.request('authenticate', { token }), 'UNAUTHENTICATED'), `${what}: refused on /ws`);
      c.close();
      t.equal(
        (await fetch(`${s.url}/api/lessons`, { headers: { authorization: `Bearer ${token}` } })).status,
        401,
        `${what}: refused on REST`,
      );
    };
    await refusedEverywhere(await forge(now, 1e300), 'exp = 1e300');
    await refusedEverywhere(await forge(now, now + 32 * 86400), '32 days');
    await refusedEverywhere(await forge(now + 60 * 86400, now + 60 * 86400 + 3600), 'issued in the future, one hour long');
    await refusedEverywhere(await forge(undefined, now + 3600), 'no iat');

    // The admin page's longest link (staff, 30 days) is minted and accepted.
    const minted = await fetch(`${s.url}/api/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await s.token('admin', 'ops')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'archivist', id: 'arch-30', ttlSeconds: 30 * 86400 }),
    });
    t.equal(minted.status, 201, 'a 30-day token is minted');
    const c = await SignalClient.connect(s.wsUrl);
    t.teardown(() => c.close());
    t.equal(
      (await c.request('authenticate', { token: ((await minted.json()) as { token: string }).token })).role,
      'archivist',
      'and accepted',
    );
    const short = new TokenService(secret, 3600, 86400);
    await t.rejects(
      short.mint({ id: 'x', role: 'admin', ttlSeconds: 86401 }),
      { code: 'INVALID_REQUEST' },
      'nothing mints past the maximum',
    );
  },
);

t.test(
  'unauthenticated sockets: closed after http.authTimeoutSeconds (4408), at most http.maxUnauthenticatedPerAddress per address (4429)',
  async (t) => {
    const s2 = await startTestServer({ http: { authTimeoutSeconds: 1, maxUnauthenticatedPerAddress: 3 } });
    t.teardown(() => s2.close());
    const clients: SignalClient[] = [];
    t.teardown(() => clients.forEach((c) => c.close()));
    const connect = async () => {
      const c = await SignalClient.connect(s2.wsUrl);
      clients.push(c);
      return c;
    };
    const authenticated = [await connect(), await connect(), await connect()];
    for (const c of authenticated) await c.request('authenticate', { token: await s2.token('classroom', 'school-1') });
    const idle = [await connect(), await connect(), await connect()];
    t.pass('authenticated sockets do not count against their address');
    const fourth = await connect();
    t.equal((await within(fourth.closed, 5000, 'close')).code, 4429, 'one unauthenticated socket too many is closed at once (4429)');
    const started = Date.now();
    t.same(
      (await within(Promise.all(idle.map((c) => c.closed)), 5000, 'closes')).map((c) => c.code),
      [4408, 4408, 4408],
      'idle sockets are closed (4408)…',
    );
    t.ok(Date.now() - started < 2500, `…after the authentication time (${Date.now() - started} ms), pings or not`);
    await sleep(300);
    t.ok(
      authenticated.every((c) => c.ws.readyState === c.ws.OPEN),
      'authenticated sockets stay open',
    );
    const feed = await FeedClient.connect(s2.url);
    t.equal((await within(feed.closed, 5000, 'close')).code, 4408, 'the live feed has the same door');
    const late = await connect();
    t.equal(
      (await late.request('authenticate', { token: await s2.token('admin', 'ops') })).role,
      'admin',
      'once the idle ones are gone, a new socket is let in',
    );
    t.equal(await metricValue(s2, 'lessoncast_limit_refusals_total{limit="unauthenticatedSockets"}'), 1, 'the refusal is counted');
  },
);

t.test(
  'failed authentications are throttled per address: /ws and REST share one budget (RATE_LIMITED, Retry-After), /metrics counts the refusals',
  async (t) => {
    const s2 = await startTestServer({ auth: { maxFailuresPerAddress: 5, failureWindowSeconds: 3 } });
    t.teardown(() => s2.close());
    const c = await SignalClient.connect(s2.wsUrl);
    t.teardown(() => c.close());
    const codes = await Promise.all(
      Array.from({ length: 60 }, () =>
        c.request('authenticate', { token: 'not-a-jwt' }).then(
          () => 'OK',
          (e: RequestFailed) => e.code,
        ),
      ),
    );
    t.equal(codes.filter((x) => x === 'UNAUTHENTICATED').length, 5, 'the first five failures are answered as such');
    t.equal(codes.filter((x) => x === 'RATE_LIMITED').length, 55, 'every later attempt is refused without being looked at');
    const valid = await s2.token('admin', 'ops');
    t.ok(await expectCode(c.request('authenticate', { token: valid }), 'RATE_LIMITED'), 'a right token too: a guesser learns nothing');
    const rest = await fetch(`${s2.url}/api/lessons`, { headers: { authorization: `Bearer ${valid}` } });
    t.equal(rest.status, 429, 'REST shares the budget: 429');
    const retryAfter = Number(rest.headers.get('retry-after'));
    t.ok(retryAfter >= 1 && retryAfter <= 3, `with Retry-After (${retryAfter} s)`);
    t.equal(((await rest.json()) as { code: string }).code, 'RATE_LIMITED');
    t.equal(await metricValue(s2, 'lessoncast_limit_refusals_total{limit="authFailures"}'), 57, 'each refusal counted');

    await sleep(retryAfter * 1000 + 200);
    t.equal(
      (await fetch(`${s2.url}/api/lessons`, { headers: { authorization: `Bearer ${valid}` } })).status,
      200,
      'the next window lets the address in again',
    );
    for (let i = 0; i < 5; i++)
      t.equal(
        (await fetch(`${s2.url}/api/lessons`, { headers: { authorization: 'Bearer wrong' } })).status,
        401,
        `bad bearer ${i + 1}: 401`,
      );
    const c2 = await SignalClient.connect(s2.wsUrl);
    t.teardown(() => c2.close());
    t.ok(await expectCode(c2.request('authenticate', { token: valid }), 'RATE_LIMITED'), 'REST failures use up the socket budget too');
  },
);

t.test('per-participant limits: transports, producers, consumers (LIMIT_REACHED) and hand and floor actions (RATE_LIMITED)', async (t) => {
  const s2 = await startTestServer({
    lessons: {
      maxTransportsPerParticipant: 2,
      maxProducersPerParticipant: 1,
      maxConsumersPerParticipant: 1,
      actionBurst: 3,
      actionsPerSecond: 2,
    },
  });
  t.teardown(() => s2.close());
  const lessonId = await createLesson(s2);
  const { client: teacher } = await SignalClient.join(s2, 'instructor', 'teacher-1', lessonId);
  const { client: school, joined } = await SignalClient.join(s2, 'classroom', 'school-1', lessonId);
  const { client: other } = await SignalClient.join(s2, 'classroom', 'school-2', lessonId);
  t.teardown(() => [teacher, school, other].forEach((c) => c.close()));

  const send = await teacher.request('createTransport', { direction: 'send' });
  await teacher.request('createTransport', { direction: 'recv' });
  t.ok(await expectCode(teacher.request('createTransport', { direction: 'recv' }), 'LIMIT_REACHED'), 'a third transport');
  const produce = (ssrc: number) =>
    teacher.request('produce', { transportId: send.transportId, kind: 'audio', rtpParameters: opus(111, ssrc), source: 'microphone' });
  const { producerId } = await produce(1111);
  t.ok(await expectCode(produce(2222), 'LIMIT_REACHED'), 'a second producer');
  const recv = await school.request('createTransport', { direction: 'recv' });
  const consume = () =>
    school.request('consume', { transportId: recv.transportId, producerId, rtpCapabilities: joined!.routerRtpCapabilities });
  await consume();
  t.ok(await expectCode(consume(), 'LIMIT_REACHED'), 'a second consumer');
  await teacher.request('closeProducer', { producerId });
  t.ok((await produce(3333)).producerId, 'closing one makes room again');

  const started = Date.now();
  let done = 0;
  let limited = 0;
  for (let i = 0; i < 40; i++) {
    await school.request(i % 2 ? 'lowerHand' : 'raiseHand', {}).then(
      () => done++,
      (e: RequestFailed) => e.code === 'RATE_LIMITED' && limited++,
    );
  }
  const allowed = 3 + Math.ceil(((Date.now() - started) / 1000) * 2);
  t.ok(done <= allowed, `${done} hand actions done in ${Date.now() - started} ms (burst 3, 2 per second)`);
  t.equal(limited, 40 - done, 'the others: RATE_LIMITED');
  await sleep(200);
  const told = other.notifications.filter(
    (n) => (n.event === 'handRaised' || n.event === 'handLowered') && (n.data as { participantId: string }).participantId === 'school-1',
  ).length;
  t.ok(told <= done, `the other classroom was told ${told} times, not 40`);
  t.ok(
    await expectCode(
      teacher
        .request('grantFloor', { participantId: 'school-1' })
        .then(() => teacher.request('revokeFloor', { participantId: 'school-1' }))
        .then(() => teacher.request('grantFloor', { participantId: 'school-1' }))
        .then(() => teacher.request('revokeFloor', { participantId: 'school-1' })),
      'RATE_LIMITED',
    ),
    'the floor is rationed too',
  );
  t.equal(await metricValue(s2, 'lessoncast_limit_refusals_total{limit="transports"}'), 1, 'refusals counted by limit');
  t.equal(await metricValue(s2, 'lessoncast_limit_refusals_total{limit="lessonActions"}'), limited + 1);
});
