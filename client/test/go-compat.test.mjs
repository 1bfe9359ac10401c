// Beyond the shared table: the verifier must reach the same verdicts where
// WebCrypto lacks Ed25519 and the noble implementation is used instead.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { vectors } from './helpers.mjs';

test('auto falls back to noble where WebCrypto has no Ed25519', () => {
  // A fresh process whose WebCrypto refuses Ed25519, as older WebViews do.
  const code = `
    const subtle = globalThis.crypto.subtle;
    const importKey = subtle.importKey.bind(subtle);
    subtle.importKey = (f, k, alg, ...rest) => alg?.name === 'Ed25519'
      ? Promise.reject(new DOMException('Unrecognized name', 'NotSupportedError'))
      : importKey(f, k, alg, ...rest);
    const { verdict } = await import(${JSON.stringify(new URL('./helpers.mjs', import.meta.url).href)});
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const vs = JSON.parse(input);
    const got = [];
    for (const v of vs) got.push(await verdict(v, 'auto'));
    console.log(JSON.stringify(got));`;
  const vs = vectors;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { input: JSON.stringify(vs), encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim().split('\n').pop()), vs.map((v) => v.verdict));
});
