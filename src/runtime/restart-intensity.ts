// OTP restart intensity, counted exactly as supervisor.erl's add_restart/1:
//
//   add_restart(Restarts0, Now, Period) ->
//       Threshold = Now - Period,
//       [Now | can_restart(Restarts0, Threshold)].   % keep R >= Threshold
//   ... case length(R1) of CurI when CurI =< I -> ok; _ -> terminate end.
//
// A pure function over restart timestamps (milliseconds here, seconds in OTP),
// so the boundary cases are unit-tested without clocks or threads.

export interface RestartDecision {
  /** The restart times still inside the window, newest first, `now` included. */
  restarts: number[];
  /** True when the count exceeds the intensity: the supervisor must give up. */
  giveUp: boolean;
}

export function addRestart(restarts: readonly number[], now: number, intensity: number, periodMs: number): RestartDecision {
  const threshold = now - periodMs;
  // OTP keeps a restart whose time is >= Threshold: one exactly `period` old still counts.
  const kept = [now];
  for (const time of restarts) if (time >= threshold) kept.push(time);
  return { restarts: kept, giveUp: kept.length > intensity };
}
