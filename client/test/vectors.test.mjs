// Every vector of the shared attack table (testdata/vectors.json) must get the
// verdict the Go verifier gives it, with each Ed25519 implementation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPublicKey, pae, parsePublicKey, verifyLatest, VerifyError } from '../dist/index.js';
import { vectors, verdict } from './helpers.mjs';

const parses = (s) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

test('the table has the vectors the Go test requires', () => {
  assert.ok(vectors.length >= 100, `only ${vectors.length} vectors`);
  assert.ok(vectors.some((v) => v.verdict === 'ok') && vectors.some((v) => v.verdict !== 'ok'));
});

for (const impl of ['auto', 'webcrypto', 'noble']) {
  describe(`vectors (${impl})`, () => {
    for (const v of vectors) {
      test(`${v.name}: ${v.verdict}`, async () => {
        assert.equal(await verdict(v, impl), v.verdict, v.description);
      });
    }
  });
}

// The tracker embeds envelopes as JSON objects in its answers; they are
// measured and read as re-serialised, with the same verdicts (except for
// a repeated key in the envelope, which JSON.parse has already dropped).
describe('vectors with envelopes as parsed objects', () => {
  for (const v of vectors.filter((v) => !v.kind && v.name !== 'envelope_duplicate_key' && parses(v.acl) && parses(v.latest))) {
    test(`${v.name}: ${v.verdict}`, async () => {
      assert.equal(await verdict(v, 'auto', true), v.verdict, v.description);
    });
  }
});

test('envelopes as bytes', async () => {
  const v = vectors.find((v) => v.name === 'valid');
  const enc = new TextEncoder();
  const { latest, acl } = await verifyLatest({ roots: v.root_keys }, enc.encode(v.acl), enc.encode(v.latest).buffer, {
    app: 'retailer',
    channel: 'production',
    now: new Date(v.expect.now),
  });
  assert.equal(acl.version, 2);
  assert.deepEqual(
    { ...latest.build },
    {
      id: 'retailer-7',
      number: 7,
      version: '1.4.2',
      bundle: 'apps/retailer/bundles/77be8e7ad06f84230bd3e2125ee3825ac0dfc615fea63135c98056014c6b9058.zip',
      sha256: '77be8e7ad06f84230bd3e2125ee3825ac0dfc615fea63135c98056014c6b9058',
      size: 40,
      min_native: '1.0.0',
      max_native: '',
      crc32: '',
      files_sha256: '',
      files_size: 0,
    },
  );
  assert.equal(latest.sequence, 5);
  assert.equal(latest.expires, '2027-01-30T12:00:00Z');
});

test('a mistyped root key is a configuration error, not a verdict', async () => {
  const v = vectors[0];
  await assert.rejects(
    verifyLatest({ roots: ['ed25519:nope'] }, v.acl, v.latest, { app: 'retailer', channel: 'production' }),
    (e) => !(e instanceof VerifyError) && /32 bytes of base64/.test(e.message),
  );
});

test('every point of small order is refused as a key, and no other key tried here', async () => {
  const { ED25519_TORSION_SUBGROUP, ed25519 } = await import('@noble/curves/ed25519.js');
  const text = (hex) => formatPublicKey(Buffer.from(hex, 'hex'));
  assert.equal(ED25519_TORSION_SUBGROUP.length, 8);
  for (const p of ED25519_TORSION_SUBGROUP) {
    assert.ok(ed25519.Point.fromHex(p).isSmallOrder());
    assert.throws(() => parsePublicKey(text(p)), /large order/, p);
  }
  for (let i = 1; i <= 64; i++) parsePublicKey(formatPublicKey(ed25519.getPublicKey(new Uint8Array(32).fill(i))));
});

// Go checks signatures with the cofactorless equation; a signature whose R
// has a small-order component passes only the cofactored one, and must be
// refused by every implementation here, as Go refuses it.
test('a signature with a small-order component in R is refused, as in Go', async () => {
  const { ED25519_TORSION_SUBGROUP, ed25519 } = await import('@noble/curves/ed25519.js');
  const { createHash } = await import('node:crypto');
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const le = (b) => [...b].reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
  const toLE = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  const v = vectors.find((x) => x.name === 'valid');
  const env = JSON.parse(v.latest);
  const msg = pae(env.payloadType, Buffer.from(env.payload, 'base64'));
  const { scalar: a, pointBytes: A } = ed25519.utils.getExtendedPublicKey(new Uint8Array(32).fill(3));
  const T = ed25519.Point.fromHex(ED25519_TORSION_SUBGROUP[1]);
  assert.ok(T.isSmallOrder() && !T.is0());
  const r = 123456789n;
  const R = ed25519.Point.BASE.multiply(r).add(T).toBytes();
  const k = le(createHash('sha512').update(R).update(A).update(msg).digest()) % L;
  const sig = Buffer.concat([R, toLE((r + k * a) % L)]);
  env.signatures[0].sig = sig.toString('base64');
  for (const impl of ['webcrypto', 'noble']) {
    assert.equal(await verdict({ ...v, latest: JSON.stringify(env), bundle: undefined }, impl), 'bad_signature', impl);
  }
  // The same construction without T verifies: the test signs correctly.
  const R0 = ed25519.Point.BASE.multiply(r).toBytes();
  const k0 = le(createHash('sha512').update(R0).update(A).update(msg).digest()) % L;
  env.signatures[0].sig = Buffer.concat([R0, toLE((r + k0 * a) % L)]).toString('base64');
  for (const impl of ['webcrypto', 'noble']) {
    assert.equal(await verdict({ ...v, latest: JSON.stringify(env), bundle: undefined }, impl), 'ok', impl);
  }
});
