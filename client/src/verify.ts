// The verifier of signed manifests, rule for rule and in the same order as
// manifest/verify.go. Both are pinned by testdata/vectors.json; the formats
// are described in docs/format.md.

import { ed25519Verifier, hex, sha256, type Ed25519Impl, type VerifyFn } from './ed25519.js';
import * as j from './json.js';

/** Payload types of the envelopes deploy signs. */
export const TYPE_ACL = 'application/vnd.deploy.acl+json';
export const TYPE_BUILD = 'application/vnd.deploy.build+json';
export const TYPE_LATEST = 'application/vnd.deploy.latest+json';

/** Size limits of envelopes, in bytes of UTF-8 JSON. */
export const MAX_ACL_SIZE = 1 << 20;
export const MAX_LATEST_SIZE = 64 << 10;
export const MAX_BUILD_SIZE = 64 << 10;

/** The app name of a grant that covers every app. */
export const ALL_APPS = '*';

/** The check a verification failed, as manifest.Rule in Go. */
export type Rule =
  | 'too_large' // an envelope over its size limit
  | 'malformed' // not a valid envelope or payload
  | 'unsigned' // an envelope without signatures
  | 'acl_untrusted' // the ACL lacks enough valid root signatures
  | 'acl_rollback' // the ACL is older than one seen before
  | 'bad_signature' // a known key's signature does not verify
  | 'untrusted_key' // signed by no key in the ACL
  | 'app_mismatch' // for another app than asked
  | 'channel_mismatch' // for another channel than asked
  | 'not_granted' // the signer may not upload to this app
  | 'rollback' // a sequence lower than one seen before
  | 'expired' // past its expiry time
  | 'bundle_mismatch'; // bundle bytes differ from the manifest

/** A failed verification: which rule, and the details. */
export class VerifyError extends Error {
  constructor(
    readonly rule: Rule,
    readonly detail: string,
  ) {
    super(`${rule}: ${detail}`);
    this.name = 'VerifyError';
  }
}

/** The payload of acl.json, signed by the root key(s). */
export interface ACL {
  version: number;
  issued: string; // RFC 3339
  users: User[];
}

/** A person or CI job: the keys that sign for them and their grants by app ("*": every app). */
export interface User {
  name: string;
  keys: string[]; // "ed25519:<base64>"
  grants: Record<string, Grant>;
}

export interface Grant {
  can_upload: boolean;
}

/** The payload of apps/<app>/channels/<channel>/latest.json. */
export interface Latest {
  app: string;
  channel: string;
  sequence: number;
  issued: string;
  expires: string;
  build: BuildRef;
}

/** What a device needs to fetch and check a build. */
export interface BuildRef {
  id: string; // "<app>-<number>"
  number: number;
  version: string;
  bundle: string; // store key of the zip
  sha256: string; // lowercase hex of the zip's bytes
  size: number;
  min_native: string; // "" if none
}

/** The payload of apps/<app>/builds/<number>.json. */
export interface Build extends BuildRef {
  app: string;
  uploader: string;
  created: string;
  notes: string;
  git_commit: string;
}

/** An envelope as bytes or text (UTF-8 JSON), or already parsed from a larger JSON answer. */
export type EnvelopeInput = string | Uint8Array | ArrayBuffer | object;

/** What a verifier pins: the root public keys ("ed25519:<base64>") and how many must sign the ACL. */
export interface Trust {
  roots: string[];
  threshold?: number; // 0 or absent means 1
  /** Which Ed25519 implementation to use; "auto" (the default) prefers WebCrypto. */
  ed25519?: Ed25519Impl;
}

/** What the verifier of a latest.json expects. */
export interface Expect {
  app: string;
  channel: string;
  /** The highest ACL version seen before (0 if none). */
  minACLVersion?: number;
  /** The highest sequence of this app and channel seen before (0 if none). */
  minSequence?: number;
  /** The current time; defaults to now. */
  now?: Date;
}

// ---------------------------------------------------------------------------
// Keys

const PUBLIC_KEY_PREFIX = 'ed25519:';

/** Go's strings.TrimSpace: Unicode White_Space, but not U+FEFF. */
function trimSpace(s: string): string {
  const ws = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+';
  return s.replace(new RegExp(`^${ws}|${ws}$`, 'g'), '');
}

/** Reads the text form of a public key, "ed25519:" and 32 bytes in standard base64. */
export function parsePublicKey(s: string): Uint8Array {
  const t = trimSpace(s);
  if (!t.startsWith(PUBLIC_KEY_PREFIX)) {
    throw new Error(`public key "${t.slice(0, 24)}" does not start with "${PUBLIC_KEY_PREFIX}"; print one with \`deploy keys show\``);
  }
  let b: Uint8Array | undefined;
  try {
    b = j.decodeBase64(t.slice(PUBLIC_KEY_PREFIX.length));
  } catch {
    // reported below
  }
  if (!b || b.length !== 32) throw new Error(`public key "${t.slice(0, 24)}" is not 32 bytes of base64 after "${PUBLIC_KEY_PREFIX}"`);
  return b;
}

/** The text form of a raw public key. */
export function formatPublicKey(pub: Uint8Array): string {
  return PUBLIC_KEY_PREFIX + j.encodeBase64(pub);
}

/** The keyid of a raw public key: lowercase hex SHA-256 of its 32 bytes. */
export async function keyID(pub: Uint8Array): Promise<string> {
  return hex(await sha256(pub));
}

// ---------------------------------------------------------------------------
// Envelopes

interface Envelope {
  payloadType: string;
  payload: Uint8Array;
  signatures: { keyid: string; sig: Uint8Array }[];
}

const zeroSig = () => ({ keyid: '', sig: new Uint8Array(0) as Uint8Array });
const zeroEnvelope = (): Envelope => ({ payloadType: '', payload: new Uint8Array(0) as Uint8Array, signatures: [] });
const envelopeDecoder = j.struct<Envelope>(
  { payloadType: j.str, payload: j.bytes, signatures: j.slice(j.struct({ keyid: j.str, sig: j.bytes }, zeroSig), zeroSig) },
  zeroEnvelope,
);

const utf8 = new TextEncoder();
// Keep a BOM, so that it is refused like Go refuses it.
const fromUTF8 = (b: Uint8Array) => new TextDecoder('utf-8', { ignoreBOM: true }).decode(b);

/** DSSE's pre-authentication encoding of a payload: the bytes that are signed. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8.encode(payloadType);
  const head = utf8.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

function parseEnvelope(input: EnvelopeInput, payloadType: string, limit: number): Envelope {
  let text: string;
  let size: number;
  if (typeof input === 'string') {
    text = input;
    size = utf8.encode(input).length;
  } else if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    const b = input instanceof Uint8Array ? input : new Uint8Array(input);
    text = fromUTF8(b);
    size = b.length;
  } else {
    // An envelope inside a larger JSON answer: measured as re-serialised.
    text = JSON.stringify(input) ?? '';
    size = utf8.encode(text).length;
  }
  if (size > limit) throw new VerifyError('too_large', `${size} bytes, limit ${limit}`);
  let env: Envelope;
  try {
    env = envelopeDecoder(j.parse(text, 'whole'), zeroEnvelope());
  } catch (e) {
    throw new VerifyError('malformed', String((e as Error).message ?? e));
  }
  if (env.payloadType !== payloadType) {
    throw new VerifyError('malformed', `payload type ${JSON.stringify(env.payloadType)}, want ${JSON.stringify(payloadType)}`);
  }
  if (env.signatures.length === 0) throw new VerifyError('unsigned', 'the envelope has no signatures');
  return env;
}

/** The keys among trusted whose signature on env verifies; a key listed twice counts twice, as in Go. */
async function signedBy(env: Envelope, trusted: Uint8Array[], verify: VerifyFn): Promise<Uint8Array[]> {
  const msg = pae(env.payloadType, env.payload);
  const out: Uint8Array[] = [];
  for (const k of trusted) {
    const id = await keyID(k);
    for (const s of env.signatures) {
      if (s.keyid === id && (await verify(k, msg, s.sig))) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

async function signedByKnownID(env: Envelope, keys: Uint8Array[]): Promise<boolean> {
  for (const k of keys) {
    const id = await keyID(k);
    if (env.signatures.some((s) => s.keyid === id)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Payloads

const zeroGrant = (): Grant => ({ can_upload: false });
const zeroUser = (): User => ({ name: '', keys: [], grants: Object.create(null) });
const ZERO_TIME = '0001-01-01T00:00:00Z';
const zeroACL = (): ACL => ({ version: 0, issued: ZERO_TIME, users: [] });
const zeroRef = (): BuildRef => ({ id: '', number: 0, version: '', bundle: '', sha256: '', size: 0, min_native: '' });
const zeroLatest = (): Latest => ({ app: '', channel: '', sequence: 0, issued: ZERO_TIME, expires: ZERO_TIME, build: zeroRef() });
const zeroBuild = (): Build => ({ app: '', ...zeroRef(), uploader: '', created: ZERO_TIME, notes: '', git_commit: '' });

const refFields = { id: j.str, number: j.int64, version: j.str, bundle: j.str, sha256: j.str, size: j.int64, min_native: j.str };

const aclDecoder = j.struct<ACL>(
  {
    version: j.int64,
    issued: j.time,
    users: j.slice(
      j.struct<User>({ name: j.str, keys: j.slice(j.str, () => ''), grants: j.map(j.struct<Grant>({ can_upload: j.bool }, zeroGrant), zeroGrant) }, zeroUser),
      zeroUser,
    ),
  },
  zeroACL,
);
const latestDecoder = j.struct<Latest>(
  { app: j.str, channel: j.str, sequence: j.int64, issued: j.time, expires: j.time, build: j.struct<BuildRef>(refFields, zeroRef) },
  zeroLatest,
);
const buildDecoder = j.struct<Build>({ app: j.str, ...refFields, uploader: j.str, created: j.time, notes: j.str, git_commit: j.str }, zeroBuild);

/** Decodes a payload as manifest.strictUnmarshal does. */
function decodePayload<T>(what: string, payload: Uint8Array, dec: j.Decoder<T>, zero: () => T): T {
  try {
    return dec(j.parse(fromUTF8(payload), 'first'), zero());
  } catch (e) {
    throw new VerifyError('malformed', `${what}: ${(e as Error).message ?? e}`);
  }
}

/** Every valid user key in the ACL, in order. */
function aclKeys(acl: ACL): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const u of acl.users) {
    for (const k of u.keys) {
      try {
        out.push(parsePublicKey(k));
      } catch {
        // skipped, as in Go
      }
    }
  }
  return out;
}

/** The name of the user who holds pub, as written in the ACL, and may upload to app; "" if none. */
export function uploader(acl: ACL, pub: Uint8Array, app: string): string {
  const text = formatPublicKey(pub);
  for (const u of acl.users) {
    const can = u.grants[app]?.can_upload || u.grants[ALL_APPS]?.can_upload;
    if (can && u.keys.includes(text)) return u.name;
  }
  return '';
}

async function signersIn(env: Envelope, acl: ACL, verify: VerifyFn): Promise<Uint8Array[]> {
  const keys = aclKeys(acl);
  const signers = await signedBy(env, keys, verify);
  if (signers.length === 0) {
    if (await signedByKnownID(env, keys)) throw new VerifyError('bad_signature', "a known key's signature does not verify");
    throw new VerifyError('untrusted_key', 'signed by no key in the ACL');
  }
  return signers;
}

const granted = (acl: ACL, signers: Uint8Array[], app: string) => signers.some((k) => uploader(acl, k, app) !== '');

const bundleKey = (app: string, sha: string) => `apps/${app}/bundles/${sha}.zip`;

/** Checks a build reference against the store layout; returns the problem, or "". */
function checkRef(b: BuildRef, app: string): string {
  if (!/^[0-9a-f]{64}$/.test(b.sha256)) return `sha256 ${JSON.stringify(b.sha256)} is not 64 lowercase hex digits`;
  if (b.size <= 0) return `size ${b.size} is not positive`;
  if (b.bundle !== bundleKey(app, b.sha256)) return `bundle ${JSON.stringify(b.bundle)} is not ${JSON.stringify(bundleKey(app, b.sha256))}`;
  if (b.number <= 0 || b.id !== `${app}-${b.number}`) return `build id ${JSON.stringify(b.id)} does not match number ${b.number}`;
  if (b.version === '') return `build ${b.id} has no version`;
  return '';
}

// ---------------------------------------------------------------------------
// Verification

/**
 * Checks an acl.json envelope against the pinned root keys and returns its
 * payload. minVersion is the highest ACL version seen before.
 * @throws VerifyError: too_large, malformed, unsigned, bad_signature, acl_untrusted, acl_rollback
 */
export async function verifyACL(trust: Trust, data: EnvelopeInput, minVersion = 0): Promise<ACL> {
  const roots = trust.roots.map(parsePublicKey);
  const verify = await ed25519Verifier(trust.ed25519);
  let env: Envelope;
  try {
    env = parseEnvelope(data, TYPE_ACL, MAX_ACL_SIZE);
  } catch (e) {
    if (e instanceof VerifyError) throw new VerifyError(e.rule, `acl: ${e.detail}`);
    throw e;
  }
  const need = Math.max(trust.threshold ?? 0, 1);
  const got = (await signedBy(env, roots, verify)).length;
  if (got < need) {
    if (got === 0 && (await signedByKnownID(env, roots))) throw new VerifyError('bad_signature', "acl: a root key's signature does not verify");
    throw new VerifyError('acl_untrusted', `acl: ${got} valid root signature(s), need ${need}; is the pinned root key the one that signed it?`);
  }
  const acl = decodePayload('acl', env.payload, aclDecoder, zeroACL);
  if (acl.version < 1) throw new VerifyError('malformed', `acl: version ${acl.version}`);
  if (acl.version < minVersion) throw new VerifyError('acl_rollback', `acl version ${acl.version} is older than version ${minVersion} seen before`);
  return acl;
}

/**
 * Checks a latest.json envelope and the acl.json envelope it rests on, and
 * returns both payloads.
 * @throws VerifyError naming the first rule broken
 */
export async function verifyLatest(trust: Trust, aclData: EnvelopeInput, latestData: EnvelopeInput, exp: Expect): Promise<{ latest: Latest; acl: ACL }> {
  const acl = await verifyACL(trust, aclData, exp.minACLVersion ?? 0);
  const env = parseEnvelope(latestData, TYPE_LATEST, MAX_LATEST_SIZE);
  const signers = await signersIn(env, acl, await ed25519Verifier(trust.ed25519));
  const l = decodePayload('latest', env.payload, latestDecoder, zeroLatest);
  if (l.app !== exp.app) throw new VerifyError('app_mismatch', `manifest is for app ${JSON.stringify(l.app)}, want ${JSON.stringify(exp.app)}`);
  if (l.channel !== exp.channel) {
    throw new VerifyError('channel_mismatch', `manifest is for channel ${JSON.stringify(l.channel)}, want ${JSON.stringify(exp.channel)}`);
  }
  if (!granted(acl, signers, l.app)) throw new VerifyError('not_granted', `no signer holds can_upload for app ${JSON.stringify(l.app)}`);
  const minSequence = exp.minSequence ?? 0;
  if (l.sequence < minSequence) throw new VerifyError('rollback', `sequence ${l.sequence} is lower than ${minSequence} seen before`);
  const now = BigInt((exp.now ?? new Date()).getTime()) * 1_000_000n;
  if (now >= j.parseTime(l.expires)!) throw new VerifyError('expired', `expired at ${l.expires}`);
  const problem = checkRef(l.build, l.app);
  if (problem) throw new VerifyError('malformed', `latest: ${problem}`);
  return { latest: l, acl };
}

/**
 * Checks a build record envelope (apps/<app>/builds/<n>.json) against a
 * verified ACL.
 * @throws VerifyError naming the first rule broken
 */
export async function verifyBuild(acl: ACL, data: EnvelopeInput, app: string, impl?: Ed25519Impl): Promise<Build> {
  const env = parseEnvelope(data, TYPE_BUILD, MAX_BUILD_SIZE);
  const signers = await signersIn(env, acl, await ed25519Verifier(impl));
  const b = decodePayload('build', env.payload, buildDecoder, zeroBuild);
  if (b.app !== app) throw new VerifyError('app_mismatch', `build record is for app ${JSON.stringify(b.app)}, want ${JSON.stringify(app)}`);
  if (!granted(acl, signers, app)) throw new VerifyError('not_granted', `no signer holds can_upload for app ${JSON.stringify(app)}`);
  const problem = checkRef(b, app);
  if (problem) throw new VerifyError('malformed', `build: ${problem}`);
  return b;
}

/**
 * Checks that bundle bytes have the size and sha256 the reference names.
 * @throws VerifyError bundle_mismatch
 */
export async function verifyBundle(ref: Pick<BuildRef, 'sha256' | 'size'>, data: Uint8Array | ArrayBuffer): Promise<void> {
  const b = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (b.length !== ref.size) throw new VerifyError('bundle_mismatch', `bundle has ${b.length} bytes, manifest says ${ref.size}`);
  const got = hex(await sha256(b));
  if (got !== ref.sha256) throw new VerifyError('bundle_mismatch', `bundle sha256 ${got}, manifest says ${ref.sha256}`);
}
