// Ed25519 signature checks: WebCrypto where the platform has Ed25519 (Node 20,
// Safari 17, Chrome 137 and the WebViews built on them), else @noble/curves,
// loaded only when needed.

/** Which implementation checks signatures. "auto" prefers WebCrypto. */
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
  // equation: the encoding of [S]B - [k]A must be R's bytes.
  noblePromise ??= import('@noble/curves/ed25519.js').then(({ ed25519 }) => async (pub, msg, sig) => {
    try {
      if (sig.length !== 64) return false;
      const s = littleEndian(sig.subarray(32));
      if (s >= L) return false;
      const A = ed25519.Point.fromBytes(pub, false);
      const input = new Uint8Array(64 + msg.length);
      input.set(sig.subarray(0, 32));
      input.set(pub, 32);
      input.set(msg, 64);
      const k = littleEndian(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-512', buf(input)))) % L;
      const R = ed25519.Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k)).toBytes();
      return R.every((x, i) => x === sig[i]);
    } catch {
      return false;
    }
  });
  return noblePromise;
}

let autoPromise: Promise<VerifyFn> | undefined;

// Probes WebCrypto once with a known-good signature (RFC 8032, test 1).
async function detect(): Promise<VerifyFn> {
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
  const pub = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  const sig = hex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  );
  try {
    if (globalThis.crypto?.subtle && (await webcrypto(pub, new Uint8Array(0), sig))) return webcrypto;
  } catch {
    // no Ed25519 in this WebCrypto
  }
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
