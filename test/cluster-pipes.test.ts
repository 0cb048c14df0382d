/**
 * Media between two nodes: two real mediasoup workers (one per "node") and the signed channel on a
 * real Redis. An edge pipes the origin's producer once, however many local consumers ask for it;
 * its packets arrive intact at the edge's consumer; pause, resume and close follow; and on the
 * wire between the nodes the media is SRTP, never the plain payload.
 */
import dgram from 'node:dgram';
import t from 'tap';
import type { types } from 'mediasoup';
import { PipeImport, PipeExports, type PipeEnd, type PipedProducer } from '../src/cluster/pipes.js';
import { lessonMediaCodecs } from '../src/media/codecs.js';
import { loadMediasoup, resolveWorkerBin } from '../src/media/mediasoup.js';
import { clusterRig, quietLog as quiet } from './support/cluster.js';

const MARKER = Buffer.from('LESSONCAST-PLAINTEXT-MARKER');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addresses = { listenIp: '127.0.0.1' };

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

function udp(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

/** A plain-RTP Opus producer on `router`, fed by `send()` with packets whose payload carries MARKER. */
async function opusSource(router: types.Router) {
  const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
  const producer = await transport.produce({
    kind: 'audio',
    rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] },
  });
  const socket = await udp();
  let seq = 0;
  const send = (): void => {
    const p = Buffer.alloc(12 + MARKER.length + 4);
    p[0] = 0x80;
    p[1] = 100;
    p.writeUInt16BE(seq & 0xffff, 2);
    p.writeUInt32BE((seq * 960) >>> 0, 4);
    p.writeUInt32BE(1111, 8);
    MARKER.copy(p, 12);
    p.writeUInt32BE(seq, 12 + MARKER.length);
    seq++;
    socket.send(p, transport.tuple.localPort, '127.0.0.1');
  };
  const timer = setInterval(send, 20);
  return { producer, stop: () => (clearInterval(timer), socket.close(), transport.close()) };
}

/** A plain consumer of `producerId` on `router`, counting the packets whose payload is intact. */
async function plainSink(router: types.Router, producerId: string) {
  const socket = await udp();
  let intact = 0;
  socket.on('message', (m) => {
    if (m.length > 12 && m.includes(MARKER)) intact++;
  });
  const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
  await transport.connect({ ip: '127.0.0.1', port: socket.address().port });
  const consumer = await transport.consume({ producerId, rtpCapabilities: router.rtpCapabilities });
  return { consumer, packets: () => intact, close: () => (transport.close(), socket.close()) };
}

t.test('cross-node pipes', async (t) => {
  const rig = await clusterRig('pipes-test');
  const channel = (nodeId: string) => rig.channel(nodeId);
  const originChannel = channel('origin');
  const edgeChannel = channel('edge');
  await Promise.all([originChannel.start(), edgeChannel.start()]);

  const ms = await loadMediasoup(resolveWorkerBin('').path);
  const workers = [await ms.createWorker({ logLevel: 'warn' }), await ms.createWorker({ logLevel: 'warn' })];
  const originRouter = await workers[0]!.createRouter({ mediaCodecs: lessonMediaCodecs });
  const edgeRouter = await workers[1]!.createRouter({ mediaCodecs: lessonMediaCodecs });
  const origin = new PipeExports({
    channel: originChannel,
    addresses,
    routerOf: (id) => (id === 'L1' ? originRouter : undefined),
    log: quiet,
  });
  const source = await opusSource(originRouter);
  t.teardown(async () => {
    source.stop();
    for (const w of workers) w.close();
    await rig.close();
  });

  /** The edge's pipe of a lesson, noting the producers it is told closed. */
  const edgePipe = (lessonId: string, closed: string[] = []): PipeImport =>
    new PipeImport({
      channel: edgeChannel,
      addresses,
      lessonId,
      from: 'origin',
      router: () => edgeRouter,
      log: quiet,
      onProducerClosed: (id) => closed.push(id),
    });

  await t.test('an edge pipes a producer once and fans it out locally', async (t) => {
    const closed: string[] = [];
    const edge = edgePipe('L1', closed);
    const [p1, p2] = await Promise.all([edge.producer(source.producer.id), edge.producer(source.producer.id)]);
    t.equal(p1, p2, 'two classrooms asking at once share one piped producer');
    t.equal(p1.id, source.producer.id, 'the piped producer keeps its id on the edge');
    t.same(origin.edgesOf('L1'), ['edge'], 'the origin knows its edge');
    const pipeTransports = (await originRouter.dump()).transportIds.length;
    const sinks = [await plainSink(edgeRouter, p1.id), await plainSink(edgeRouter, p1.id)];
    await until('media at both edge consumers', () => sinks.every((s) => s.packets() >= 20));
    t.pass(`the edge's two consumers receive the origin's packets intact (${sinks.map((s) => s.packets()).join(', ')})`);
    const originDump = await originRouter.dump();
    t.equal(originDump.transportIds.length, pipeTransports, 'no transport added at the origin for the second consumer');
    t.equal(Object.keys(originDump.mapProducerIdConsumerIds).length, 1);
    t.equal(originDump.mapProducerIdConsumerIds[0]!.values.length, 1, 'the producer has one consumer at the origin: the pipe');

    await source.producer.pause();
    await until('pause reaches the edge', () => p1.paused);
    t.pass('a producer paused at the origin is paused on the edge');
    await source.producer.resume();
    await until('resume reaches the edge', () => !p1.paused);
    t.pass('and resumed');

    await t.rejects(
      edge.producer('no-such-producer'),
      { code: 'PRODUCER_NOT_FOUND' },
      'an unknown producer: PRODUCER_NOT_FOUND from the origin',
    );
    const other = edgePipe('L-unknown');
    await t.rejects(
      other.producer(source.producer.id),
      { code: 'LESSON_NOT_FOUND' },
      'a lesson the node is not origin of: LESSON_NOT_FOUND',
    );
    other.close();

    edge.close();
    await until('the origin closes its end', () => origin.edgesOf('L1').length === 0);
    t.pass('an edge that leaves closes both ends');
    for (const s of sinks) s.close();
    t.same(closed, [], 'nothing reported closed while the producer lives');
  });

  await t.test('between the nodes the media is SRTP', async (t) => {
    // The test stands as the edge, with a relay of its own between the two pipe ends.
    const edgeEnd = await edgeRouter.createPipeTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      enableSrtp: true,
      enableRtx: true,
    });
    const relay = await udp();
    const seen: Buffer[] = [];
    const originAddr = { port: 0 };
    relay.on('message', (m, rinfo) => {
      if (rinfo.port === edgeEnd.tuple.localPort) {
        if (originAddr.port) relay.send(m, originAddr.port, '127.0.0.1');
      } else {
        seen.push(m);
        relay.send(m, edgeEnd.tuple.localPort, '127.0.0.1');
      }
    });
    const end: PipeEnd = {
      ip: '127.0.0.1',
      port: relay.address().port,
      srtpParameters: edgeEnd.srtpParameters as PipeEnd['srtpParameters'],
    };
    const remote = (await edgeChannel.request('origin', 'pipe.open', { lessonId: 'L1', end })) as PipeEnd;
    t.ok(remote.srtpParameters.keyBase64.length > 20, `the origin's end has an SRTP key (${remote.srtpParameters.cryptoSuite})`);
    originAddr.port = remote.port;
    await edgeEnd.connect({ ip: '127.0.0.1', port: relay.address().port, srtpParameters: remote.srtpParameters as types.SrtpParameters });
    const d = (await edgeChannel.request('origin', 'pipe.producer', { lessonId: 'L1', producerId: source.producer.id })) as PipedProducer;
    const piped = await edgeEnd.produce({ id: d.producerId, kind: d.kind, rtpParameters: d.rtpParameters });
    const sink = await plainSink(edgeRouter, piped.id);
    await until('media through the relay', () => sink.packets() >= 20 && seen.length >= 20);
    t.equal(
      seen.filter((m) => m.includes(MARKER)).length,
      0,
      `none of the ${seen.length} packets between the nodes carries the plain payload`,
    );
    t.ok(sink.packets() >= 20, 'and the edge decrypts them');
    sink.close();
    edgeEnd.close();
    relay.close();
    await edgeChannel.request('origin', 'pipe.close', { lessonId: 'L1' });
  });

  await t.test('a producer closed at the origin closes on the edge', async (t) => {
    const closed: string[] = [];
    const edge = edgePipe('L1', closed);
    const piped = await edge.producer(source.producer.id);
    source.producer.close();
    await until('close reaches the edge', () => piped.closed);
    t.same(closed, [source.producer.id], 'the edge is told which producer closed');
    edge.close();
  });
});
