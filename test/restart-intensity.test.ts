import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addRestart } from '../src/runtime/restart-intensity.ts';

test('the first restart is allowed and recorded', () => {
  const decision = addRestart([], 1000, 3, 5000);
  assert.equal(decision, { restarts: [1000], giveUp: false });
});

test('intensity 3: the 4th restart inside the period gives up', () => {
  let restarts: number[] = [];
  for (const [i, at] of [0, 100, 200].entries()) {
    const decision = addRestart(restarts, at, 3, 5000);
    assert.is(decision.giveUp, false, `restart ${i + 1}`);
    restarts = decision.restarts;
  }
  assert.is(addRestart(restarts, 300, 3, 5000).giveUp, true);
});

test('a restart exactly `period` old still counts (OTP keeps R >= Now - Period)', () => {
  const decision = addRestart([5000, 4000, 0], 5000, 3, 5000);
  assert.equal(decision.restarts, [5000, 5000, 4000, 0]);
  assert.is(decision.giveUp, true);
});

test('a restart older than the period by 1 ms is forgotten', () => {
  const decision = addRestart([5000, 4000, 0], 5001, 3, 5000);
  assert.equal(decision.restarts, [5001, 5000, 4000]);
  assert.is(decision.giveUp, false);
});

test('restarts spread wider than the period never give up', () => {
  let restarts: number[] = [];
  for (let i = 0; i < 100; i++) {
    const decision = addRestart(restarts, i * 2000, 3, 5000);
    assert.is(decision.giveUp, false);
    restarts = decision.restarts;
    assert.ok(restarts.length <= 3);
  }
});

test('intensity 0: the first restart gives up (OTP: no restarts allowed)', () => {
  assert.is(addRestart([], 0, 0, 5000).giveUp, true);
});

test.run();
