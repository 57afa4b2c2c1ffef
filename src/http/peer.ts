import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A front door's framework is an optional peer dependency: importing the
 * front door without it fails at once, with one line naming what to install,
 * rather than later with a module-resolution trace.
 */
export function requirePeer(name: string, frontDoor: string): void {
  try {
    require.resolve(name);
  } catch {
    throw new Error(`${frontDoor} needs the "${name}" package, which is not installed: npm install ${name}`);
  }
}

/** Loads a CommonJS peer (express-session) synchronously: no top-level await, so require(esm) users can load us. */
export function loadPeer<T>(name: string, frontDoor: string): T {
  requirePeer(name, frontDoor);
  return require(name) as T;
}
