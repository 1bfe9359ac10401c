// Delta downloads: what CapacitorUpdater.download() gets for a verified
// build, by the installed plugin's version. The version rules are read from
// @capgo/capacitor-updater's source (docs/format.md, "What each plugin
// version gets").

import { applyFilesPatch, canReadStored, capgoName, readFileManifest, type FileManifest } from './files.js';
import { VerifyError, type BuildRef } from './verify.js';

/** One entry of the manifest CapacitorUpdater.download() takes. */
export interface ManifestEntry {
  file_name: string;
  file_hash: string;
  download_url: string;
}

/** The options of CapacitorUpdater.download() that LiveUpdate passes. */
export interface DownloadOptions {
  url: string;
  version: string;
  checksum?: string;
  manifest?: ManifestEntry[];
}

/** A build's file manifest as stored (maybe gzip-compressed), or a patch to it, as fetched (unchecked), and the URL its file objects are under (ending in "/"). */
export interface FetchedFiles {
  data: Uint8Array;
  filesURL: string;
  /** data is a patch from the base manifest asked for, not the manifest. */
  patch: boolean;
}

/** The bytes of a file manifest checked before, and their SHA-256: the base of a patch. */
export interface BaseFiles {
  data: Uint8Array;
  sha256: string;
}

type Version = [number, number, number];

function parse(v?: string): Version | undefined {
  const m = /^v?(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+].*)?$/.exec(v?.trim() ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

const before = (v: Version, w: Version) => v[0] !== w[0] ? v[0] < w[0] : v[1] !== w[1] ? v[1] < w[1] : v[2] < w[2];

/**
 * Whether download() of this plugin version takes a manifest whose
 * file_name ending in ".br" means Brotli: 5.10.0 and later 5.x, 6.14.28
 * and later 6.x, 7.4.0 and later 7.x, and 8.x on. Unknown: no.
 */
export function downloadTakesManifest(pluginVersion?: string): boolean {
  const v = parse(pluginVersion);
  if (!v || v[0] < 5) return false;
  const from: Record<number, Version> = { 5: [5, 10, 0], 6: [6, 14, 28], 7: [7, 4, 0] };
  return !from[v[0]] || !before(v, from[v[0]]);
}

/**
 * The checksum download() of this plugin version compares for a zip: the
 * CRC32 before 5.10.0, 6.14.28 and 7.0.2 (none if the build has none);
 * none for 7.0.2 to 7.0.29, which on Android fail any checksum of a plain
 * zip; the SHA-256 otherwise, and when the version is unknown.
 */
export function zipChecksum(ref: BuildRef, pluginVersion?: string): string | undefined {
  const v = parse(pluginVersion);
  if (!v) return ref.sha256;
  if (before(v, [5, 10, 0]) || (v[0] === 6 && before(v, [6, 14, 28])) || (v[0] === 7 && before(v, [7, 0, 2]))) return ref.crc32 || undefined;
  if (v[0] === 7 && before(v, [7, 0, 30])) return undefined;
  return ref.sha256;
}

/** The Capgo manifest of a checked file manifest whose objects are under filesURL. */
export function capgoManifest(m: FileManifest, filesURL: string): ManifestEntry[] {
  return m.files.map((f) => ({
    file_name: capgoName(f),
    file_hash: f.sha256,
    download_url: `${filesURL}${f.sha256}${f.encoding ? '.' + f.encoding : ''}`,
  }));
}

/**
 * What to pass to download() for a verified build: its file manifest,
 * read (readFileManifest) and checked against the signed digest first,
 * when the plugin takes one and fetchFiles finds it; else the zip with the
 * checksum the plugin compares. With a base of another digest, the patch
 * from it is fetched and applied first; without one, or when it fails
 * (patchRefused says why), the whole manifest is fetched. A manifest that
 * fails its check is not used: refused says why, and the zip is downloaded
 * (the plugin checks it against the signed checksum), as it is, with
 * nothing refused, for a gzip form this platform cannot decode. manifest
 * is the (decoded) bytes of the manifest used. With a manifest no checksum
 * is passed: the plugin checks each file's hash, and iOS compares a manual
 * manifest download with none.
 */
export async function downloadOptions(
  ref: BuildRef,
  app: string,
  zipURL: string,
  pluginVersion: string | undefined,
  fetchFiles: (ref: BuildRef, from?: string) => Promise<FetchedFiles | undefined>,
  base?: BaseFiles,
): Promise<{ options: DownloadOptions; manifest?: Uint8Array; refused?: VerifyError; patchRefused?: VerifyError }> {
  const checksum = zipChecksum(ref, pluginVersion);
  const zip: DownloadOptions = { url: zipURL, version: ref.version, ...(checksum ? { checksum } : {}) };
  if (!ref.files_sha256 || !downloadTakesManifest(pluginVersion)) return { options: zip };
  const use = (m: FileManifest, filesURL: string): DownloadOptions => ({ url: zipURL, version: ref.version, manifest: capgoManifest(m, filesURL) });
  let got = base && base.sha256 !== ref.files_sha256 ? await fetchFiles(ref, base.sha256) : undefined;
  let patchRefused: VerifyError | undefined;
  if (got?.patch) {
    try {
      const { manifest, data } = await applyFilesPatch(ref, app, base!.data, got.data);
      return { options: use(manifest, got.filesURL), manifest: data };
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      patchRefused = e;
      got = undefined;
    }
  }
  got ??= await fetchFiles(ref);
  if (!got || !canReadStored(got.data)) return { options: zip, patchRefused };
  try {
    const { manifest, data } = await readFileManifest(ref, app, got.data);
    return { options: use(manifest, got.filesURL), manifest: data, patchRefused };
  } catch (e) {
    if (e instanceof VerifyError) return { options: zip, refused: e, patchRefused };
    throw e;
  }
}
