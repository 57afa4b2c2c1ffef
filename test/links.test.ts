// The links of the documents the package ships (README.md and docs/, which
// npm shows and installs) resolve where a user reads them: a relative link
// names a file that ships, with its heading when it names one; a link into
// the repository names a file that is in it; package.json says where the
// repository, its home page and its issues are.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  files: string[];
  repository?: { type: string; url: string };
  homepage?: string;
  bugs?: { url: string };
};
const REPOSITORY = 'https://github.com/supervised-sessions/supervised-sessions';
const SHIPPED_DOCS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
/** What npm puts in the tarball besides `files`. */
const ALWAYS_SHIPPED = ['README.md', 'LICENSE', 'package.json'];
const tracked = new Set(execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean));

const ships = (path: string) => ALWAYS_SHIPPED.includes(path) || pkg.files.some((entry) => path === entry || path.startsWith(`${entry}/`));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#+\s+(.+)$/gm)].map(([, heading]) => slug(heading)));
}

/** Every [text](target) of a markdown file, outside code blocks, with its line. */
function linksOf(file: string): Array<{ target: string; line: number }> {
  const links: Array<{ target: string; line: number }> = [];
  let fenced = false;
  for (const [i, line] of readFileSync(join(root, file), 'utf8').split('\n').entries()) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    for (const [, target] of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) links.push({ target, line: i + 1 });
  }
  return links;
}

test('package.json names the repository, its home page and its issues', () => {
  assert.equal(pkg.repository, { type: 'git', url: `git+${REPOSITORY}.git` });
  assert.is(pkg.homepage, `${REPOSITORY}#readme`);
  assert.equal(pkg.bugs, { url: `${REPOSITORY}/issues` });
});

test('every link of README.md and docs/ resolves in the published package or in the repository', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of SHIPPED_DOCS) {
    for (const { target, line } of linksOf(file)) {
      const where = `${file}:${line} → ${target}`;
      if (target.startsWith(`${REPOSITORY}/blob/main/`) || target.startsWith(`${REPOSITORY}/tree/main/`)) {
        const path = target.slice(`${REPOSITORY}/blob/main/`.length).split('#')[0];
        if (!tracked.has(path) && ![...tracked].some((known) => known.startsWith(`${path}/`)))
          broken.push(`${where}: not in the repository`);
        checked++;
        continue;
      }
      if (/^[a-z]+:/i.test(target)) continue;
      checked++;
      const [path, anchor] = target.split('#');
      const resolved = path === '' ? file : relative(root, normalize(join(root, dirname(file), path)));
      if (!existsSync(join(root, resolved))) broken.push(`${where}: no such file`);
      else if (!ships(resolved)) broken.push(`${where}: ${resolved} is not in the package (link to ${REPOSITORY}/blob/main/${resolved})`);
      else if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) broken.push(`${where}: no heading #${anchor}`);
    }
  }
  assert.equal(broken, []);
  assert.ok(checked > 50, `${checked} links checked`);
});

test('the link check can fail: a link to examples/ (not shipped) and to a missing heading are caught', () => {
  assert.not.ok(ships('examples/server.ts'));
  assert.ok(ships('docs/owners.md'));
  assert.ok(anchorsOf('docs/http.md').has('a-lifetime-of-its-own-remember-me'));
  assert.not.ok(anchorsOf('docs/http.md').has('no-such-heading'));
});

test.run();
