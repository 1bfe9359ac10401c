// Releases as pure functions, as manifest/release.go: the cohort of a
// device in a staged rollout, and the build a device should run under a
// verified pointer. docs/format.md ("Staged rollout", "Native versions")
// defines them byte for byte; testdata/vectors.json pins both verifiers.

import { sha256 } from './ed25519.js';
import type { BuildRef, Candidate, Latest } from './verify.js';

/** How many buckets cohort() spreads devices over. */
export const COHORT_BUCKETS = 10000;

const utf8 = new TextEncoder();

/**
 * The bucket (0 to 9999) of a device in a rollout: SHA-256 over
 * "deploy-cohort-v1", then app, channel, rollout and device, each as a
 * 4-byte big-endian length and its UTF-8 bytes; the first 8 bytes as a
 * big-endian unsigned integer, modulo 10000. The device ID has its ASCII
 * letters lowercased first, as the tracker takes device IDs.
 */
export async function cohort(app: string, channel: string, rollout: string, device: string): Promise<number> {
  const parts = [utf8.encode('deploy-cohort-v1')];
  for (const s of [app, channel, rollout, device.replace(/[A-Z]/g, (c) => c.toLowerCase())]) {
    const b = utf8.encode(s);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, b.length);
    parts.push(len, b);
  }
  const msg = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    msg.set(p, o);
    o += p.length;
  }
  const sum = await sha256(msg);
  return Number(new DataView(sum.buffer, sum.byteOffset, 8).getBigUint64(0) % BigInt(COHORT_BUCKETS));
}

/** Whether a device gets a candidate: its bucket is below percent*100. */
export async function inCohort(app: string, channel: string, c: Pick<Candidate, 'rollout' | 'percent'>, device: string): Promise<boolean> {
  return (await cohort(app, channel, c.rollout, device)) < c.percent * 100;
}

/** Why a build was selected, as manifest.Select* in Go. */
export type SelectReason = 'candidate' | 'stable' | 'fallback' | 'no_compatible_build';

export interface Selection {
  build: BuildRef | null;
  reason: SelectReason;
  detail: string;
}

/**
 * The build a device should run under a verified pointer: the candidate if
 * the rollout is not paused, the device is in its cohort and its native
 * version fits; else the first of the stable build and the fallbacks that fits.
 */
export async function selectBuild(l: Latest, native: string, device: string): Promise<Selection> {
  const c = l.candidate;
  if (c && !c.paused && (await inCohort(l.app, l.channel, c, device)) && nativeFits(c.build, native)) {
    return { build: c.build, reason: 'candidate', detail: '' };
  }
  if (nativeFits(l.build, native)) return { build: l.build, reason: 'stable', detail: '' };
  const f = l.fallbacks.find((b) => nativeFits(b, native));
  if (f) return { build: f, reason: 'fallback', detail: '' };
  return {
    build: null,
    reason: 'no_compatible_build',
    detail: `no build of channel ${l.channel} runs on native version ${JSON.stringify(native)}; update the app from its store`,
  };
}

// The suffix is any characters but a newline, as docs/format.md spells it
// (and Go's "." reads it): not "." here, which refuses \r, U+2028 and U+2029 too.
const NATIVE = /^([0-9]{1,9}(?:\.[0-9]{1,9})*)([-+][^\n]*)?$/;

/**
 * Whether a build runs on a native version: min_native <= native <=
 * max_native as dotted numbers (a missing number is 0); a "-" suffix puts
 * the native version just below its numbers, a "+" suffix is ignored; a
 * native version not of this form fits only builds without bounds.
 */
export function nativeFits(b: Pick<BuildRef, 'min_native' | 'max_native'>, native: string): boolean {
  if (b.min_native === '' && b.max_native === '') return true;
  const m = NATIVE.exec(native);
  if (!m) return false;
  const pre = (m[2] ?? '').startsWith('-');
  const cmp = (bound: string) => {
    const c = compareNumeric(m[1], bound);
    return c === 0 && pre ? -1 : c;
  };
  return (b.min_native === '' || cmp(b.min_native) >= 0) && (b.max_native === '' || cmp(b.max_native) <= 0);
}

/** Compares dotted numbers of at most 9 digits each. */
export function compareNumeric(a: string, b: string): number {
  const as = a.split('.').map(Number);
  const bs = b.split('.').map(Number);
  for (let i = 0; i < Math.max(as.length, bs.length); i++) {
    const x = as[i] ?? 0;
    const y = bs[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
