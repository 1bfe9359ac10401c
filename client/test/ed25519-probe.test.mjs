// The "auto" Ed25519 mode takes WebCrypto only when a probe shows that it
// checks signatures as Go does; otherwise noble, with the same verdicts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { ed25519Verifier, passesProbes, webCryptoProbes } from '../dist/ed25519.js';
import { vectors } from './helpers.mjs';

test('WebCrypto here and noble both pass the probes', async () => {
  assert.ok(await passesProbes(await ed25519Verifier('webcrypto')), 'webcrypto');
  assert.ok(await passesProbes(await ed25519Verifier('noble')), 'noble');
});

test('a verifier wrong on any one probe fails them', async () => {
  const noble = await ed25519Verifier('noble');
  const hex = (b) => Buffer.from(b).toString('hex');
  for (const wrong of webCryptoProbes) {
    const verify = async (pub, msg, sig) => (hex(sig) === wrong.sig && hex(pub) === wrong.pub ? !wrong.ok : noble(pub, msg, sig));
    assert.equal(await passesProbes(verify), false, wrong.what);
  }
  assert.equal(await passesProbes(async () => { throw new Error('no Ed25519'); }), false);
});

test('auto takes noble where WebCrypto checks with the cofactor, and gets every verdict right', () => {
  // A fresh process whose WebCrypto also accepts what the cofactored
  // equation [8]([S]B - [k]A - R) = 0 accepts (R decoded), as some
  // implementations do.
  const code = `
    import { ed25519 } from '@noble/curves/ed25519.js';
    import { createHash } from 'node:crypto';
    const subtle = globalThis.crypto.subtle;
    const importKey = subtle.importKey.bind(subtle);
    const verify = subtle.verify.bind(subtle);
    const raw = new WeakMap();
    subtle.importKey = async (f, k, alg, ...rest) => {
      const key = await importKey(f, k, alg, ...rest);
      if (alg?.name === 'Ed25519') raw.set(key, new Uint8Array(k));
      return key;
    };
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const le = (b) => [...b].reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
    subtle.verify = async (alg, key, sig, data) => {
      if (alg?.name !== 'Ed25519') return verify(alg, key, sig, data);
      if (await verify(alg, key, sig, data)) return true;
      try {
        const b = new Uint8Array(sig), pub = raw.get(key);
        const R = ed25519.Point.fromBytes(b.subarray(0, 32)), A = ed25519.Point.fromBytes(pub);
        const k = le(createHash('sha512').update(b.subarray(0, 32)).update(pub).update(new Uint8Array(data)).digest()) % L;
        return ed25519.Point.BASE.multiplyUnsafe(le(b.subarray(32))).subtract(A.multiplyUnsafe(k)).subtract(R).clearCofactor().is0();
      } catch {
        return false;
      }
    };
    const { verdict } = await import(${JSON.stringify(new URL('./helpers.mjs', import.meta.url).href)});
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const got = [];
    for (const v of JSON.parse(input)) got.push(await verdict(v, 'auto'));
    console.log(JSON.stringify(got));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    input: JSON.stringify(vectors),
    encoding: 'utf8',
    cwd: new URL('..', import.meta.url),
  });
  const got = JSON.parse(out.trim().split('\n').pop());
  const wrong = vectors.filter((v, i) => got[i] !== v.verdict).map((v) => v.name);
  assert.deepEqual(wrong, []);
});

test('noble and WebCrypto (which passes the probes here) agree on valid, altered and torsioned signatures', async () => {
  const { ed25519, ED25519_TORSION_SUBGROUP } = await import('@noble/curves/ed25519.js');
  const web = await ed25519Verifier('webcrypto');
  const noble = await ed25519Verifier('noble');
  const torsion = ED25519_TORSION_SUBGROUP.map((h) => ed25519.Point.fromHex(h));
  let accepted = 0;
  for (let i = 0; i < 64; i++) {
    const seed = new Uint8Array(32).fill(i + 1);
    const pub = ed25519.getPublicKey(seed);
    const msg = new TextEncoder().encode(`message ${i}`);
    const sig = ed25519.sign(msg, seed);
    const cases = [[pub, msg, sig]];
    const flipped = sig.slice();
    flipped[i % 64] ^= 1 << i % 8;
    cases.push([pub, msg, flipped]);
    // R with a point of small order added.
    const R = ed25519.Point.fromBytes(sig.subarray(0, 32)).add(torsion[i % 8]).toBytes();
    cases.push([pub, msg, Uint8Array.from([...R, ...sig.subarray(32)])]);
    // A mixed-order key.
    cases.push([ed25519.Point.fromBytes(pub).add(torsion[1 + (i % 7)]).toBytes(), msg, sig]);
    for (const [p, m, s] of cases) {
      const want = await web(p, m, s);
      assert.equal(await noble(p, m, s), want, `case ${i}`);
      if (want) accepted++;
    }
  }
  assert.ok(accepted >= 64, `${accepted} accepted`);
});
