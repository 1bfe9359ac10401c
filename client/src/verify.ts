// The verifier of signed manifests, rule for rule and in the same order as
// manifest/verify.go. Both are pinned by testdata/vectors.json; the formats
// are described in docs/format.md.

import { ed25519Verifier, hex, sha256, type Ed25519Impl, type VerifyFn } from './ed25519.js';
import { compareNumeric } from './release.js';
import * as j from './json.js';

/** Payload types of the envelopes deploy signs. */
export const TYPE_ACL = 'application/vnd.deploy.acl+json';
export const TYPE_BUILD = 'application/vnd.deploy.build+json';
export const TYPE_LATEST = 'application/vnd.deploy.latest+json';
export const TYPE_HALT = 'application/vnd.deploy.halt+json';

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
  | 'bundle_mismatch' // bundle bytes differ from the manifest
  | 'files_mismatch' // a file manifest or file differs from what was signed
  | 'history_gap'; // a history entry does not link to the one before it

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

/** What a user may do with an app; a user may when the app's grant or the "*" grant allows it. */
export interface Grant {
  can_upload: boolean;
  can_halt: boolean;
}

/** The payload of apps/<app>/channels/<channel>/latest.json (manifest.Latest). */
export interface Latest {
  app: string;
  channel: string;
  sequence: number;
  issued: string;
  expires: string;
  /** The stable build. */
  build: BuildRef;
  candidate: Candidate | null;
  /** Builds for older native versions, by decreasing number; at most MAX_FALLBACKS. */
  fallbacks: BuildRef[];
  settings: Settings;
  notes: string;
  by: string;
  previous: Link | null;
  /** Set by the verifier when the pointer came wrapped in a halt (then candidate is null). */
  halted?: Halt;
}

/** A build offered to a share of the devices. */
export interface Candidate {
  build: BuildRef;
  percent: number; // 0 to 100
  rollout: string;
  paused: boolean;
}

export interface Settings {
  self_assign: boolean;
}

/** An earlier envelope of a channel: its sequence and the SHA-256 of its bytes. */
export interface Link {
  sequence: number;
  sha256: string;
}

/** The payload of a halt envelope (manifest.Halt). */
export interface Halt {
  app: string;
  channel: string;
  sequence: number;
  issued: string;
  reason: string;
  pointer: Envelope;
  previous: Link;
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
  max_native: string; // "" if none
  crc32: string; // "" if none
  files_sha256: string; // "" if no file manifest
  files_size: number;
}

/** The payload of apps/<app>/builds/<number>.json. */
export interface Build extends BuildRef {
  app: string;
  uploader: string;
  created: string;
  notes: string;
  git_commit: string;
}

export const MAX_FALLBACKS = 8;

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
  if (typeof s !== 'string') {
    throw new Error(`public key is ${s === undefined ? 'undefined' : typeof s}, not a string "${PUBLIC_KEY_PREFIX}..."; print the root key with \`deploy keys show root=1\``);
  }
  const t = trimSpace(s);
  if (!t.startsWith(PUBLIC_KEY_PREFIX)) {
    throw new Error(
      `public key "${t.slice(0, 24)}" does not start with "${PUBLIC_KEY_PREFIX}"; print the root key with \`deploy keys show root=1\`, a user's with \`deploy keys show\``,
    );
  }
  let b: Uint8Array | undefined;
  try {
    b = j.decodeBase64(t.slice(PUBLIC_KEY_PREFIX.length));
  } catch {
    // reported below
  }
  if (!b || b.length !== 32) throw new Error(`public key "${t.slice(0, 24)}" is not 32 bytes of base64 after "${PUBLIC_KEY_PREFIX}"`);
  if (weakKey(b)) throw new Error(`public key "${t.slice(0, 24)}" is not a canonical encoding of a point of large order; generate a new key with \`deploy keys\``);
  return b;
}

// The y coordinates (little-endian hex) of the points of small order: 0, 1,
// p-1 and the two of order 8.
const SMALL_ORDER_Y = new Set([
  '00'.repeat(32),
  '01' + '00'.repeat(31),
  'ec' + 'ff'.repeat(30) + '7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
]);

/** A key refused by docs/format.md ("Keys"): y (sign bit cleared) not below p = 2^255-19, or of a small-order point. */
function weakKey(b: Uint8Array): boolean {
  const y = Uint8Array.from(b);
  y[31] &= 0x7f;
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(y[i]);
  return n >= (1n << 255n) - 19n || SMALL_ORDER_Y.has(hex(y));
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

const envelopeDecoder = j.struct<Envelope>({ payloadType: j.str, payload: j.bytes, signatures: j.slice(j.struct({ keyid: j.str, sig: j.bytes })) });

const utf8 = new TextEncoder();
// Keep a BOM, so that it is refused; refuse invalid UTF-8.
const fromUTF8 = (b: Uint8Array) => new TextDecoder('utf-8', { ignoreBOM: true, fatal: true }).decode(b);

/** DSSE's pre-authentication encoding of a payload: the bytes that are signed. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8.encode(payloadType);
  const head = utf8.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** parse-envelope of docs/format.md, for any of types. */
function parseEnvelope(input: EnvelopeInput, limit: number, ...types: string[]): Envelope {
  let text: string;
  let size: number;
  try {
    if (typeof input === 'string') {
      text = input;
      size = utf8.encode(input).length;
    } else if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
      const b = input instanceof Uint8Array ? input : new Uint8Array(input);
      size = b.length;
      if (size > limit) throw new VerifyError('too_large', `${size} bytes, limit ${limit}`);
      text = fromUTF8(b);
    } else {
      // An envelope inside a larger JSON answer: measured as re-serialised.
      text = JSON.stringify(input) ?? '';
      size = utf8.encode(text).length;
    }
    if (size > limit) throw new VerifyError('too_large', `${size} bytes, limit ${limit}`);
    const env = envelopeDecoder(j.parse(text), '');
    checkEnvelope(env, ...types);
    return env;
  } catch (e) {
    if (e instanceof VerifyError) throw e;
    throw new VerifyError('malformed', String((e as Error).message ?? e));
  }
}

function checkEnvelope(env: Envelope, ...types: string[]): void {
  if (!types.includes(env.payloadType)) {
    throw new VerifyError('malformed', `payload type ${JSON.stringify(env.payloadType)}, want ${types.map((t) => JSON.stringify(t)).join(' or ')}`);
  }
  if (env.signatures.some((s) => !SHA256_HEX.test(s.keyid) || s.sig.length !== 64)) {
    throw new VerifyError('malformed', "a signature's keyid is not 64 lowercase hex digits, or its sig not 64 bytes");
  }
  if (env.signatures.length === 0) throw new VerifyError('unsigned', 'the envelope has no signatures');
}

// L, the order of the Ed25519 base point.
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

/** Verifies with S < L checked first, whatever the implementation does. */
async function verifySig(verify: VerifyFn, pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]);
  return s < ED25519_L && verify(pub, msg, sig);
}

/** The keys among trusted whose signature on env verifies; a key listed twice counts twice, as in Go. */
async function signedBy(env: Envelope, trusted: Uint8Array[], verify: VerifyFn): Promise<Uint8Array[]> {
  const msg = pae(env.payloadType, env.payload);
  const out: Uint8Array[] = [];
  for (const k of trusted) {
    const id = await keyID(k);
    for (const s of env.signatures) {
      if (s.keyid === id && (await verifySig(verify, k, msg, s.sig))) {
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

const SHA256_HEX = /^[0-9a-f]{64}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const CRC32_HEX = /^[0-9a-f]{8}$/;
const BOUND = /^[0-9]{1,9}(?:\.[0-9]{1,9}){0,3}$/;

const no = () => false;
const none = () => '';
const zero = () => 0;

const aclDecoder = j.struct<ACL>({
  version: j.int,
  issued: j.time,
  users: j.slice(
    j.struct<User>({
      name: j.str,
      keys: j.slice(j.str),
      grants: j.opt(j.map(j.struct<Grant>({ can_upload: j.opt(j.bool, no), can_halt: j.opt(j.bool, no) })), () => Object.create(null)),
    }),
  ),
});
const refFields = {
  id: j.str,
  number: j.int,
  version: j.str,
  bundle: j.str,
  sha256: j.str,
  size: j.int,
  min_native: j.opt(j.str, none),
  max_native: j.opt(j.str, none),
  crc32: j.opt(j.str, none),
  files_sha256: j.opt(j.str, none),
  files_size: j.opt(j.int, zero),
};
const refDecoder = j.struct<BuildRef>(refFields);
const linkDecoder = j.struct<Link>({ sequence: j.int, sha256: j.str });
const latestDecoder = j.struct<Latest>({
  app: j.str,
  channel: j.str,
  sequence: j.int,
  issued: j.time,
  expires: j.time,
  build: refDecoder,
  candidate: j.opt<Candidate | null>(j.struct<Candidate>({ build: refDecoder, percent: j.int, rollout: j.str, paused: j.opt(j.bool, no) }), () => null),
  fallbacks: j.opt(j.slice(refDecoder), () => []),
  settings: j.opt(j.struct<Settings>({ self_assign: j.opt(j.bool, no) }), () => ({ self_assign: false })),
  notes: j.opt(j.str, none),
  by: j.opt(j.str, none),
  previous: j.opt<Link | null>(linkDecoder, () => null),
});
const haltDecoder = j.struct<Omit<Halt, never>>({
  app: j.str,
  channel: j.str,
  sequence: j.int,
  issued: j.time,
  reason: j.opt(j.str, none),
  pointer: envelopeDecoder,
  previous: linkDecoder,
});
const buildDecoder = j.struct<Build>({ app: j.str, ...refFields, uploader: j.str, created: j.time, notes: j.opt(j.str, none), git_commit: j.opt(j.str, none) });

/** Decodes a payload under the strict rules. */
export function decodePayload<T>(what: string, payload: Uint8Array, dec: j.Decoder<T>): T {
  try {
    return dec(j.parse(fromUTF8(payload)), '');
  } catch (e) {
    throw new VerifyError('malformed', `${what}: ${(e as Error).message ?? e}`);
  }
}

/** The ACL's rules beyond decoding; returns the problem, or "". */
function checkACL(acl: ACL): string {
  if (acl.version < 1) return `version ${acl.version}`;
  const users = new Set<string>();
  const keys = new Map<string, string>();
  for (const u of acl.users) {
    if (!NAME.test(u.name) || users.has(u.name)) return `user name ${JSON.stringify(u.name)} is invalid or repeated`;
    users.add(u.name);
    if (u.keys.length === 0) return `user ${u.name} has no keys`;
    for (const k of u.keys) {
      let canonical = false;
      try {
        canonical = formatPublicKey(parsePublicKey(k)) === k;
      } catch {
        // not a key
      }
      if (!canonical) return `user ${u.name}: key ${JSON.stringify(k.slice(0, 24))} is not a valid key in text form`;
      if (keys.has(k) && keys.get(k) !== u.name) return `key ${k.slice(0, 24)} is held by both ${keys.get(k)} and ${u.name}`;
      keys.set(k, u.name);
    }
    for (const app of Object.keys(u.grants)) {
      if (app !== ALL_APPS && !NAME.test(app)) return `user ${u.name}: grant for ${JSON.stringify(app)}, which is not an app name`;
    }
  }
  return '';
}

/** Every user key in the (checked) ACL, in order. */
function aclKeys(acl: ACL): Uint8Array[] {
  return acl.users.flatMap((u) => u.keys.map(parsePublicKey));
}

type May = (g: Grant | undefined) => boolean | undefined;
const mayUpload: May = (g) => g?.can_upload;
const mayHalt: May = (g) => g?.can_halt;

function holder(acl: ACL, pub: Uint8Array, app: string, may: May): string {
  const text = formatPublicKey(pub);
  for (const u of acl.users) {
    if ((may(u.grants[app]) || may(u.grants[ALL_APPS])) && u.keys.includes(text)) return u.name;
  }
  return '';
}

/** The name of the user who holds pub, as written in the ACL, and may upload to app; "" if none. */
export function uploader(acl: ACL, pub: Uint8Array, app: string): string {
  return holder(acl, pub, app, mayUpload);
}

const holders = (acl: ACL, signers: Uint8Array[], app: string, may: May) => signers.map((k) => holder(acl, k, app, may)).filter((n) => n !== '');

async function signersIn(env: Envelope, acl: ACL, verify: VerifyFn): Promise<Uint8Array[]> {
  const keys = aclKeys(acl);
  const signers = await signedBy(env, keys, verify);
  if (signers.length === 0) {
    if (await signedByKnownID(env, keys)) throw new VerifyError('bad_signature', "a known key's signature does not verify");
    throw new VerifyError('untrusted_key', 'signed by no key in the ACL');
  }
  return signers;
}

const bundleKey = (app: string, sha: string) => `apps/${app}/bundles/${sha}.zip`;

/** Checks a build reference against the store layout; returns the problem, or "". */
/** The largest file manifest, or patch of one, a verifier reads: 8 MiB (manifest.MaxFileManifestSize). */
export const MAX_FILE_MANIFEST_SIZE = 8 << 20;

function checkRef(b: BuildRef, app: string): string {
  if (!SHA256_HEX.test(b.sha256)) return `sha256 ${JSON.stringify(b.sha256)} is not 64 lowercase hex digits`;
  if (b.size <= 0) return `size ${b.size} is not positive`;
  if (b.bundle !== bundleKey(app, b.sha256)) return `bundle ${JSON.stringify(b.bundle)} is not ${JSON.stringify(bundleKey(app, b.sha256))}`;
  if (b.number <= 0 || b.id !== `${app}-${b.number}`) return `build id ${JSON.stringify(b.id)} does not match number ${b.number}`;
  if (b.version === '') return `build ${b.id} has no version`;
  for (const v of [b.min_native, b.max_native]) {
    if (v !== '' && !BOUND.test(v)) return `build ${b.id}: native version ${JSON.stringify(v)} is not 1 to 4 numbers of 1 to 9 digits joined by '.'`;
  }
  if (b.min_native !== '' && b.max_native !== '' && compareNumeric(b.min_native, b.max_native) > 0) return `build ${b.id}: min_native is above max_native`;
  if (b.crc32 !== '' && !CRC32_HEX.test(b.crc32)) return `build ${b.id}: crc32 ${JSON.stringify(b.crc32)} is not 8 lowercase hex digits`;
  if ((b.files_sha256 === '') !== (b.files_size === 0)) return `build ${b.id}: files_sha256 and files_size go together`;
  if (b.files_sha256 !== '' && !SHA256_HEX.test(b.files_sha256)) return `build ${b.id}: files_sha256 is not 64 lowercase hex digits`;
  if (b.files_size > MAX_FILE_MANIFEST_SIZE) return `build ${b.id}: files_size ${b.files_size} is over the ${MAX_FILE_MANIFEST_SIZE} bytes a verifier reads`;
  return '';
}

/** A pointer's rules beyond its signature; returns the problem, or "". */
function checkLatest(l: Latest): string {
  const p = checkRef(l.build, l.app);
  if (p) return p;
  const c = l.candidate;
  if (c) {
    const q = checkRef(c.build, l.app);
    if (q) return `candidate: ${q}`;
    if (c.percent > 100) return `candidate percent ${c.percent} is over 100`;
    if (!NAME.test(c.rollout)) return `candidate rollout ${JSON.stringify(c.rollout)} is not a name`;
  }
  if (l.fallbacks.length > MAX_FALLBACKS) return `${l.fallbacks.length} fallback builds, at most ${MAX_FALLBACKS}`;
  for (const [i, f] of l.fallbacks.entries()) {
    const q = checkRef(f, l.app);
    if (q) return `fallback: ${q}`;
    if (i > 0 && f.number >= l.fallbacks[i - 1].number) return 'fallback builds are not listed by decreasing number';
  }
  const prev = l.previous;
  if (prev && (prev.sequence >= l.sequence || !SHA256_HEX.test(prev.sha256))) return `previous: sequence ${prev.sequence} is not below ${l.sequence}, or its sha256 is not 64 lowercase hex digits`;
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
    env = parseEnvelope(data, MAX_ACL_SIZE, TYPE_ACL);
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
  const acl = decodePayload('acl', env.payload, aclDecoder);
  const problem = checkACL(acl);
  if (problem) throw new VerifyError('malformed', `acl: ${problem}`);
  if (acl.version < minVersion) throw new VerifyError('acl_rollback', `acl version ${acl.version} is older than version ${minVersion} seen before`);
  return acl;
}

/**
 * Checks a latest.json envelope and the acl.json envelope it rests on, and
 * returns both payloads. A halt envelope yields the halted pointer without
 * its candidate, with the halt's sequence, and `halted` set.
 * @throws VerifyError naming the first rule broken
 */
export async function verifyLatest(trust: Trust, aclData: EnvelopeInput, latestData: EnvelopeInput, exp: Expect): Promise<{ latest: Latest; acl: ACL }> {
  const acl = await verifyACL(trust, aclData, exp.minACLVersion ?? 0);
  const latest = await verifyEntry(acl, latestData, exp, await ed25519Verifier(trust.ed25519), true);
  return { latest, acl };
}

async function verifyEntry(acl: ACL, data: EnvelopeInput, exp: Expect, verify: VerifyFn, checkExpiry: boolean): Promise<Latest> {
  const env = parseEnvelope(data, MAX_LATEST_SIZE, TYPE_LATEST, TYPE_HALT);
  if (env.payloadType === TYPE_HALT) return verifyHalt(acl, env, exp, verify, checkExpiry);
  return verifyPointer(acl, env, exp, verify, checkExpiry);
}

function matches(app: string, channel: string, exp: Expect): void {
  if (app !== exp.app) throw new VerifyError('app_mismatch', `manifest is for app ${JSON.stringify(app)}, want ${JSON.stringify(exp.app)}`);
  if (channel !== exp.channel) throw new VerifyError('channel_mismatch', `manifest is for channel ${JSON.stringify(channel)}, want ${JSON.stringify(exp.channel)}`);
}

async function verifyPointer(acl: ACL, env: Envelope, exp: Expect, verify: VerifyFn, checkExpiry: boolean): Promise<Latest> {
  const signers = await signersIn(env, acl, verify);
  const l = decodePayload('latest', env.payload, latestDecoder);
  matches(l.app, l.channel, exp);
  const names = holders(acl, signers, l.app, mayUpload);
  if (names.length === 0 || (l.by !== '' && !names.includes(l.by))) {
    throw new VerifyError('not_granted', `no signer holds can_upload for app ${JSON.stringify(l.app)} (or "by" ${JSON.stringify(l.by)} is not one of them)`);
  }
  const minSequence = exp.minSequence ?? 0;
  if (l.sequence < minSequence) throw new VerifyError('rollback', `sequence ${l.sequence} is lower than ${minSequence} seen before`);
  const now = BigInt((exp.now ?? new Date()).getTime()) * 1_000_000n;
  if (checkExpiry && now >= j.parseTime(l.expires)!) throw new VerifyError('expired', `expired at ${l.expires}`);
  const problem = checkLatest(l);
  if (problem) throw new VerifyError('malformed', `latest: ${problem}`);
  return l;
}

async function verifyHalt(acl: ACL, env: Envelope, exp: Expect, verify: VerifyFn, checkExpiry: boolean): Promise<Latest> {
  const signers = await signersIn(env, acl, verify);
  const h = decodePayload('halt', env.payload, haltDecoder);
  matches(h.app, h.channel, exp);
  if (holders(acl, signers, h.app, mayHalt).length === 0) throw new VerifyError('not_granted', `no signer of the halt holds can_halt for app ${JSON.stringify(h.app)}`);
  checkEnvelope(h.pointer, TYPE_LATEST);
  const l = await verifyPointer(acl, h.pointer, { ...exp, minSequence: 0 }, verify, checkExpiry);
  if (h.sequence !== l.sequence + 1 || h.previous.sequence !== l.sequence || !SHA256_HEX.test(h.previous.sha256)) {
    throw new VerifyError('malformed', `halt: sequence ${h.sequence} and previous ${h.previous.sequence} do not follow the halted pointer's ${l.sequence}`);
  }
  const minSequence = exp.minSequence ?? 0;
  if (h.sequence < minSequence) throw new VerifyError('rollback', `sequence ${h.sequence} is lower than ${minSequence} seen before`);
  return { ...l, candidate: null, sequence: h.sequence, halted: h };
}

/**
 * Checks a channel's history (the bytes of history/<sequence>.json, oldest
 * first) against a verified ACL: each entry verifies as a latest.json would,
 * expiry aside, and links to the one before it.
 * @throws VerifyError naming the first rule broken
 */
export async function verifyHistory(acl: ACL, app: string, channel: string, entries: Uint8Array[], impl?: Ed25519Impl): Promise<Latest[]> {
  const verify = await ed25519Verifier(impl);
  const out: Latest[] = [];
  for (const [i, data] of entries.entries()) {
    const l = await verifyEntry(acl, data, { app, channel }, verify, false);
    if (i > 0) {
      const want = { sequence: out[i - 1].sequence, sha256: hex(await sha256(entries[i - 1])) };
      const got = l.halted ? l.halted.previous : l.previous;
      if (!got || got.sequence !== want.sequence || got.sha256 !== want.sha256) {
        throw new VerifyError('history_gap', `sequence ${l.sequence} does not link to sequence ${want.sequence} with sha256 ${want.sha256}`);
      }
    }
    out.push(l);
  }
  return out;
}

/**
 * Checks a build record envelope (apps/<app>/builds/<n>.json) against a
 * verified ACL.
 * @throws VerifyError naming the first rule broken
 */
export async function verifyBuild(acl: ACL, data: EnvelopeInput, app: string, impl?: Ed25519Impl): Promise<Build> {
  const env = parseEnvelope(data, MAX_BUILD_SIZE, TYPE_BUILD);
  const signers = await signersIn(env, acl, await ed25519Verifier(impl));
  const b = decodePayload('build', env.payload, buildDecoder);
  if (b.app !== app) throw new VerifyError('app_mismatch', `build record is for app ${JSON.stringify(b.app)}, want ${JSON.stringify(app)}`);
  if (holders(acl, signers, app, mayUpload).length === 0) throw new VerifyError('not_granted', `no signer holds can_upload for app ${JSON.stringify(app)}`);
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
