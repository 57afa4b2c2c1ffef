// The registry: which engine a `database` value selects. Nothing outside
// src/engines/ names an engine; adding one is a folder and a line here
// (docs/architecture.md, "How to add an engine").
import type { Engine } from './engine.ts';
import { postgres } from './postgres/index.ts';
import { redis } from './redis/index.ts';
import { sqlite } from './sqlite/index.ts';

export type { AdminSettings, AppShared, Engine, EngineAdmin, Location, SessionRow, Sweeper, SweepResult, SweepTask } from './engine.ts';

/** In the order they are asked; SQLite, last, takes every value no other engine recognizes (a file path). */
export const ENGINES: readonly Engine[] = [postgres, redis, sqlite];

export function engineFor(database: string): Engine {
  return ENGINES.find((engine) => engine.recognizes(database)) ?? ENGINES[ENGINES.length - 1];
}

export function engineNamed(name: string): Engine {
  const engine = ENGINES.find((candidate) => candidate.name === name);
  if (!engine) throw new TypeError(`no engine named ${JSON.stringify(name)}`);
  return engine;
}

/** The forms a `database` value may take, for the config error: "a, b or c". */
export const DATABASE_FORMS = [...ENGINES]
  .reverse()
  .map((engine) => engine.form)
  .join(', ')
  .replace(/, ([^,]*)$/, ' or $1');
