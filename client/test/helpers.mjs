// Shared by the tests (not a test file itself).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { ed25519 } from '@noble/curves/ed25519.js';
import * as client from '../dist/index.js';
import { formatPublicKey, pae } from '../dist/index.js';
import { runVector } from './verdict.mjs';

/** The shared attack table. */
export const vectors = JSON.parse(readFileSync(new URL('../../testdata/vectors.json', import.meta.url), 'utf8'));

/** Runs one vector and returns "ok" or the rule that failed. asObject passes the envelopes parsed. */
export const verdict = (v, impl, asObject = false) => runVector(client, v, impl, asObject);

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


const sha256hex = (b) => createHash('sha256').update(b).digest('hex');

/**
 * The patch from file manifest base to target (Buffers) as deploy upload
 * makes it (manifest.MakeFilesPatch): each piece of target, split before
 * each {"name":, that base holds is copied from it, the rest is written out.
 */
export function makeFilesPatch(app, base, target) {
  const at = new Map();
  for (const [off, piece] of pieces(base)) if (!at.has(piece.toString('latin1'))) at.set(piece.toString('latin1'), off);
  const ops = [];
  let data = null;
  for (const [, piece] of pieces(target)) {
    const off = at.get(piece.toString('latin1'));
    if (off === undefined) {
      data = Buffer.concat([data ?? Buffer.alloc(0), piece]);
      continue;
    }
    const last = ops.at(-1);
    if (data === null && last && last.offset + last.length === off) {
      last.length += piece.length;
      continue;
    }
    ops.push({ data: (data ?? '').toString(), offset: off, length: piece.length });
    data = null;
  }
  if (data !== null || ops.length === 0) ops.push({ data: (data ?? '').toString(), offset: 0, length: 0 });
  return Buffer.from(JSON.stringify({ app, from: sha256hex(base), to: sha256hex(target), ops }));
}

function* pieces(data) {
  for (let start = 0; start < data.length; ) {
    const i = data.indexOf('{"name":', start + 1);
    const end = i >= 0 ? i : data.length;
    yield [start, data.subarray(start, end)];
    start = end;
  }
}

/**
 * Answers res with a body that never ends: zeros, gzip-encoded as a CDN or
 * a proxy may send them (a few KB on the wire for each GB decoded).
 * Resolves once the client has gone away.
 */
export function endlessGzip(res) {
  res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  const gz = createGzip();
  gz.pipe(res);
  const zeros = Buffer.alloc(1 << 20);
  const pump = () => {
    while (!res.destroyed && gz.write(zeros));
  };
  gz.on('drain', pump);
  pump();
  return new Promise((resolve) =>
    res.on('close', () => {
      gz.destroy();
      resolve();
    }),
  );
}
