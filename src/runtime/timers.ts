// Node clamps a setTimeout delay above 2^31 - 1 ms (~24.8 days) to 1 ms, with
// only a warning: a 30-day interval would fire every millisecond. Every
// delay taken from config goes through here.

export const MAX_DELAY_MS = 2 ** 31 - 1;

export function safeDelay(ms: number): number {
  return Math.min(Math.max(1, Math.ceil(ms)), MAX_DELAY_MS);
}

/** A timer that fires after `ms`, however long: it re-arms past the 24.8-day limit. */
export function setLongTimeout(callback: () => void, ms: number, unref = true): { clear(): void } {
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = due - Date.now();
    timer = setTimeout(left > MAX_DELAY_MS ? arm : callback, safeDelay(left));
    if (unref) timer.unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
