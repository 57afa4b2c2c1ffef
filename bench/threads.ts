// Where a server process's CPU goes, thread by thread, read from Linux's
// /proc/<pid>/task/<tid>/stat (elsewhere: not measured). Node names its
// threads: the main thread is the process's own id, worker_threads are
// "WorkerThread", V8's platform threads (concurrent GC, compiler) "V8Worker".
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadSplit {
  /** CPU µs per request (user + system) of each group of threads. */
  main: number;
  workers: number;
  v8: number;
  other: number;
  /** Of the total, the µs per request spent in the kernel. */
  system: number;
}

type Sample = Map<number, { group: keyof Omit<ThreadSplit, 'system'>; user: number; system: number }>;

// Clock ticks per second for utime/stime: 100 on every Linux build Node supports.
const TICK_US = 1e6 / 100;

export function sampleThreads(pid: number | undefined): Sample | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  try {
    const sample: Sample = new Map();
    for (const entry of readdirSync(`/proc/${pid}/task`)) {
      const tid = Number(entry);
      const stat = readFileSync(`/proc/${pid}/task/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      // Fields after "(comm) ": state is the first; utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const group = tid === pid ? 'main' : name === 'WorkerThread' ? 'workers' : name === 'V8Worker' ? 'v8' : 'other';
      sample.set(tid, { group, user: Number(fields[11]) * TICK_US, system: Number(fields[12]) * TICK_US });
    }
    return sample;
  } catch {
    return null;
  }
}

/** CPU per request between two samples, by group; threads born in between count from zero. */
export function splitPerRequest(before: Sample | null, after: Sample | null, requests: number): ThreadSplit | undefined {
  if (!before || !after || requests <= 0) return undefined;
  const split: ThreadSplit = { main: 0, workers: 0, v8: 0, other: 0, system: 0 };
  for (const [tid, now] of after) {
    const then = before.get(tid) ?? { user: 0, system: 0 };
    split[now.group] += (now.user - then.user + now.system - then.system) / requests;
    split.system += (now.system - then.system) / requests;
  }
  return split;
}

/**
 * CPU µs (user + system) used so far by the processes of the PostgreSQL
 * server whose postmaster is `postmasterPid` (the server and its backends:
 * its children), or null off Linux.
 */
export function postgresCpu(postmasterPid: number | null): number | null {
  if (postmasterPid === null || process.platform !== 'linux') return null;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (Number(entry) !== postmasterPid && ppid !== postmasterPid) continue;
      total += (Number(fields[11]) + Number(fields[12])) * TICK_US;
    } catch {
      /* the process ended meanwhile */
    }
  }
  return total;
}
