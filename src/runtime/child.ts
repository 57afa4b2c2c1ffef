// The shape every supervised child shares, whatever runs it (a Worker of our
// own, or the single thread of a piscina pool). The supervisor only sees this.

/**
 * Why an incarnation ended, after OTP's exit reasons: `normal` (it ended by
 * itself), `shutdown` (we asked it to stop), `killed` (terminated abruptly:
 * cannot be trapped, like `exit(Pid, kill)`), `crashed` (anything else).
 */
export type ExitReason = { kind: 'normal' } | { kind: 'shutdown' } | { kind: 'killed' } | { kind: 'crashed'; error: Error };

export interface Incarnation {
  readonly threadId: number;
  /** Settles once, when the thread has exited, with the reason. */
  readonly exited: Promise<ExitReason>;
  /** Graceful stop within `timeoutMs`, then terminate (OTP shutdown: integer timeout, then brutal_kill). */
  stop(timeoutMs: number): Promise<ExitReason>;
  /** Terminate at once, as a crash would; resolves once the exit has been seen. */
  kill(): Promise<void>;
}

export interface ChildSpec {
  readonly name: string;
  /** Starts a fresh incarnation and resolves after its ready handshake; a rejection leaves nothing running. */
  start(): Promise<Incarnation>;
}

export function describeExit(reason: ExitReason): Error {
  switch (reason.kind) {
    case 'crashed':
      return reason.error;
    case 'killed':
      return new Error('killed: the thread was terminated');
    case 'normal':
      return new Error('exited normally although it is a permanent child');
    case 'shutdown':
      return new Error('shut down');
  }
}
