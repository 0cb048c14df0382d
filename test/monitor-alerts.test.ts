import t from 'tap';
import { AlertRules } from '../src/monitor/alerts.js';

const rules = () => new AlertRules({ lossPct: 5, lossSeconds: 10, disconnectedSeconds: 5, recordingFault: true });
const ok = (lossPct: number | null, intervalMs = 5000) => ({ connected: true, lossPct, intervalMs });
const down = { connected: false, lossPct: null, intervalMs: 5000, problem: 'media transport silent for 12 s' };

t.test('loss above the threshold for the configured time raises once, and clears once', async (t) => {
  const r = rules();
  // 5 s samples: a lossy sample stands for the 5 s before it.
  t.same(r.observe(5_000, 'L', 's1', ok(8)), [], '5 s of loss: not yet');
  const raised = r.observe(10_000, 'L', 's1', ok(9));
  t.match(raised, [{ rule: 'packetLoss', state: 'raised', lessonId: 'L', schoolId: 's1', value: 9 }], '10 s of loss: raised');
  t.same(r.observe(15_000, 'L', 's1', ok(12)), [], 'not raised twice');
  t.match(r.observe(20_000, 'L', 's1', ok(1)), [{ rule: 'packetLoss', state: 'cleared', value: 1 }], 'cleared when loss drops');
  t.same(r.observe(25_000, 'L', 's1', ok(6)), [], 'a new episode starts over');
  t.same(r.observe(30_000, 'L', 's1', ok(5)), [], 'exactly the threshold is not above it');
  t.same(r.observe(35_000, 'L', 's1', ok(6)), [], 'and breaks the run');
  t.same(r.observe(36_000, 'L', 's1', ok(null)), [], 'no measurement: no change');
});

t.test('an unreachable school raises after disconnectedSeconds and clears when back', async (t) => {
  const r = rules();
  t.same(r.observe(0, 'L', 's1', down), []);
  t.match(r.observe(5_000, 'L', 's1', down), [
    { rule: 'schoolDisconnected', state: 'raised', message: /s1 is unreachable: media transport silent/ },
  ]);
  t.same(r.observe(10_000, 'L', 's1', down), [], 'once');
  t.match(r.observe(15_000, 'L', 's1', ok(0)), [{ rule: 'schoolDisconnected', state: 'cleared' }]);
  const instant = new AlertRules({ lossPct: 5, lossSeconds: 10, disconnectedSeconds: 0, recordingFault: true });
  t.match(instant.observe(0, 'L', 's2', down), [{ rule: 'schoolDisconnected', state: 'raised' }], 'disconnectedSeconds 0: at once');
});

t.test('a school that leaves or a lesson that ends clears what was raised', async (t) => {
  const r = rules();
  r.observe(0, 'L', 's1', ok(50));
  r.observe(10_000, 'L', 's1', ok(50));
  r.observe(0, 'L', 's2', down);
  r.observe(6_000, 'L', 's2', down);
  t.match(r.observe(12_000, 'L', 's2', down), []);
  t.match(r.forget('L', 's1'), [{ rule: 'packetLoss', state: 'cleared', schoolId: 's1', message: 's1 left the lesson' }]);
  t.same(r.forget('L', 's1'), [], 'forgotten');
  t.match(r.recordingFault('L', 'disk full'), [{ rule: 'recordingFault', state: 'raised', message: 'recording fault: disk full' }]);
  t.match(r.forget('L'), [
    { rule: 'schoolDisconnected', state: 'cleared', schoolId: 's2' },
    { rule: 'recordingFault', state: 'cleared' },
  ]);
  t.same(r.recordingRecovered('L'), [], 'nothing left to clear');
});

t.test('losing the connection clears a loss alert; recording fault alerts can be turned off', async (t) => {
  const r = rules();
  r.observe(0, 'L', 's1', ok(50));
  r.observe(10_000, 'L', 's1', ok(50));
  t.match(r.observe(15_000, 'L', 's1', down), [{ rule: 'packetLoss', state: 'cleared' }]);
  const quiet = new AlertRules({ lossPct: 5, lossSeconds: 10, disconnectedSeconds: 5, recordingFault: false });
  t.same(quiet.recordingFault('L', 'x'), []);
});
