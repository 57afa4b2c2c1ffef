// How long an engine waits before reconnect attempt `n` (0-based): 25 ms
// doubling to 1 s, with jitter — the same for every engine with a server.
export function backoffMs(attempt: number): number {
  const base = Math.min(1000, 25 * 2 ** attempt);
  return base / 2 + (Math.random() * base) / 2;
}
