// @cartona/deploy-client: verify deploy's signed manifests on the device and
// drive @capgo/capacitor-updater with them. See docs/client.md.

export {
  verifyACL,
  verifyLatest,
  verifyBuild,
  verifyBundle,
  VerifyError,
  parsePublicKey,
  formatPublicKey,
  keyID,
  pae,
  uploader,
  TYPE_ACL,
  TYPE_BUILD,
  TYPE_LATEST,
  MAX_ACL_SIZE,
  MAX_LATEST_SIZE,
  MAX_BUILD_SIZE,
  ALL_APPS,
} from './verify.js';
export type { Rule, ACL, User, Grant, Latest, BuildRef, Build, EnvelopeInput, Trust, Expect } from './verify.js';
export type { Ed25519Impl } from './ed25519.js';
export { MemoryStorage, DeviceState } from './state.js';
export type { KeyValueStorage, RollbackState, Attempt, DownloadFailures } from './state.js';
export { LiveUpdate, compareVersions } from './live-update.js';
export type { LiveUpdateOptions, LiveUpdateEvent, LiveUpdateEventType, Updater, BundleInfo, AppStateHook } from './live-update.js';
