import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FfmpegNotFoundError, locateFfmpeg } from '../src/recording/ffmpeg.js';
import { ffmpegRecordArgs } from '../src/recording/ffmpegRun.js';
import { AtomicFile } from '../src/recording/files.js';
import { parseFfmpegPlaylist, renderMasterPlaylist, renderMediaPlaylist } from '../src/recording/hls.js';
import { isRecordingId, isServableFile, type ManifestTrack } from '../src/recording/manifest.js';
import { isRtcp, rtpPayload, senderReports } from '../src/recording/rtp.js';
import { FrameAssembler } from '../src/recording/frames.js';
import { describeConsumerStream, recorderRtpCapabilities } from '../src/recording/sdp.js';

/** An RTP packet: version 2, optional CSRCs/extension/padding, payload. */
function rtp(payload: number[], opts: { csrc?: number; extensionWords?: number; padding?: number } = {}): Buffer {
  const csrc = opts.csrc ?? 0;
  const header = [
    0x80 | csrc | (opts.extensionWords !== undefined ? 0x10 : 0) | (opts.padding ? 0x20 : 0),
    96,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
  ];
  const csrcs = new Array(csrc * 4).fill(0);
  const ext = opts.extensionWords !== undefined ? [0xbe, 0xde, 0, opts.extensionWords, ...new Array(opts.extensionWords * 4).fill(0)] : [];
  const pad = opts.padding ? [...new Array(opts.padding - 1).fill(0), opts.padding] : [];
  return Buffer.from([...header, ...csrcs, ...ext, ...payload, ...pad]);
}

t.test('RTP: RTCP is told apart, payloads found past CSRCs, extensions and padding', async (t) => {
  t.ok(isRtcp(Buffer.from([0x80, 200, 0, 6])), 'a Sender Report is RTCP');
  t.notOk(isRtcp(rtp([1, 2, 3])));
  t.same([...rtpPayload(rtp([7, 8], { csrc: 2, extensionWords: 1, padding: 3 }))!], [7, 8]);
  t.equal(rtpPayload(Buffer.from([0x40, 0, 0])), null, 'not RTP');
});

/** An RTP packet with sequence number, timestamp and marker. */
function rtpAt(seq: number, ts: number, marker: boolean, payload: number[]): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | 96;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  return Buffer.concat([h, Buffer.from(payload)]);
}

t.test('frames: H264 access units from single NALs, STAP-A and FU-A, length-prefixed, keyed by the SPS or an IDR', async (t) => {
  const a = new FrameAssembler('H264');
  t.same(a.push(rtpAt(1, 1000, false, [0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68])), [], 'STAP-A (SPS, PPS): frame not complete yet');
  t.same(a.push(rtpAt(2, 1000, false, [0x7c, 0x85, 1, 2])), [], 'FU-A start of an IDR');
  const [key] = a.push(rtpAt(3, 1000, true, [0x7c, 0x45, 3]));
  t.equal(key?.ts, 1000);
  t.equal(key?.key, true, 'a keyframe');
  t.same(
    [...key!.data],
    [0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 4, 0x65, 1, 2, 3],
    'SPS, PPS and the IDR rebuilt from its fragments',
  );
  t.same([...a.sps!], [0x67, 0x42], 'the SPS is kept for the codec private data');
  const [p] = a.push(rtpAt(4, 4000, true, [0x41, 9]));
  t.same([p?.ts, p?.key, [...p!.data]], [4000, false, [0, 0, 0, 2, 0x41, 9]], 'a P frame');
  t.same(a.push(rtpAt(6, 7000, true, [0x41, 9])), [], 'a frame with a packet missing before it is dropped');
  t.same(a.push(rtpAt(6, 7000, true, [0x41, 9])), [], 'a duplicate is ignored');
  t.equal(a.push(rtpAt(7, 10000, true, [0x41, 9]))[0]?.ts, 10000, 'the next whole frame comes through');
  const [wrapped] = a.push(rtpAt(8, 2 ** 32 + 10000 - 5, true, [0x41, 9])); // 32-bit timestamp wraps
  t.equal(wrapped?.ts, 10000 - 5, 'a timestamp 5 ticks back (modulo 2^32) is 5 ticks back');
  const b = new FrameAssembler('H264');
  b.push(rtpAt(1, 0xfffffff0, true, [0x41, 1]));
  t.equal(b.push(rtpAt(2, 0x10, true, [0x41, 1]))[0]?.ts, 0xfffffff0 + 0x20, 'unwrapped past 2^32');
});

t.test('frames: VP8 without payload descriptors, Opus packet by packet', async (t) => {
  const v = new FrameAssembler('VP8');
  t.same(v.push(rtpAt(1, 100, false, [0x90, 0x80, 0x81, 0x23, 0x00, 0xaa])), [], 'key frame start after a 15-bit picture id');
  const [frame] = v.push(rtpAt(2, 100, true, [0x80, 0x80, 0x81, 0x23, 0xbb]));
  t.same([frame?.key, [...frame!.data]], [true, [0x00, 0xaa, 0xbb]], 'both partitions, descriptors gone');
  t.same(v.push(rtpAt(4, 200, true, [0x00, 0xcc])), [], 'a continuation whose start was lost');
  const o = new FrameAssembler('Opus');
  t.same(
    o.push(rtpAt(1, 960, false, [1, 2])).map((f) => [f.ts, f.key, [...f.data]]),
    [[960, true, [1, 2]]],
  );
});

t.test('RTCP: Sender Reports read from a compound packet', async (t) => {
  const sr = Buffer.alloc(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(1234, 4);
  sr.writeUInt32BE(2208988800 + 1_700_000_000, 8);
  sr.writeUInt32BE(2 ** 31, 12); // half a second
  sr.writeUInt32BE(90000, 16);
  const sdes = Buffer.from([0x81, 202, 0, 1, 0, 0, 0, 0]);
  t.same(senderReports(Buffer.concat([sr, sdes])), [{ ssrc: 1234, wallMs: 1_700_000_000_500, rtpTs: 90000 }]);
  t.same(senderReports(Buffer.concat([sdes, sr.subarray(0, 20)])), [], 'a truncated report is not read');
});

t.test('the stream a recording consumer carries, and the capabilities it offers', async (t) => {
  const h264 = describeConsumerStream('video', {
    codecs: [
      { mimeType: 'video/H264', payloadType: 125, clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' } },
      { mimeType: 'video/rtx', payloadType: 126, clockRate: 90000, parameters: { apt: 125 } },
    ],
    encodings: [{ ssrc: 1 }],
  })!;
  t.equal(h264.codec, 'H264');
  t.equal(h264.payloadType, 125);
  t.equal(
    describeConsumerStream('audio', { codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }], encodings: [] }),
    null,
    'unknown codecs are not recorded',
  );
  const caps = recorderRtpCapabilities({
    codecs: [
      { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, preferredPayloadType: 101, rtcpFeedback: [{ type: 'nack' }] },
      { kind: 'video', mimeType: 'video/rtx', clockRate: 90000, preferredPayloadType: 102, parameters: { apt: 101 } },
    ],
    headerExtensions: [{ kind: 'video', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1 }],
  });
  t.same(
    caps.codecs!.map((c) => c.mimeType),
    ['video/VP8'],
    'no RTX (ffmpeg sends no NACKs)',
  );
  t.same(caps.codecs![0]!.rtcpFeedback, [], 'no feedback');
  t.same(caps.headerExtensions, [], 'no header extensions');
});

t.test('ffmpeg arguments: H264/Opus copied; VP8 re-encoded with a keyframe per segment', async (t) => {
  const files = {
    ffmpegPlaylist: '/r/camera/.r002.m3u8',
    initName: 'r002-init.mp4',
    segmentPattern: '/r/camera/r002-%05d.m4s',
  };
  const copy = ffmpegRecordArgs({
    files,
    stream: { kind: 'video', codec: 'H264', payloadType: 125, clockRate: 90000, parameters: {} },
    offsetSeconds: 12.3456,
    segmentSeconds: 4,
  });
  t.match(
    copy.join(' '),
    /-f matroska -i pipe:0 -map 0:0 -c copy -output_ts_offset 12\.345600 -f hls -hls_time 4 .*-hls_segment_type fmp4 .*-hls_fmp4_init_filename r002-init\.mp4 -hls_segment_filename \/r\/camera\/r002-%05d\.m4s \/r\/camera\/\.r002\.m3u8$/,
  );
  const vp8 = ffmpegRecordArgs({
    files,
    stream: { kind: 'video', codec: 'VP8', payloadType: 101, clockRate: 90000, parameters: {} },
    offsetSeconds: 0,
    segmentSeconds: 4,
  });
  t.match(vp8.join(' '), /-c:v libx264 .*-force_key_frames expr:gte\(t,n_forced\*4\)/);
  t.notMatch(vp8.join(' '), /-c copy/);
});

t.test('HLS: reading ffmpeg playlists, writing ours', async (t) => {
  const parsed = parseFfmpegPlaylist(
    '#EXTM3U\n#EXT-X-MAP:URI="r001-init.mp4"\n#EXTINF:4.000000,\nr001-00000.m4s\n#EXTINF:3.5,\n/abs/r001-00001.m4s\n#EXTINF:2,\n',
  );
  t.same(
    parsed,
    {
      segments: [
        { name: 'r001-00000.m4s', duration: 4 },
        { name: 'r001-00001.m4s', duration: 3.5 },
      ],
      ended: false,
    },
    'only complete entries',
  );
  t.equal(parseFfmpegPlaylist('#EXT-X-ENDLIST\n').ended, true);
  const seg = (run: number, n: number, start: number) => ({
    uri: `camera/r00${run}-0000${n}.m4s`,
    run,
    startSeconds: start,
    duration: 4,
    size: 10,
    sha256: 'a'.repeat(64),
    programDateTime: new Date(Date.UTC(2025, 0, 1, 9, 0, start)).toISOString(),
  });
  const run = (index: number) => ({
    index,
    producerId: 'p',
    participantId: 't',
    sourceCodec: 'H264' as const,
    transcoded: false,
    startedAt: '2025-01-01T09:00:00.000Z',
    offsetSeconds: 0,
    endedAt: null,
    endReason: null,
    init: { uri: `camera/r00${index}-init.mp4`, size: 1, sha256: 'b'.repeat(64) },
    pid: null,
  });
  const track: ManifestTrack = {
    id: 'camera',
    kind: 'video',
    role: 'instructor',
    source: 'camera',
    playlist: 'camera.m3u8',
    codec: 'H264',
    codecs: 'avc1.42e01f',
    container: 'fmp4',
    runs: [run(1), run(2)],
    segments: [seg(1, 0, 0), seg(1, 1, 4), seg(2, 0, 10)],
  };
  const live = renderMediaPlaylist(track, { segmentSeconds: 4, ended: false });
  t.match(live, /#EXT-X-PLAYLIST-TYPE:EVENT\n/);
  t.match(live, /#EXT-X-TARGETDURATION:8\n/);
  t.notMatch(live, /ENDLIST/, 'open while live');
  t.match(
    live,
    /#EXT-X-MAP:URI="camera\/r001-init.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2025-01-01T09:00:00.000Z\n#EXTINF:4.000000,\ncamera\/r001-00000.m4s\n#EXTINF:4.000000,\ncamera\/r001-00001.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="camera\/r002-init.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2025-01-01T09:00:10.000Z\n/,
    'a new run: discontinuity, its init segment, its date',
  );
  t.match(renderMediaPlaylist(track, { segmentSeconds: 4, ended: true }), /#EXT-X-ENDLIST\n$/);
  const voice: ManifestTrack = {
    ...track,
    id: 'voice',
    kind: 'audio',
    source: 'microphone',
    playlist: 'voice.m3u8',
    codec: 'Opus',
    codecs: 'opus',
  };
  const classrooms: ManifestTrack = { ...voice, id: 'classrooms', role: 'classroom', playlist: 'classrooms.m3u8' };
  const master = renderMasterPlaylist([classrooms, track, voice]);
  t.match(
    master,
    /NAME="Instructor",LANGUAGE="und",DEFAULT=YES,AUTOSELECT=YES,URI="voice.m3u8"\n.*NAME="Classrooms",LANGUAGE="und",DEFAULT=NO,AUTOSELECT=NO,URI="classrooms.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1.42e01f,opus",AUDIO="audio"\ncamera.m3u8\n$/,
  );
  t.match(renderMasterPlaylist([voice]), /CODECS="opus"\nvoice.m3u8\n$/, 'audio-only lessons play too');
});

t.test('ids and file names are checked strictly (byte ranges: archive.test.ts, over HTTP)', async (t) => {
  t.ok(isRecordingId('01939e3c-1f0a-7c4e-9b2a-0123456789ab'));
  for (const bad of ['../x', '01939E3C-1F0A-7C4E-9B2A-0123456789AB', '01939e3c-1f0a-7c4e-9b2a-0123456789ab/..', ''])
    t.notOk(isRecordingId(bad), `id ${JSON.stringify(bad)}`);
  for (const good of ['index.m3u8', 'camera.m3u8', 'classrooms-2.m3u8', 'camera/r001-init.mp4', 'camera/r012-00042.m4s'])
    t.ok(isServableFile(good), good);
  for (const bad of [
    'manifest.json',
    'camera/.r001.m3u8',
    '.r001.m3u8',
    '../index.m3u8',
    'camera/../index.m3u8',
    'camera/r001-00001.m4s.tmp',
    'camera/x/r001-init.mp4',
    'audit.log',
    '/etc/passwd',
  ])
    t.notOk(isServableFile(bad), bad);
});

t.test('the ffmpeg locator: config, FFMPEG_PATH, ffmpeg-static, PATH — and an error naming them all', async (t) => {
  const works = new Set(['/opt/ff/ffmpeg', '/env/ffmpeg', '/static/ffmpeg']);
  const probe = async (bin: string): Promise<string> => {
    if (!works.has(bin)) throw new Error('ENOENT');
    return `ffmpeg version test (${bin})`;
  };
  const loadStatic = async (): Promise<string | null> => '/static/ffmpeg';
  t.equal(
    (await locateFfmpeg('/opt/ff/ffmpeg', { env: { FFMPEG_PATH: '/env/ffmpeg' }, probe, loadFfmpegStatic: loadStatic })).source,
    'config recording.ffmpegPath',
  );
  t.equal((await locateFfmpeg('', { env: { FFMPEG_PATH: '/env/ffmpeg' }, probe, loadFfmpegStatic: loadStatic })).source, 'FFMPEG_PATH');
  t.equal(
    (await locateFfmpeg('/missing/ffmpeg', { env: { FFMPEG_PATH: '/missing/too' }, probe, loadFfmpegStatic: loadStatic })).path,
    '/static/ffmpeg',
    'a configured path that does not run falls through',
  );
  const err = await locateFfmpeg('/missing/ffmpeg', { env: { PATH: '/nowhere' }, probe, loadFfmpegStatic: async () => null }).catch(
    (e: unknown) => e,
  );
  t.type(err, FfmpegNotFoundError);
  t.match(
    (err as Error).message,
    /config recording\.ffmpegPath: \/missing\/ffmpeg.*\n.*FFMPEG_PATH: not set\n.*ffmpeg-static: package not installed.*\n.*PATH: no ffmpeg in PATH/s,
    'names every place it looked',
  );
  const real = await locateFfmpeg('', { env: { PATH: process.env['PATH'] ?? '' } });
  t.match(real.version, /ffmpeg version/, `this machine: ${real.path} via ${real.source}`);
});

t.test('atomic files: concurrent writes coalesce, the last content wins, readers never see half a file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-atomic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let content = '';
  let renders = 0;
  const file = new AtomicFile(
    path.join(dir, 'm.json'),
    () => {
      renders++;
      return content;
    },
    (err) => t.fail(err.message),
  );
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 50; i++) {
    content = JSON.stringify({ i, pad: 'x'.repeat(10_000) });
    writes.push(file.write());
  }
  await Promise.all(writes);
  t.equal(JSON.parse(await readFile(path.join(dir, 'm.json'), 'utf8')).i, 49, 'the latest content');
  t.ok(renders < 50, `${renders} writes for 50 requests`);
});
