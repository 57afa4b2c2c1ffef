import { assign, fromPromise, setup } from 'xstate';

export type SweepTrigger = 'timer' | 'signal' | 'manual';

export interface SweepReport {
  deleted: number;
  durationMs: number;
  trigger: SweepTrigger;
  /** True only when another process sharing the PostgreSQL table was sweeping (deleted is then 0). */
  skipped: boolean;
  /**
   * Live sessions counted by the cleaner at the end of the sweep; null when
   * the sweep was skipped or stopped early, and for ':memory:' (swept by the
   * store actor, which counts only on count()).
   */
  live: number | null;
}

export interface ScheduleHost {
  /** Runs one sweep to completion. */
  sweep(trigger: SweepTrigger): Promise<SweepReport>;
  onSweepStart(trigger: SweepTrigger): void;
  onSweepDone(report: SweepReport): void;
  onSweepFailed(error: Error, trigger: SweepTrigger): void;
  /** Arms the interval timer (entering idle) or clears it (leaving idle). */
  armTimer(): void;
  clearTimer(): void;
}

interface ScheduleContext {
  host: ScheduleHost;
  /** The trigger of the sweep running now. */
  current: SweepTrigger;
  /** The one follow-up sweep that triggers arriving during a sweep coalesce into. */
  followUp: SweepTrigger | null;
}

type ScheduleEvent = { type: 'TRIGGER'; trigger: SweepTrigger } | { type: 'STOP' };

// biome-ignore lint/suspicious/noExplicitAny: xstate's assign() takes the action's params type here; none are used
const startFollowUp = assign<ScheduleContext, any, undefined, ScheduleEvent, never>(({ context }) => ({
  current: context.followUp ?? 'timer',
  followUp: null,
}));

/**
 * When the cleaner sweeps. Triggers (timer, signal, app.sweep()) start a
 * sweep when idle; while a sweep runs, any number of triggers coalesce into
 * exactly one follow-up sweep, never a pile-up. A manual trigger takes
 * precedence in naming the follow-up, since a caller awaits it.
 *
 *   idle ──TRIGGER──▶ sweeping ──done/failed──▶ (followUp ? sweeping : idle)
 *     └────────STOP────────┴──────────▶ stopped
 */
export const scheduleMachine = setup({
  types: {
    context: {} as ScheduleContext,
    events: {} as ScheduleEvent,
    input: {} as { host: ScheduleHost },
  },
  actors: {
    sweep: fromPromise<SweepReport, { host: ScheduleHost; trigger: SweepTrigger }>(({ input }) => input.host.sweep(input.trigger)),
  },
  guards: {
    hasFollowUp: ({ context }) => context.followUp !== null,
  },
}).createMachine({
  id: 'cleaner-schedule',
  context: ({ input }) => ({ host: input.host, current: 'timer', followUp: null }),
  initial: 'idle',
  states: {
    idle: {
      entry: ({ context }) => context.host.armTimer(),
      exit: ({ context }) => context.host.clearTimer(),
      on: {
        TRIGGER: { target: 'sweeping', actions: assign({ current: ({ event }) => (event as { trigger: SweepTrigger }).trigger }) },
        STOP: 'stopped',
      },
    },
    sweeping: {
      entry: ({ context }) => context.host.onSweepStart(context.current),
      invoke: {
        src: 'sweep',
        input: ({ context }) => ({ host: context.host, trigger: context.current }),
        onDone: [
          {
            guard: 'hasFollowUp',
            target: 'sweeping',
            reenter: true,
            actions: [({ context, event }) => context.host.onSweepDone(event.output), startFollowUp],
          },
          { target: 'idle', actions: ({ context, event }) => context.host.onSweepDone(event.output) },
        ],
        onError: [
          {
            guard: 'hasFollowUp',
            target: 'sweeping',
            reenter: true,
            actions: [({ context, event }) => context.host.onSweepFailed(asError(event.error), context.current), startFollowUp],
          },
          { target: 'idle', actions: ({ context, event }) => context.host.onSweepFailed(asError(event.error), context.current) },
        ],
      },
      on: {
        TRIGGER: {
          actions: assign({
            followUp: ({ context, event }) => {
              const trigger = (event as { trigger: SweepTrigger }).trigger;
              return context.followUp === null || trigger === 'manual' ? trigger : context.followUp;
            },
          }),
        },
        STOP: 'stopped',
      },
    },
    stopped: { type: 'final' },
  },
});

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
