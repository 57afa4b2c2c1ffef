import { assign, fromPromise, setup } from 'xstate';
import { addRestart } from './restart-intensity.ts';

export type ChildState = 'starting' | 'running' | 'restarting' | 'stopped' | 'failed';

/** What the machine drives; the Supervisor class implements it with real children. */
export interface SupervisorHost {
  /** Starts every child in order; on a failure stops the started ones in reverse and rejects. */
  startAll(): Promise<void>;
  /** Stops every child in reverse start order, each within the shutdown time. */
  stopAll(): Promise<void>;
  /** Starts a fresh incarnation; reports back with CHILD_STARTED or CHILD_EXITED. */
  restartChild(child: string): void;
  onRestart(child: string, reason: Error, restarts: number): void;
  onGiveUp(child: string, reason: Error): void;
}

export interface SupervisorContext {
  host: SupervisorHost;
  intensity: number;
  periodMs: number;
  /** Restart times inside the window, newest first: supervisor.erl's `restarts`. */
  restartTimes: number[];
  children: Record<string, { state: ChildState; restarts: number }>;
  stopRequested: boolean;
  startError: Error | null;
  failure: Error | null;
}

export type SupervisorEvent =
  | { type: 'STOP' }
  /** An incarnation ended unasked, or a restart failed to start (OTP counts both as restarts). */
  | { type: 'CHILD_EXITED'; child: string; reason: Error; at: number }
  | { type: 'CHILD_STARTED'; child: string };

export interface SupervisorInput {
  host: SupervisorHost;
  children: string[];
  intensity: number;
  periodMs: number;
}

function withChild(context: SupervisorContext, child: string, change: Partial<{ state: ChildState; restarts: number }>) {
  return { ...context.children, [child]: { ...context.children[child], ...change } };
}

function allChildren(context: SupervisorContext, state: ChildState) {
  const children: SupervisorContext['children'] = {};
  for (const [name, child] of Object.entries(context.children)) children[name] = { ...child, state };
  return children;
}

/**
 * The supervisor as an xstate v5 machine: one_for_one, permanent children.
 *
 *   starting ──▶ running ──STOP──▶ stopping ──▶ stopped
 *      │            │ CHILD_EXITED over the intensity
 *      │            ▼
 *      │         failing ──▶ failed      (children stopped, 'error' escalated)
 *      └─ a child fails to start ──▶ stopped (start rejects)
 *
 * A restart is a side effect that reports back as an event, so retries of a
 * failed restart go through the event queue and a STOP can still win (OTP's
 * supervisor queues a failed restart as a message to itself for the same reason).
 */
export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
  },
  actors: {
    startAll: fromPromise<void, SupervisorHost>(({ input }) => input.startAll()),
    stopAll: fromPromise<void, SupervisorHost>(({ input }) => input.stopAll()),
  },
  guards: {
    overIntensity: ({ context, event }) =>
      event.type === 'CHILD_EXITED' && addRestart(context.restartTimes, event.at, context.intensity, context.periodMs).giveUp,
  },
  actions: {
    countRestart: assign(({ context, event }) => {
      if (event.type !== 'CHILD_EXITED') return {};
      const restarts = context.children[event.child].restarts + 1;
      return {
        restartTimes: addRestart(context.restartTimes, event.at, context.intensity, context.periodMs).restarts,
        children: withChild(context, event.child, { state: 'restarting', restarts }),
      };
    }),
    restart: ({ context, event }) => {
      if (event.type !== 'CHILD_EXITED') return;
      context.host.onRestart(event.child, event.reason, context.children[event.child].restarts);
      context.host.restartChild(event.child);
    },
    giveUp: assign(({ context, event }) => {
      if (event.type !== 'CHILD_EXITED') return {};
      const failure = new Error(
        `supervisor gave up: more than ${context.intensity} restarts within ${context.periodMs / 1000} s ` +
          `(last: ${event.child}: ${event.reason.message})`,
        { cause: event.reason },
      );
      return { failure, children: withChild(context, event.child, { state: 'failed' }) };
    }),
    escalate: ({ context, event }) => {
      if (event.type === 'CHILD_EXITED' && context.failure) context.host.onGiveUp(event.child, context.failure);
    },
    markStoppedUnlessFailed: assign(({ context }) => {
      const children: SupervisorContext['children'] = {};
      for (const [name, child] of Object.entries(context.children)) {
        children[name] = { ...child, state: child.state === 'failed' ? 'failed' : 'stopped' };
      }
      return { children };
    }),
    markRunning: assign(({ context, event }) =>
      event.type === 'CHILD_STARTED' ? { children: withChild(context, event.child, { state: 'running' }) } : {},
    ),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    host: input.host,
    intensity: input.intensity,
    periodMs: input.periodMs,
    restartTimes: [],
    children: Object.fromEntries(input.children.map((name) => [name, { state: 'starting' as ChildState, restarts: 0 }])),
    stopRequested: false,
    startError: null,
    failure: null,
  }),
  initial: 'starting',
  on: {
    CHILD_EXITED: [
      { guard: 'overIntensity', target: '.failing', actions: ['giveUp', 'escalate'] },
      { actions: ['countRestart', 'restart'] },
    ],
    CHILD_STARTED: { actions: 'markRunning' },
  },
  states: {
    starting: {
      invoke: {
        src: 'startAll',
        input: ({ context }) => context.host,
        onDone: [{ guard: ({ context }) => context.stopRequested, target: 'stopping' }, { target: 'running' }],
        onError: {
          target: 'stopped',
          actions: assign(({ context, event }) => ({
            startError: event.error instanceof Error ? event.error : new Error(String(event.error)),
            children: allChildren(context, 'stopped'),
          })),
        },
      },
      on: { STOP: { actions: assign({ stopRequested: true }) } },
    },
    running: {
      on: { STOP: 'stopping' },
    },
    stopping: {
      // Exits seen while stopping are the ones we asked for: no restarts.
      on: { CHILD_EXITED: {}, CHILD_STARTED: {} },
      invoke: {
        src: 'stopAll',
        input: ({ context }) => context.host,
        onDone: { target: 'stopped', actions: assign(({ context }) => ({ children: allChildren(context, 'stopped') })) },
        onError: { target: 'stopped', actions: assign(({ context }) => ({ children: allChildren(context, 'stopped') })) },
      },
    },
    failing: {
      on: { CHILD_EXITED: {}, CHILD_STARTED: {}, STOP: {} },
      invoke: {
        src: 'stopAll',
        input: ({ context }) => context.host,
        onDone: { target: 'failed', actions: 'markStoppedUnlessFailed' },
        onError: { target: 'failed', actions: 'markStoppedUnlessFailed' },
      },
    },
    stopped: {
      on: { CHILD_EXITED: {}, CHILD_STARTED: {}, STOP: {} },
    },
    failed: {
      on: { CHILD_EXITED: {}, CHILD_STARTED: {}, STOP: {} },
    },
  },
});
