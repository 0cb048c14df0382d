/**
 * ICE-TCP apart from UDP (media.iceTcp.*): the TCP candidate carries its own address and port,
 * and a client that may use TCP only connects there and receives media.
 */
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { freePort } from './support/coturn.js';
import { cleanupStack, createLesson, startTestServer } from './support/lessoncast.js';
import { lessonWithSchool, watchInstructor } from './support/mediaPath.js';

t.test('the TCP candidate has its own address and port; a TCP-only classroom receives video there', async (t) => {
  const cleanup = cleanupStack(t);
  const tcpPort = await freePort();
  // UDP on 127.0.0.1 (any port), TCP on 127.0.0.2 (its own address) at a fixed port.
  const s = await startTestServer({ media: { iceTcp: { listenIp: '127.0.0.2', port: tcpPort } } });
  cleanup.push(() => s.close());
  const l = await lessonWithSchool(s, 'school-b');
  cleanup.push(() => l.close());
  const both = await l.school.request('createTransport', { direction: 'recv' });
  const byProtocol = (p: string): Record<string, unknown> | undefined => both.iceCandidates.find((c) => c['protocol'] === p);
  t.match(byProtocol('udp'), { address: '127.0.0.1' }, 'UDP stays on media.listenIp');
  t.match(byProtocol('tcp'), { address: '127.0.0.2', port: tcpPort, tcpType: 'passive' }, 'TCP on media.iceTcp.listenIp:port');
  t.not(byProtocol('udp')?.['port'], tcpPort, 'apart from the UDP port');

  const media = await watchInstructor(s, l, 'school-b', { forceTcp: true, ice: { iceUseTcp: true } });
  cleanup.push(() => media.close());
  t.match(
    media.transport?.iceSelectedTuple,
    { protocol: 'tcp', localAddress: '127.0.0.2', localPort: tcpPort },
    'mediasoup: the selected tuple is ICE-TCP',
  );
  t.ok(media.packets() > 0, `video over ICE-TCP, first packet after ${Math.round(media.firstPacketMs)} ms`);
});

t.test('announced address and port apart (a port mapping: 443 in front of the listening port)', async (t) => {
  const tcpPort = await freePort();
  const s = await startTestServer({
    media: { iceTcp: { listenIp: '127.0.0.1', announcedAddress: '192.0.2.10', port: tcpPort, announcedPort: 443 } },
  });
  t.teardown(() => s.close());
  const lessonId = await createLesson(s);
  const { client } = await SignalClient.join(s, 'classroom', 'school-b', lessonId);
  t.teardown(() => client.close());
  const tr = await client.request('createTransport', { direction: 'recv' });
  t.match(
    tr.iceCandidates.find((c) => c['protocol'] === 'tcp'),
    { address: '192.0.2.10', port: 443 },
    'the TCP candidate names the mapping',
  );
  t.match(
    tr.iceCandidates.find((c) => c['protocol'] === 'udp'),
    { address: '127.0.0.1' },
    'UDP unchanged',
  );
  const slot = s.internals.pool.slots[0]!;
  t.equal(slot.tcpAnnouncedPort, 443);
});
