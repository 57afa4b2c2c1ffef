import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * An adapter's framework is an optional peer dependency: importing the
 * adapter without it fails at once, with one line naming what to install,
 * rather than later with a module-resolution trace.
 */
export function requirePeer(name: string, adapter: string): void {
  try {
    require.resolve(name);
  } catch {
    throw new Error(`${adapter} needs the "${name}" package, which is not installed: npm install ${name}`);
  }
}

/** Loads a CommonJS peer (express-session) synchronously: no top-level await, so require(esm) users can load us. */
export function loadPeer<T>(name: string, adapter: string): T {
  requirePeer(name, adapter);
  return require(name) as T;
}
