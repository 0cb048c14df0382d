import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadMediasoup, mediasoupVersion, resolveWorkerBin } from '../src/media/mediasoup.js';
import { WorkerPool, type WorkerPoolOptions } from '../src/media/workerPool.js';
import { lessonMediaCodecs } from '../src/media/codecs.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/** One worker on loopback, ports from the OS; tests change what they test. */
const poolOptions: WorkerPoolOptions = {
  workers: 1,
  listenIp: '127.0.0.1',
  announcedAddress: '127.0.0.1',
  webRtcServerPort: 0,
  iceTcp: { listenIp: '127.0.0.1', announcedAddress: '127.0.0.1', port: 0, announcedPort: 0 },
  rtcMinPort: 40000,
  rtcMaxPort: 49999,
  logLevel: 'warn',
  udpRecvBufferBytes: 0,
  udpSendBatch: true,
};

/** Whether our offline build's BUILDINFO (next to the binary) has a line matching `pattern`; false without one. */
function builtWith(workerBin: string, pattern: RegExp): boolean {
  const buildInfo = path.join(path.dirname(workerBin), 'BUILDINFO');
  return existsSync(buildInfo) && pattern.test(readFileSync(buildInfo, 'utf8'));
}

t.test('the worker binary is found and a real mediasoup worker runs a router', async (t) => {
  const bin = resolveWorkerBin('');
  t.ok(existsSync(bin.path), `worker binary exists (${bin.source}: ${bin.path})`);
  const ms = await loadMediasoup(bin.path);
  t.equal(ms.version, mediasoupVersion(), 'the mediasoup module loaded is the one installed');
  const worker = await ms.createWorker({ logLevel: 'warn' });
  t.ok(worker.pid > 0, 'worker process started');
  const router = await worker.createRouter({ mediaCodecs: lessonMediaCodecs });
  const codecs = router.rtpCapabilities.codecs!.map((c) => c.mimeType);
  t.ok(codecs.indexOf('video/H264') < codecs.indexOf('video/VP8'), 'H264 offered before VP8');
  t.ok(codecs.includes('audio/opus'));
  // The binary is the one built for this mediasoup version (the worker refuses a version
  // mismatch at start, but BUILDINFO says what our build was made from).
  t.match(ms.version, /^3\.32\./, 'mediasoup 3.32.x (the memory-safety fixes since 3.19)');
  if (existsSync(path.join(path.dirname(bin.path), 'BUILDINFO')))
    t.ok(
      builtWith(bin.path, new RegExp(`^mediasoup ${ms.version.replace(/\./g, '\\.')}$`, 'm')),
      `BUILDINFO: built from mediasoup ${ms.version}`,
    );
  // By default libsrtp is our static OpenSSL build; then Debian's NSS-based libsrtp2 must not be loaded.
  const staticSrtp = builtWith(bin.path, /^libsrtp .*static, OpenSSL/m);
  const maps = readFileSync(`/proc/${worker.pid}/maps`, 'utf8');
  if (staticSrtp) {
    t.notMatch(maps, /libsrtp2\.so|libnss3\.so/, "built with libsrtp on OpenSSL: Debian's libsrtp2/NSS not loaded");
    t.match(maps, /libcrypto\.so/, 'OpenSSL libcrypto loaded');
  } else t.comment(`worker with a shared libsrtp2 (${/libsrtp2\.so/.test(maps) ? 'loaded' : 'not seen'})`);
  const usage = await worker.getResourceUsage();
  t.type(usage.ru_utime, 'number', 'resource usage answers');
  t.same((await worker.dump()).routerIds, [router.id], 'router listed by the worker');
  router.close();
  t.same((await worker.dump()).routerIds, [], 'router closed');
  worker.close();
  t.ok(worker.closed);
});

t.test('worker pool: a WebRtcServer per worker, least-loaded placement, replacement after death', async (t) => {
  const ms = await loadMediasoup(resolveWorkerBin('').path);
  const pool = new WorkerPool(ms, { ...poolOptions, workers: 2 }, quiet);
  t.teardown(() => pool.close());
  await pool.start();
  t.equal(pool.slots.length, 2);
  const slotA = pool.leastLoaded();
  const a = await pool.createRouter(slotA);
  t.not(pool.leastLoaded().index, slotA.index, 'the next router goes to the idle worker');
  const died = new Promise<number>((resolve) => pool.once('workerDied', (i) => resolve(i)));
  const replaced = new Promise<number>((resolve) => pool.once('workerReplaced', (i) => resolve(i)));
  const oldPid = slotA.worker.pid;
  process.kill(oldPid, 'SIGKILL');
  t.equal(await died, slotA.index, 'death detected');
  t.ok(a.closed, "the dead worker's router is closed");
  t.equal(await replaced, slotA.index, 'replaced in the same slot');
  t.not(pool.slots[slotA.index]!.worker.pid, oldPid, 'a new process');
  t.equal(pool.aliveCount, 2);
  t.equal(slotA.routers, 0, 'the replacement starts with no routers counted');
});

t.test('the worker comes from the config, MEDIASOUP_WORKER_BIN, the path setup recorded, then mediasoup itself', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-worker-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const recorded = path.join(dir, 'worker-bin');
  const { MEDIASOUP_WORKER_BIN: _bin, ...env } = process.env;
  t.equal(
    resolveWorkerBin('', env, recorded).source,
    'mediasoup package',
    'nothing recorded: the prebuilt worker inside node_modules/mediasoup',
  );
  writeFileSync(recorded, '/cache/mediasoup-worker/3.32.2-abc/mediasoup-worker\n');
  t.same(
    resolveWorkerBin('', env, recorded),
    { path: '/cache/mediasoup-worker/3.32.2-abc/mediasoup-worker', source: recorded },
    'setup recorded its build',
  );
  t.same(resolveWorkerBin('', { ...env, MEDIASOUP_WORKER_BIN: '/env/worker' }, recorded), {
    path: '/env/worker',
    source: 'MEDIASOUP_WORKER_BIN',
  });
  t.equal(
    resolveWorkerBin('/x/mediasoup-worker', { ...env, MEDIASOUP_WORKER_BIN: '/env/worker' }, recorded).source,
    'config media.workerBin',
    'the config wins',
  );
});

t.test("media.udpRecvBufferBytes sizes the WebRtcServer's UDP socket (checked with ss)", async (t) => {
  const ms = await loadMediasoup(resolveWorkerBin('').path);
  const receiveBuffer = async (udpRecvBufferBytes: number): Promise<number> => {
    const pool = new WorkerPool(ms, { ...poolOptions, udpRecvBufferBytes }, quiet);
    await pool.start();
    try {
      const { udpSockets } = await pool.slots[0]!.webRtcServer.dump();
      const port = udpSockets[0]!.port;
      // skmem:(r0,rb<bytes>,...): rb is the socket's receive buffer as the kernel set it.
      const line = execFileSync('ss', ['-uamnH', 'sport', '=', `:${port}`], { encoding: 'utf8' });
      return Number(/\brb(\d+)/.exec(line)?.[1]);
    } finally {
      await pool.close();
    }
  };
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
  const asked = Math.min(1 << 20, rmemMax);
  // Linux doubles SO_RCVBUF for its bookkeeping.
  t.equal(await receiveBuffer(asked), 2 * asked, `asked ${asked} bytes`);
  t.equal(await receiveBuffer(0), rmemDefault, '0 leaves the kernel default');

  // Asking for more than the kernel allows is capped silently by the kernel: the pool says so.
  const warnings: string[] = [];
  const pool = new WorkerPool(
    ms,
    { ...poolOptions, udpRecvBufferBytes: rmemMax + 1 },
    { ...quiet, warn: (_o: object, msg: string) => void warnings.push(msg) },
  );
  await pool.start();
  await pool.close();
  t.match(warnings.join('\n'), /above net\.core\.rmem_max/, 'a warning names rmem_max');
});
