// The cleaner's thread: piscina runs these tasks in the cleaner's single
// long-lived thread. Each engine's sweeper (src/engines/<name>/sweeper.ts)
// does the work, loaded here by the URL the engine gives: an app on one
// engine never loads another's client.
import { threadId } from 'node:worker_threads';
import type { Sweeper, SweepResult, SweepTask } from '../engines/engine.ts';
import type { WireError } from '../errors.ts';

/** What the cleaner sends: its engine's sweeper module with the task. */
export type CleanerTask<T> = T & { sweeper: string };

let sweeper: Sweeper | null = null;

async function sweeperOf(url: string): Promise<Sweeper> {
  sweeper ??= (await import(url)) as Sweeper;
  return sweeper;
}

/** Opens the connection and checks the table: a cleaner that cannot sweep fails its start. `database` null: nothing to open. */
export async function ready(
  task: CleanerTask<Omit<SweepTask, 'abort' | 'policy' | 'database'> & { database: string | null }>,
): Promise<number> {
  if (task.database === null) return threadId;
  await (await sweeperOf(task.sweeper)).ready({ ...task, database: task.database });
  return threadId;
}

export async function sweep(task: CleanerTask<SweepTask>): Promise<SweepResult & { error?: WireError }> {
  return (await sweeperOf(task.sweeper)).sweep(task);
}

export async function housekeep(task: CleanerTask<Omit<SweepTask, 'abort' | 'policy'>>): Promise<void> {
  (await sweeperOf(task.sweeper)).housekeep?.(task);
}

export async function close(): Promise<void> {
  await sweeper?.close();
}
