// Security checks: ids, what reaches logs and SQL, signatures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { startSessionApp, createHandler, clearStore, ConfigError } from '../src/index.ts';
import { newSessionId } from '../src/store/ids.ts';
import { quoted } from '../src/store/layout.ts';
import { sign, unsign } from '../src/http/signing.ts';
import { tempDir } from './helpers.ts';

test('session ids: 256 random bits each, base64url, all distinct, every bit position in use', () => {
  const ids = Array.from({ length: 4000 }, () => newSessionId());
  assert.is(new Set(ids).size, ids.length);
  const ones = new Array(256).fill(0);
  for (const id of ids) {
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    const bytes = Buffer.from(id, 'base64url');
    assert.is(bytes.length, 32);
    for (let bit = 0; bit < 256; bit++) if (bytes[bit >> 3] & (1 << (bit & 7))) ones[bit]++;
  }
  // Each bit is set in about half the ids (binomial, n = 4000: ±10 % is > 6 sigma).
  for (const count of ones) assert.ok(count > 1600 && count < 2400, `a biased bit: ${count} of 4000`);
});

test('no raw session id in any log line or error message', async () => {
  const temp = tempDir();
  const app = await startSessionApp({ database: join(temp.dir, 'logs.db'), sweepSignal: false, maxSessionBytes: 300 });
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const server = createServer(
      createHandler(app.store, (req, res, session) => {
        if (req.url === '/big') session.set('big', 'x'.repeat(1000));
        else if (req.url === '/throw') throw new Error('handler failed');
        else session.set('a', 1);
        res.end('ok');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const first = await request(url);
    await first.body.dump();
    const cookie = String(first.headers['set-cookie']).split(';')[0];
    const id = cookie.split('=')[1];
    const messages: string[] = [];
    for (const path of ['/big', '/throw']) {
      const response = await request(`${url}${path}`, { headers: { cookie } });
      messages.push(await response.body.text());
    }
    for (const call of [
      () => app.store.put(id, { big: 'y'.repeat(1000) }),
      () => app.store.patch(id, { set: { when: new Date() as never } }),
      () => app.store.put(id, null as never),
    ])
      messages.push(String(await call().catch((error: Error) => `${error.name}: ${error.message}`)));
    await app.stop();
    messages.push(String(await app.store.get(id).catch((error: Error) => error.message)));
    const after = await request(`${url}/`, { headers: { cookie } });
    messages.push(await after.body.text());
    server.closeAllConnections();
    server.close();
    const everything = [...lines, ...messages].join('\n');
    assert.ok(lines.length >= 2, 'errors were logged');
    assert.not.ok(everything.includes(id), 'a raw id reached a log line or a message');
    assert.not.ok(everything.includes(id.slice(0, 20)), 'a part of a raw id reached a log line or a message');
  } finally {
    process.stderr.write = write;
    await app.stop();
    temp.remove();
  }
});

test('the table name can never reach SQL unchecked', async () => {
  for (const name of ['x"; DROP TABLE session; --', 'a b', '', 'x'.repeat(64), '1x', 'sess-ion', 'tab\u0000le', 'naïve']) {
    assert.throws(() => quoted(name), /invalid table name/);
    const error = await clearStore({ table: name }).catch((e: unknown) => e);
    assert.instance(error, ConfigError);
    assert.is((error as ConfigError).key, 'table');
  }
  assert.is(quoted('web_sessions_2'), '"web_sessions_2"');
});

test('signatures: only the full HMAC of the id under a known secret verifies', () => {
  const id = newSessionId();
  const signed = sign(id, 'k1');
  assert.is(unsign(signed, ['k1']), id);
  assert.is(unsign(signed, ['k0', 'k1']), id, 'any secret of the list verifies');
  assert.is(unsign(signed, ['k2']), null);
  const signature = signed.slice(id.length + 1);
  // Any other character anywhere in the signature fails, including a change
  // of the last character's unused bits (a variant that decodes to the same bytes).
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < signature.length; i++) {
    for (const c of alphabet) {
      if (c === signature[i]) continue;
      assert.is(unsign(`${id}.${signature.slice(0, i)}${c}${signature.slice(i + 1)}`, ['k1']), null, `position ${i}: ${c}`);
    }
  }
  assert.is(unsign(`${newSessionId()}.${signature}`, ['k1']), null);
  for (const bad of [id, `${id}.`, `.${signature}`, `${id}.${signature}x`, `${id}.${signature.slice(1)}`, `${id}..${signature}`]) {
    assert.is(unsign(bad, ['k1']), null, bad);
  }
});

test.run();
