// Shared by the tests (not a test file itself).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  applyFilesPatch,
  checkFileManifest,
  readFileManifest,
  cohort,
  formatPublicKey,
  pae,
  selectBuild,
  verifyACL,
  verifyBundle,
  verifyFile,
  verifyHistory,
  verifyLatest,
  VerifyError,
} from '../dist/index.js';

/** The shared attack table. */
export const vectors = JSON.parse(readFileSync(new URL('../../testdata/vectors.json', import.meta.url), 'utf8'));

/** Runs one vector and returns "ok" or the rule that failed. asObject passes the envelopes parsed. */
export async function verdict(v, impl, asObject = false) {
  const form = (s) => (asObject ? JSON.parse(s) : s);
  try {
    await run(v, impl, form);
    return 'ok';
  } catch (e) {
    if (e instanceof VerifyError) return e.rule;
    throw e;
  }
}

async function run(v, impl, form) {
  if (v.kind === 'cohort') {
    const c = v.cohort;
    const got = await cohort(c.app, c.channel, c.rollout, c.device);
    if (got !== c.bucket) throw new Error(`bucket ${got}, want ${c.bucket}`);
    return;
  }
  const trust = { roots: v.root_keys, threshold: v.threshold, ed25519: impl };
  const exp = { app: v.expect.app, channel: v.expect.channel, minACLVersion: v.expect.min_acl_version, minSequence: v.expect.min_sequence, now: new Date(v.expect.now) };
  if (v.kind === 'history') {
    const acl = await verifyACL(trust, form(v.acl), exp.minACLVersion);
    await verifyHistory(acl, exp.app, exp.channel, v.history.map((h) => Buffer.from(h)), impl);
    return;
  }
  const { latest } = await verifyLatest(trust, form(v.acl), form(v.latest), exp);
  await checkResult(v, latest);
  if (v.bundle) await verifyBundle(latest.build, Buffer.from(v.bundle, 'base64'));
  if (v.files_patch) {
    await applyFilesPatch(latest.build, latest.app, Buffer.from(v.files_patch.base), Buffer.from(v.files_patch.patch));
    return;
  }
  if (v.files_stored) {
    await readFileManifest(latest.build, latest.app, Buffer.from(v.files_stored, 'base64'));
    return;
  }
  if (v.files_manifest) {
    const m = await checkFileManifest(latest.build, latest.app, Buffer.from(v.files_manifest));
    if (v.file) await verifyFile(m.files[v.file.index], Buffer.from(v.file.content, 'base64'));
  }
}

// Results are not verdicts: a difference is thrown as a plain error.
async function checkResult(v, latest) {
  if (v.result) {
    const got = { sequence: latest.sequence, build: latest.build.number, candidate: latest.candidate?.build.number ?? 0 };
    if (JSON.stringify(got) !== JSON.stringify(v.result)) throw new Error(`result ${JSON.stringify(got)}, want ${JSON.stringify(v.result)}`);
  }
  if (v.device) {
    const s = await selectBuild(latest, v.device.native, v.device.id);
    const n = s.build?.number ?? 0;
    if (s.reason !== v.device.reason || n !== v.device.build) throw new Error(`selected ${s.reason} build ${n}, want ${v.device.reason} build ${v.device.build}`);
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
