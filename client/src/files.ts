// File manifests (delta updates), as manifest/files.go: a build's files by
// content, checked against the digest that the signed build reference names.

import { concat } from './body.js';
import { hex, sha256 } from './ed25519.js';
import * as j from './json.js';
import { decodePayload, MAX_FILE_MANIFEST_SIZE, VerifyError, type BuildRef } from './verify.js';

/** The encoding of a file stored Brotli-compressed (a Capgo file_name ending in ".br"). */
export const ENCODING_BROTLI = 'br';

export { MAX_FILE_MANIFEST_SIZE };

export interface FileManifest {
  app: string;
  files: FileEntry[]; // sorted by name, names unique
}

export interface FileEntry {
  name: string;
  sha256: string; // of the content
  size: number; // of the content
  encoding: string; // "" or "br"
}

const decoder = j.struct<FileManifest>({
  app: j.str,
  files: j.slice(j.struct<FileEntry>({ name: j.str, sha256: j.str, size: j.int, encoding: j.opt(j.str, () => '') })),
});

/**
 * Checks a downloaded file manifest against the verified build reference and returns it.
 * @throws VerifyError files_mismatch or malformed
 */
export async function checkFileManifest(ref: BuildRef, app: string, data: Uint8Array): Promise<FileManifest> {
  if (ref.files_sha256 === '') throw new VerifyError('files_mismatch', `build ${ref.id} has no file manifest`);
  const got = hex(await sha256(data));
  if (data.length !== ref.files_size || got !== ref.files_sha256) {
    throw new VerifyError('files_mismatch', `file manifest has ${data.length} bytes and sha256 ${got}, build ${ref.id} says ${ref.files_size} and ${ref.files_sha256}`);
  }
  const m = decodePayload('file manifest', data, decoder);
  const problem = checkManifest(m, app);
  if (problem) throw new VerifyError('malformed', `file manifest: ${problem}`);
  return m;
}

/** Whether stored bytes are a file manifest's gzip form: they start with 1f 8b, which no JSON text does. */
export const isGzipStored = (stored: Uint8Array) => stored.length >= 2 && stored[0] === 0x1f && stored[1] === 0x8b;

/** Whether this platform can read stored: it is not a gzip form, or DecompressionStream decodes one. */
export const canReadStored = (stored: Uint8Array) => !isGzipStored(stored) || typeof DecompressionStream === 'function';

/**
 * The bytes of a stored file manifest, as manifest.DecodeStoredFileManifest:
 * stored itself, or the data of its gzip form (header flags 0), decoded by
 * the platform's DecompressionStream reading at most limit + 1 bytes. The
 * platform's decoder may accept a second member or zero bytes after the
 * first, which Go refuses; what it makes must still pass checkFileManifest.
 * @throws VerifyError files_mismatch when the gzip form does not decode or decodes to more than limit bytes
 * @throws Error when the platform has no DecompressionStream (see canReadStored)
 */
export async function decodeStoredFileManifest(stored: Uint8Array, limit: number): Promise<Uint8Array> {
  if (!isGzipStored(stored)) return stored;
  if (!canReadStored(stored)) throw new Error('this platform has no DecompressionStream to read a gzip-compressed file manifest');
  const fail = (detail: string) => new VerifyError('files_mismatch', `stored file manifest: ${detail}`);
  // FLG 0, as in Go: gzip readers differ on optional header fields and reserved flags.
  if (stored.length < 10 || stored[3] !== 0) throw fail('its gzip header has flags set (a name, comment, extra field or header CRC); deploy writes none');
  // Fed 1 KiB at a time, so that a small stream that decodes to much more
  // than limit (a gzip bomb) is stopped before it is all in memory.
  let fed = 0;
  const input = new ReadableStream<BufferSource>({
    pull(c) {
      if (fed >= stored.length) return c.close();
      c.enqueue(stored.slice(fed, fed + 1024));
      fed += 1024;
    },
  });
  const reader = input.pipeThrough(new DecompressionStream('gzip')).getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > limit) {
        reader.cancel().catch(() => {});
        throw fail(`decodes to more than ${limit} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    throw e instanceof VerifyError ? e : fail('its gzip stream does not decode');
  }
  // The platform's decoder may ignore bytes after the member; a member's
  // last four bytes are its data's length.
  if (new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getUint32(stored.length - 4, true) !== n % 2 ** 32) {
    throw fail('bytes follow its gzip member');
  }
  return concat(chunks);
}

/**
 * Reads a stored file manifest, as manifest.ReadFileManifest: decodes it
 * up to the size the verified build reference names, checks it with
 * checkFileManifest, and returns it with its bytes.
 * @throws VerifyError files_mismatch or malformed
 */
export async function readFileManifest(ref: BuildRef, app: string, stored: Uint8Array): Promise<{ manifest: FileManifest; data: Uint8Array }> {
  if (ref.files_sha256 === '') throw new VerifyError('files_mismatch', `build ${ref.id} has no file manifest`);
  const data = await decodeStoredFileManifest(stored, ref.files_size);
  return { manifest: await checkFileManifest(ref, app, data), data };
}

/** A patch from one file manifest (the base) to another, as manifest/patch.go. */
interface FilesPatch {
  app: string;
  from: string; // sha256 of the base's bytes
  to: string; // sha256 of the manifest it makes
  ops: PatchOp[];
}

/** Appends data (its UTF-8 bytes), then length bytes of the base from offset. */
interface PatchOp {
  data: string;
  offset: number;
  length: number;
}

const patchDecoder = j.struct<FilesPatch>({
  app: j.str,
  from: j.str,
  to: j.str,
  ops: j.slice(j.struct<PatchOp>({ data: j.str, offset: j.int, length: j.int })),
});

/**
 * Applies a downloaded patch to base, the bytes of a file manifest checked
 * before, and checks what it makes as checkFileManifest does; returns the
 * manifest and its bytes. A patch that is not a FilesPatch, names another
 * app, or copies from outside base is malformed; one whose from or to is
 * not base's or ref's digest, or that makes other bytes, is files_mismatch.
 * @throws VerifyError files_mismatch or malformed
 */
export async function applyFilesPatch(ref: BuildRef, app: string, base: Uint8Array, patch: Uint8Array): Promise<{ manifest: FileManifest; data: Uint8Array }> {
  if (ref.files_sha256 === '') throw new VerifyError('files_mismatch', `build ${ref.id} has no file manifest`);
  if (patch.length > MAX_FILE_MANIFEST_SIZE) throw new VerifyError('malformed', `file manifest patch: ${patch.length} bytes, over ${MAX_FILE_MANIFEST_SIZE}`);
  const p = decodePayload('file manifest patch', patch, patchDecoder);
  if (p.app !== app) throw new VerifyError('malformed', `file manifest patch: for app ${JSON.stringify(p.app)}, want ${JSON.stringify(app)}`);
  const from = hex(await sha256(base));
  if (p.from !== from || p.to !== ref.files_sha256) {
    throw new VerifyError('files_mismatch', `file manifest patch from ${p.from} to ${p.to}, want from ${from} to ${ref.files_sha256}`);
  }
  const pieces: Uint8Array[] = [];
  let made = 0;
  for (const [i, op] of p.ops.entries()) {
    if (op.offset > base.length || op.length > base.length - op.offset) {
      throw new VerifyError('malformed', `file manifest patch: op ${i} copies ${op.length} bytes at ${op.offset} of a ${base.length}-byte base`);
    }
    const data = utf8.encode(op.data);
    if (made + data.length + op.length > ref.files_size) {
      throw new VerifyError('files_mismatch', `file manifest patch makes more than the ${ref.files_size} bytes of the build's file manifest`);
    }
    pieces.push(data, base.subarray(op.offset, op.offset + op.length));
    made += data.length + op.length;
  }
  const out = concat(pieces);
  return { manifest: await checkFileManifest(ref, app, out), data: out };
}

function checkManifest(m: FileManifest, app: string): string {
  if (m.app !== app) return `for app ${JSON.stringify(m.app)}, want ${JSON.stringify(app)}`;
  for (const [i, f] of m.files.entries()) {
    const n = JSON.stringify(f.name);
    if (!validFileName(f.name)) return `file name ${n} is not a safe relative path`;
    if (i > 0 && compareBytes(f.name, m.files[i - 1].name) <= 0) return `file ${n} is not after ${JSON.stringify(m.files[i - 1].name)}: names must be unique and sorted`;
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) return `file ${n}: sha256 is not 64 lowercase hex digits`;
    if (f.encoding !== '' && f.encoding !== ENCODING_BROTLI) return `file ${n}: unknown encoding ${JSON.stringify(f.encoding)}`;
    if (f.name.endsWith('.br') && f.encoding !== ENCODING_BROTLI) return `file ${n} ends in .br: the Capgo plugin would decompress it, so it must be stored with encoding br`;
  }
  return '';
}

const utf8 = new TextEncoder();

// Names are compared as UTF-8 bytes, as Go compares strings.
function compareBytes(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function validFileName(name: string): boolean {
  if (name === '' || /[:\\\u0000-\u001f\u007f]/.test(name)) return false;
  return name.split('/').every((e) => e !== '' && e !== '.' && e !== '..');
}

/** The file_name of an entry in a Capgo manifest: ".br" appended when stored Brotli-compressed. */
export const capgoName = (f: FileEntry) => (f.encoding === ENCODING_BROTLI ? f.name + '.br' : f.name);

/**
 * Checks one file's content (after undoing its encoding) against its entry.
 * @throws VerifyError files_mismatch
 */
export async function verifyFile(f: FileEntry, data: Uint8Array): Promise<void> {
  const got = hex(await sha256(data));
  if (data.length !== f.size || got !== f.sha256) {
    throw new VerifyError('files_mismatch', `file ${f.name} has ${data.length} bytes and sha256 ${got}, manifest says ${f.size} and ${f.sha256}`);
  }
}
