// node:diagnostics_channel (docs/operating.md): the store's tracing
// channel around every call, and the restart and sweep channels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import diagnosticsChannel from 'node:diagnostics_channel';
import { AppStoppedError } from '../src/index.ts';
import { withApp } from './helpers.ts';

test('supervised-sessions:store traces every store call: start, end, asyncStart, asyncEnd with { op }, error on a failure', () =>
  withApp({}, async (app) => {
    const seen: Array<[string, string, unknown?]> = [];
    const handlers = {
      start: (context: { op: string }) => {
        seen.push(['start', context.op]);
      },
      end: (context: { op: string }) => {
        seen.push(['end', context.op]);
      },
      asyncStart: (context: { op: string; result?: unknown }) => {
        seen.push(['asyncStart', context.op, context.result]);
      },
      asyncEnd: (context: { op: string }) => {
        seen.push(['asyncEnd', context.op]);
      },
      error: (context: { op: string; error?: unknown }) => {
        seen.push(['error', context.op, context.error]);
      },
    };
    const channel = diagnosticsChannel.tracingChannel('supervised-sessions:store');
    channel.subscribe(handlers as never);
    try {
      const id = await app.store.put(null, { a: 1 });
      await app.store.get(id!);
      await app.store.patch(id!, { set: { b: 2 } });
      assert.equal(
        seen.filter(([event]) => event === 'start').map(([, op]) => op),
        ['create', 'get', 'patch'],
      );
      assert.equal(
        seen.filter(([event]) => event === 'asyncEnd').map(([, op]) => op),
        ['create', 'get', 'patch'],
      );
      const created = seen.find(([event, op]) => event === 'asyncStart' && op === 'create');
      assert.is(created![2], id, 'the result is on the context');
      seen.length = 0;
      await app.stop();
      const error = await app.store.get(id!).catch((e: unknown) => e);
      assert.instance(error, AppStoppedError);
      const failed = seen.find(([event]) => event === 'error');
      assert.ok(failed, JSON.stringify(seen.map(([event, op]) => [event, op])));
      assert.is(failed![1], 'get');
      assert.is(failed![2], error);
    } finally {
      channel.unsubscribe(handlers as never);
    }
  }));

test("supervised-sessions:restart and :sweep carry the events' payloads", () =>
  withApp({ cleanerInterval: 3600 }, async (app) => {
    const restarts: unknown[] = [];
    const sweeps: unknown[] = [];
    const onRestart = (message: unknown) => restarts.push(message);
    const onSweep = (message: unknown) => sweeps.push(message);
    diagnosticsChannel.subscribe('supervised-sessions:restart', onRestart);
    diagnosticsChannel.subscribe('supervised-sessions:sweep', onSweep);
    try {
      await app.kill('store');
      const report = await app.sweep();
      assert.is(restarts.length, 1);
      const restart = restarts[0] as { child: string; restarts: number; reason: Error };
      assert.is(restart.child, 'store');
      assert.is(restart.restarts, 1);
      assert.instance(restart.reason, Error);
      assert.equal(sweeps, [report]);
      assert.is((sweeps[0] as { trigger: string }).trigger, 'manual');
    } finally {
      diagnosticsChannel.unsubscribe('supervised-sessions:restart', onRestart);
      diagnosticsChannel.unsubscribe('supervised-sessions:sweep', onSweep);
    }
  }));

test.run();
