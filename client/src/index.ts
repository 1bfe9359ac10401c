// @cartona/deploy-client: verify deploy's signed manifests on the device and
// drive @capgo/capacitor-updater with them. See docs/client.md.

export {
  verifyACL,
  verifyLatest,
  verifyBuild,
  verifyBundle,
  verifyHistory,
  VerifyError,
  parsePublicKey,
  formatPublicKey,
  keyID,
  pae,
  uploader,
  TYPE_ACL,
  TYPE_BUILD,
  TYPE_LATEST,
  TYPE_HALT,
  MAX_ACL_SIZE,
  MAX_LATEST_SIZE,
  MAX_BUILD_SIZE,
  ALL_APPS,
  MAX_FALLBACKS,
} from './verify.js';
export type { Rule, ACL, User, Grant, Latest, Candidate, Settings, Link, Halt, BuildRef, Build, EnvelopeInput, Trust, Expect } from './verify.js';
export { cohort, inCohort, selectBuild, nativeFits, COHORT_BUCKETS } from './release.js';
export type { Selection, SelectReason } from './release.js';
export { checkFileManifest, readFileManifest, decodeStoredFileManifest, applyFilesPatch, verifyFile, capgoName, ENCODING_BROTLI, MAX_FILE_MANIFEST_SIZE } from './files.js';
export type { FileManifest, FileEntry } from './files.js';
export { MAX_INT } from './json.js';
export { downloadTakesManifest, zipChecksum, capgoManifest, downloadOptions } from './delta.js';
export type { ManifestEntry, DownloadOptions, FetchedFiles, BaseFiles } from './delta.js';
export type { Ed25519Impl } from './ed25519.js';
export { MemoryStorage, DeviceState } from './state.js';
export type { KeyValueStorage, RollbackState, Attempt, DownloadFailures, RememberedFiles } from './state.js';
export { LiveUpdate } from './live-update.js';
export type { LiveUpdateOptions, LiveUpdateEvent, LiveUpdateEventType, Updater, BundleInfo, AppStateHook } from './live-update.js';
