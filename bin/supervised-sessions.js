#!/usr/bin/env node
// The command line: the `mix session.setup|clear|drop` tasks and more.
// In a checkout it runs src/cli.ts (Node strips the types); in the published
// package, which ships dist/ and not src/, it runs dist/cli.js.
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  process.stderr.write(`supervised-sessions: Node.js >= 22.13 is required (node:sqlite), this is ${process.version}\n`);
  process.exit(1);
}
const src = new URL('../src/cli.ts', import.meta.url);
const entry = existsSync(src) && process.features.typescript ? src : new URL('../dist/cli.js', import.meta.url);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
