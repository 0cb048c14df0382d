/**
 * bench/sfu/packetSplit.ts: how perf's call chains of the mediasoup worker are split into kinds
 * of work (issue 18's profile). A small `perf script` output written by hand, one sample per rule.
 */
import t from 'tap';
import { kindOfStack, parsePerfScript, splitShares } from '../bench/sfu/packetSplit.js';

const W = '(/root/.cache/lessoncast/mediasoup-worker/3.32.2/mediasoup-worker)';
const K = '([kernel.kallsyms])';
const script = [
  'mediasoup-worke ',
  `\tffffffff81a0 copy_user_enhanced_fast_string ${K}`,
  `\tffffffff81b0 udp_sendmsg ${K}`,
  `\tffffffff81c0 __sys_sendto ${K}`,
  `\t        1234 sendto (/usr/lib/x86_64-linux-gnu/libc.so.6)`,
  `\t        2345 RTC::UdpSocketHandler::Send(unsigned char const*, unsigned long, sockaddr const*, std::function<void (bool)>*) ${W}`,
  `\t        3456 RTC::SimpleConsumer::SendRtpPacket(RTC::RtpPacket*, std::shared_ptr<RTC::RtpPacket>&) ${W}`,
  '',
  'mediasoup-worke ',
  `\t        1111 aesni_gcm_encrypt ${W}`,
  `\t        2222 srtp_protect ${W}`,
  `\t        3333 RTC::SrtpSession::EncryptRtp(unsigned char const**, unsigned long*) ${W}`,
  '',
  'mediasoup-worke ',
  `\t        4444 __memmove_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)`,
  `\t        5555 RTC::BWE::SendPacketHistory::Insert(RTC::BWE::SentPacket const&) ${W}`,
  `\t        6666 RTC::Transport::OnConsumerSendRtpPacket(RTC::Consumer*, RTC::RtpPacket*) ${W}`,
  '',
  'mediasoup-worke ',
  `\t        7777 RTC::RTCP::FeedbackRtpTransportPacket::Parse(unsigned char const*, unsigned long) ${W}`,
  `\t        8888 RTC::Transport::ReceiveRtcpPacket(RTC::RTCP::Packet*) ${W}`,
  '',
  'mediasoup-worke ',
  `\t        9999 RTC::RateCalculator::Update(unsigned long, unsigned long) ${W}`,
  `\t        aaaa RTC::RtpStreamSend::ReceivePacket(RTC::RtpPacket*, std::shared_ptr<RTC::RtpPacket>&) ${W}`,
  '',
  'mediasoup-worke ',
  `\t        bbbb flatbuffers::FlatBufferBuilderImpl<false>::Align(unsigned long) ${W}`,
  `\t        cccc RTC::Transport::FillBufferStats(flatbuffers::FlatBufferBuilderImpl<false>&) ${W}`,
  `\t        dddd RTC::Transport::HandleRequest(Channel::ChannelRequest*) ${W}`,
  '',
  'mediasoup-worke ',
  `\tffffffff8200 finish_task_switch ${K}`,
  `\tffffffff8210 schedule ${K}`,
  `\tffffffff8220 __x64_sys_epoll_wait ${K}`,
  '',
].join('\n');

t.test('perf script is read as one frame list per sample, the sampled instruction first', async (t) => {
  const samples = parsePerfScript(script);
  t.equal(samples.length, 7);
  t.match(samples[0]![0], /^copy_user_enhanced_fast_string \(/, 'addresses dropped');
  t.equal(samples[2]!.length, 3);
});

t.test('the first frame that belongs to a kind decides the sample', async (t) => {
  const kinds = parsePerfScript(script).map((s) => kindOfStack(s).kind);
  t.same(kinds, [
    'send syscall', // the kernel's copy under sendto()
    'SRTP',
    'BWE and pacing', // a memcpy inside the packet history
    'RTCP',
    'stats', // a rate calculator, not the send stream that called it
    'stats', // flatbuffers while filling getStats
    'other (event loop, channel, allocator, scheduler)',
  ]);
  t.equal(
    kindOfStack(['RTC::Transport::HandleRequest(Channel::ChannelRequest*) (w)']).kind,
    'other (event loop, channel, allocator, scheduler)',
    'a request from Node',
  );
  t.equal(kindOfStack(['RTC::SimpleConsumer::SendRtpPacket(RTC::RtpPacket*) (w)']).kind, 'RTP forwarding');
  t.equal(kindOfStack(['__x64_sys_recvmmsg ([kernel.kallsyms])']).kind, 'receive syscalls');
});

t.test('shares sum to one and name the deciding functions', async (t) => {
  const shares = splitShares(parsePerfScript(script));
  t.equal(Math.round(shares.reduce((a, s) => a + s.share, 0) * 1e9), 1e9);
  const stats = shares.find((s) => s.kind === 'stats')!;
  t.equal(stats.share, 2 / 7);
  t.same(
    stats.top.map((f) => f.frame),
    [`RTC::RateCalculator::Update ${W}`, `RTC::Transport::FillBufferStats ${W}`],
    'the deciding functions, without arguments',
  );
});
