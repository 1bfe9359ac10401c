// Delta downloads: what CapacitorUpdater.download() gets for a verified
// build, by the installed plugin's version. The version rules are read from
// @capgo/capacitor-updater's source (docs/format.md, "What each plugin
// version gets").

import { capgoName, checkFileManifest, type FileManifest } from './files.js';
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

/** A build's file manifest as fetched (unchecked), and the URL its file objects are under (ending in "/"). */
export interface FetchedFiles {
  data: Uint8Array;
  filesURL: string;
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
 * checked against the signed digest first, when the plugin takes one and
 * fetchFiles finds it; else the zip with the checksum the plugin compares.
 * A manifest that fails its check is not used: refused says why, and the
 * zip is downloaded (the plugin checks it against the signed checksum).
 * With a manifest no checksum is passed: the plugin checks each file's
 * hash, and iOS compares a manual manifest download with none.
 */
export async function downloadOptions(
  ref: BuildRef,
  app: string,
  zipURL: string,
  pluginVersion: string | undefined,
  fetchFiles: (ref: BuildRef) => Promise<FetchedFiles | undefined>,
): Promise<{ options: DownloadOptions; refused?: VerifyError }> {
  const checksum = zipChecksum(ref, pluginVersion);
  const zip: DownloadOptions = { url: zipURL, version: ref.version, ...(checksum ? { checksum } : {}) };
  if (!ref.files_sha256 || !downloadTakesManifest(pluginVersion)) return { options: zip };
  const got = await fetchFiles(ref);
  if (!got) return { options: zip };
  try {
    const m = await checkFileManifest(ref, app, got.data);
    return { options: { url: zipURL, version: ref.version, manifest: capgoManifest(m, got.filesURL) } };
  } catch (e) {
    if (e instanceof VerifyError) return { options: zip, refused: e };
    throw e;
  }
}
