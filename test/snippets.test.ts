// Every snippet of README.md and docs/*.md runs as written, as a user would
// run it: the code blocks labelled `js` are written into a scratch project
// that has the packed tarball and the packages the docs name installed, and
// run there with `node` — on Node 24 and on the lowest Node in engines — with
// a throwaway PostgreSQL database where a snippet reads DATABASE_URL.
//
// A block is one of:
//   ```js [probe=…] [min-node=22.15]       runnable (the default for js);
//   ```js fragment / ```ts fragment         a fragment (a signature, a line
//                                          taken out of a handler): not run,
//                                          not counted;
// and a `ts` block that is not a fragment is a defect (Node 22.13–22.17 cannot
// run a .ts file; no Node runs tsx or jsx). A snippet that listens gets port
// 0 in place of its own; its server is asked the requests of `probe` in
// order, cookies kept — `probe=POST:/login?user=ada,/sessions@401`: comma
// separated, each `[METHOD:]path[@status]`, GET and 200 unless said (default
// `/`) — and each answer must have that status. Each package a snippet
// imports must be named by an `npm install` in the text before it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { floorNode, runScript, tempDir } from './helpers.ts';
import { startPostgres, type PostgresServer } from './postgres-server.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const temp = tempDir('snippets-test-');
const project = join(temp.dir, 'project');

interface Probe {
  method: string;
  path: string;
  status: number;
}

interface Snippet {
  where: string;
  code: string;
  probe: Probe[];
  minNode: [number, number] | null;
  /** The text between the previous code block (or the heading) and this one. */
  before: string;
}

const DOCS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
const snippets: Snippet[] = [];
const fragments: string[] = [];
const mislabelled: string[] = [];
const unclosed: string[] = [];

function probeOf(item: string): Probe {
  const [, method = 'GET', path, status = '200'] = /^(?:([A-Z]+):)?([^@]+)(?:@(\d{3}))?$/.exec(item) ?? [];
  if (!path?.startsWith('/')) throw new Error(`a probe is [METHOD:]path[@status], got ${JSON.stringify(item)}`);
  return { method, path, status: Number(status) };
}
for (const file of DOCS) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  let prose: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]);
    if (!open) {
      if (/^#/.test(lines[i])) prose = [];
      prose.push(lines[i]);
      continue;
    }
    const [, lang, info] = open;
    const end = lines.findIndex((line, j) => j > i && line.startsWith('```'));
    if (end === -1) {
      unclosed.push(`${file}:${i + 1}`);
      break;
    }
    const code = lines.slice(i + 1, end).join('\n');
    const where = `${file}:${i + 1}`;
    i = end;
    if (!['js', 'mjs', 'javascript', 'ts', 'typescript', 'tsx', 'jsx', 'cjs'].includes(lang)) {
      prose = [];
      continue;
    }
    const words = info.split(/\s+/).filter(Boolean);
    if (words.includes('fragment')) fragments.push(where);
    else if (!['js', 'mjs', 'javascript'].includes(lang)) mislabelled.push(where);
    else {
      const probe = words
        .find((word) => word.startsWith('probe='))
        ?.slice('probe='.length)
        .split(',')
        .map(probeOf) ?? [probeOf('/')];
      const min = words.find((word) => word.startsWith('min-node='))?.slice('min-node='.length);
      snippets.push({
        where,
        code,
        probe,
        minNode: min ? (min.split('.').map(Number) as [number, number]) : null,
        before: prose.join('\n'),
      });
    }
    prose = [];
  }
}

/** The packages a snippet imports (not node: builtins, not this package). */
function packagesOf(code: string): string[] {
  const found = new Set<string>();
  for (const [, , specifier] of code.matchAll(/(?:\bfrom|\bimport|\brequire)\s*\(?\s*(['"])([^'"]+)\1/g)) {
    if (specifier.startsWith('node:') || specifier.startsWith('.') || specifier.startsWith('supervised-sessions')) continue;
    const parts = specifier.split('/');
    found.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return [...found];
}

// The versions installed: the repository's own (docs/operating.md names the OTLP exporter's).
const devDependencies = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> })
  .devDependencies;
const VERSIONS: Record<string, string> = { ...devDependencies, '@opentelemetry/exporter-metrics-otlp-http': '0.301.0' };

// The driver: the snippet's listen() gets port 0; once it is imported, its
// server (if any) is asked for the probe paths with a cookie jar, and the
// process exits with what it saw.
const HARNESS = `
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
const servers = [];
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\\d+$/.test(args[0]))) args[0] = 0;
  else if (args[0] !== null && typeof args[0] === 'object' && 'port' in args[0]) args[0] = { ...args[0], port: 0 };
  servers.push(this);
  return listen.apply(this, args);
};
const ask = (port, { method, path }, cookie) => new Promise((resolve, reject) => {
  http.request({ host: '127.0.0.1', port, method, path, headers: cookie ? { cookie } : {} }, (res) => {
    res.resume();
    res.on('end', () => resolve({ status: res.statusCode, cookies: res.headers['set-cookie'] ?? [] }));
  }).on('error', reject).end();
});
export async function settle(probes) {
  if (servers.length === 0) return { served: false, statuses: [] };
  const server = servers[0];
  if (!server.listening) await once(server, 'listening');
  const jar = new Map();
  const statuses = [];
  for (const probe of probes) {
    const reply = await ask(server.address().port, probe, [...jar].map(([k, v]) => k + '=' + v).join('; '));
    for (const line of reply.cookies) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) jar.delete(pair.slice(0, at));
      else jar.set(pair.slice(0, at), value);
    }
    statuses.push(reply.status);
  }
  return { served: true, statuses };
}
`;

let postgres: PostgresServer | null = null;

test.after(() => {
  postgres?.destroy();
  temp.remove();
});

test('every js/ts block of README.md and docs/ is a runnable snippet or marked a fragment; each names the packages it needs', () => {
  assert.equal(unclosed, [], 'a code block without its closing fence');
  assert.equal(mislabelled, [], 'label a runnable snippet js (Node 22.13–22.17 cannot run .ts), or mark it `ts fragment`');
  assert.ok(snippets.length >= 10, `${snippets.length} runnable snippets`);
  assert.ok(
    snippets.some((snippet) => snippet.where.startsWith('README.md')),
    'the quick start is one',
  );
  for (const snippet of snippets) {
    // The words of every `npm install …` in the text before the snippet.
    const named = new Set([...snippet.before.matchAll(/`npm install ([^`]+)`/g)].flatMap(([, words]) => words.split(/\s+/)));
    for (const name of packagesOf(snippet.code)) {
      assert.ok(named.has(name), `${snippet.where} imports ${name}: the text before it must say \`npm install … ${name}\``);
    }
  }
  console.log(`# ${snippets.length} runnable snippets, ${fragments.length} fragments (not run)`);
});

test('the scratch project: the packed tarball and the packages the snippets import', () => {
  const pack = spawnSync('npm', ['pack', '--pack-destination', temp.dir, '--json'], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  assert.is(pack.status, 0, pack.stderr);
  const [{ filename }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string }>;
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'snippets', private: true, type: 'module' }));
  writeFileSync(join(project, 'harness.mjs'), HARNESS);
  const packages = [...new Set(snippets.flatMap((snippet) => packagesOf(snippet.code)))].map((name) =>
    VERSIONS[name] ? `${name}@${VERSIONS[name]}` : name,
  );
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', join(temp.dir, filename), ...packages], {
    cwd: project,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.is(install.status, 0, install.stderr);
});

const floor = floorNode();
const floorVersion = floor.version.split('.').map(Number);
const runsOnFloor = (snippet: Snippet) =>
  snippet.minNode === null ||
  floorVersion[0] > snippet.minNode[0] ||
  (floorVersion[0] === snippet.minNode[0] && floorVersion[1] >= snippet.minNode[1]);

for (const [index, snippet] of snippets.entries()) {
  const nodes = [
    { label: `Node ${process.versions.node}`, path: process.execPath },
    ...(runsOnFloor(snippet) ? [{ label: `Node ${floor.version}`, path: floor.path }] : []),
  ];
  test(`${snippet.where} runs as written (${nodes.map((node) => node.label).join(', ')})`, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, SNIPPET_PROBE: JSON.stringify(snippet.probe) };
    delete env.NODE_OPTIONS;
    if (snippet.code.includes('DATABASE_URL')) {
      postgres ??= await startPostgres();
      env.DATABASE_URL = postgres.url;
    }
    for (const [n, node] of nodes.entries()) {
      // A folder of its own: a fresh sessions.db for each run.
      const dir = join(project, `s${index}-${n}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'snippet.mjs'), `${snippet.code}\n`);
      writeFileSync(
        join(dir, 'run.mjs'),
        `import { settle } from '../harness.mjs';\nawait import('./snippet.mjs');\nconst result = await settle(JSON.parse(process.env.SNIPPET_PROBE));\nconsole.log('SNIPPET ' + JSON.stringify(result));\nprocess.exit(0);\n`,
      );
      const result = await runScript(join(dir, 'run.mjs'), [], { cwd: dir, node: node.path, env, timeoutMs: 60_000 });
      const where = `${snippet.where} on ${node.label}`;
      assert.is(result.code, 0, `${where}: exit ${result.code}\n${result.stderr}`);
      const line = result.stdout.split('\n').find((text) => text.startsWith('SNIPPET '));
      assert.ok(line, `${where}: the snippet ran to its end\n${result.stdout}\n${result.stderr}`);
      const { served, statuses } = JSON.parse(line!.slice('SNIPPET '.length)) as { served: boolean; statuses: number[] };
      if (served) {
        assert.is(statuses.length, snippet.probe.length, where);
        for (const [i, status] of statuses.entries()) {
          const { method, path, status: expected } = snippet.probe[i];
          assert.is(status, expected, `${where}: ${method} ${path} answered ${status}, expected ${expected}\n${result.stderr}`);
        }
      } else {
        assert.equal(snippet.probe, [probeOf('/')], `${where}: probe= given, but the snippet serves nothing`);
      }
    }
  });
}

test.run();
