// Ed25519 signature checks: WebCrypto where the platform has Ed25519 (Node 20,
// Safari 17, Chrome 137 and the WebViews built on them), else the curve
// arithmetic of @noble/ed25519 (the small single-curve library of the
// author of @noble/curves), loaded only when needed.

/**
 * Which implementation checks signatures. "auto" takes WebCrypto when a
 * probe at first use shows it checks exactly as Go does ({@link webCryptoProbes}:
 * it refuses S + L and a torsion R, among others), else @noble/ed25519.
 */
export type Ed25519Impl = 'auto' | 'webcrypto' | 'noble';

/** Verifies sig over msg with a raw 32-byte public key. Never throws for a bad signature. */
export type VerifyFn = (pub: Uint8Array, msg: Uint8Array, sig: Uint8Array) => Promise<boolean>;

const webcrypto: VerifyFn = async (pub, msg, sig) => {
  if (sig.length !== 64) return false;
  const subtle = globalThis.crypto.subtle;
  try {
    const key = await subtle.importKey('raw', buf(pub), { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify({ name: 'Ed25519' }, key, buf(sig), buf(msg));
  } catch {
    return false; // a public key that is not a curve point
  }
};

let noblePromise: Promise<VerifyFn> | undefined;

// L, the order of the base point.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

const littleEndian = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);

function noble(): Promise<VerifyFn> {
  // RFC 8032's strict decoding (as Go's crypto/ed25519) and Go's cofactorless
  // equation: the encoding of [S]B - [k]A must be R's bytes. Only noble's
  // point arithmetic is used, not its verify(), which is cofactored.
  noblePromise ??= import('@noble/ed25519').then(({ Point }) => async (pub, msg, sig) => {
    try {
      if (sig.length !== 64) return false;
      const s = littleEndian(sig.subarray(32));
      if (s >= L) return false;
      const A = Point.fromBytes(pub, false);
      const input = new Uint8Array(64 + msg.length);
      input.set(sig.subarray(0, 32));
      input.set(pub, 32);
      input.set(msg, 64);
      const k = littleEndian(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-512', buf(input)))) % L;
      const R = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k)).toBytes();
      return R.every((x, i) => x === sig[i]);
    } catch {
      return false;
    }
  });
  return noblePromise;
}

let autoPromise: Promise<VerifyFn> | undefined;

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

const rfc8032Key = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

/**
 * Signatures over the empty message that pin the rule both verifiers apply
 * (docs/format.md, "Signature checks"): S < L, and the encoding of
 * [S]B - [k]A equal to R's bytes. The key is RFC 8032's test 1 key, or
 * (`mixed`) that key plus a point of order 8.
 */
export const webCryptoProbes: readonly { what: string; pub: string; sig: string; ok: boolean }[] = [
  {
    what: "RFC 8032's test 1",
    pub: rfc8032Key,
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    ok: true,
  },
  {
    what: 'test 1 with L added to S',
    pub: rfc8032Key,
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901554c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b',
    ok: false,
  },
  {
    what: 'R = [r]B + a point of order 8 (a cofactored check accepts it)',
    pub: rfc8032Key,
    sig: '0976d28f62f1bf074069055dcd6d6b81b12cd74d0d70441a51c9a7dd7081afe3d3a5d6aede540d46961fb840029f21ad01a7c4455b578955615c4375ad180f0a',
    ok: false,
  },
  {
    what: 'R = the identity, canonical, with the equation holding',
    pub: rfc8032Key,
    sig: '0100000000000000000000000000000000000000000000000000000000000000756cf9b1d6f0d7a979b9d2af3dc2bc1294ec7cb6daa20eaff534c024fc57920f',
    ok: true,
  },
  {
    what: 'R = the identity encoded with y = p + 1 (a check that decodes R accepts it)',
    pub: rfc8032Key,
    sig: 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f3fdd9411ef77c7b937c975b1193128983db0482a002663080c0dd63cf3466c06',
    ok: false,
  },
  {
    what: 'a mixed-order key, with the equation holding',
    pub: '9158312a9a8d6e3b34c891d6d61444f8b8211c5117ebad15bdb0bd68b07e0245',
    sig: '5866666666666666666666666666666666666666666666666666666666666666cece45fdd0e9e91cf34c479f7aae25a1bf35edab2276ec0b154a960b32e3da00',
    ok: true,
  },
];

/** Reports whether verify gives every probe its expected answer. */
export async function passesProbes(verify: VerifyFn): Promise<boolean> {
  try {
    const got = await Promise.all(webCryptoProbes.map((p) => verify(unhex(p.pub), new Uint8Array(0), unhex(p.sig))));
    return got.every((ok, i) => ok === webCryptoProbes[i].ok);
  } catch {
    return false;
  }
}

// Uses WebCrypto only when it has Ed25519 and checks signatures exactly as
// Go does (the probes above); else @noble/ed25519 with the same rule.
async function detect(): Promise<VerifyFn> {
  if (globalThis.crypto?.subtle && (await passesProbes(webcrypto))) return webcrypto;
  return noble();
}

/** Returns the signature check for impl. */
export function ed25519Verifier(impl: Ed25519Impl = 'auto'): Promise<VerifyFn> {
  if (impl === 'webcrypto') return Promise.resolve(webcrypto);
  if (impl === 'noble') return noble();
  autoPromise ??= detect();
  return autoPromise;
}

/** SHA-256 of data, with WebCrypto (present in every secure context). */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  if (!globalThis.crypto?.subtle) throw new Error('WebCrypto is not available: crypto.subtle needs a secure context (https, capacitor://localhost)');
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', buf(data)));
}

// WebCrypto's types take bytes over an ArrayBuffer only (not a SharedArrayBuffer).
const buf = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
