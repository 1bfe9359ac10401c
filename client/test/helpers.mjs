// Shared by the tests (not a test file itself).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { formatPublicKey, pae, verifyBundle, verifyLatest, VerifyError } from '../dist/index.js';

/** The shared attack table. */
export const vectors = JSON.parse(readFileSync(new URL('../../testdata/vectors.json', import.meta.url), 'utf8'));

/** Runs one vector and returns "ok" or the rule that failed. asObject passes the envelopes parsed. */
export async function verdict(v, impl, asObject = false) {
  const form = (s) => (asObject ? JSON.parse(s) : s);
  try {
    const { latest } = await verifyLatest({ roots: v.root_keys, threshold: v.threshold, ed25519: impl }, form(v.acl), form(v.latest), {
      app: v.expect.app,
      channel: v.expect.channel,
      minACLVersion: v.expect.min_acl_version,
      minSequence: v.expect.min_sequence,
      now: new Date(v.expect.now),
    });
    if (v.bundle) await verifyBundle(latest.build, Buffer.from(v.bundle, 'base64'));
    return 'ok';
  } catch (e) {
    if (e instanceof VerifyError) return e.rule;
    throw e;
  }
}

// The keys of the Go vectors: seeds of 32 equal bytes.
export const seed = (b) => new Uint8Array(32).fill(b);
export const [root, alice, bob] = [seed(1), seed(3), seed(4)];
export const pub = (k) => formatPublicKey(ed25519.getPublicKey(k));
const b64 = (b) => Buffer.from(b).toString('base64');

export function envelope(type, payload, ...keys) {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const signatures = keys.map((k) => ({
    keyid: createHash('sha256').update(ed25519.getPublicKey(k)).digest('hex'),
    sig: b64(ed25519.sign(pae(type, bytes), k)),
  }));
  return JSON.stringify({ payloadType: type, payload: b64(bytes), signatures }, null, 2);
}

