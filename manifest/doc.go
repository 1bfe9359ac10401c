// Package manifest defines what deploy signs and how it is verified: Ed25519
// keys, DSSE envelopes, and their payloads (the root-signed [ACL], the
// [Build] record of each upload, the [Latest] pointer of each channel, the
// [Halt] that stops a candidate, and the unsigned [FileManifest] that a
// build reference names by digest).
//
// # Trust
//
// Root keys, pinned by trackers and devices, sign only the ACL. User keys,
// listed in the ACL with per-app grants, sign build records and pointers
// (can_upload) or halts (can_halt). [Trust.VerifyLatest] accepts a
// latest.json only if the ACL verifies against the pinned roots and is not
// older than one seen before, a signer holds can_upload for the app, app
// and channel are the ones asked for, the sequence is not lower than one
// seen before, and it has not expired; a halt is accepted as the pointer it
// wraps minus its candidate. [ACL.VerifyHistory] checks a channel's history
// chain. [VerifyBundle], [CheckFileManifest] and [VerifyFile] then check
// downloaded bytes.
//
// # Releases
//
// [Latest.Select] picks the build a device runs (candidate by [Cohort],
// stable, or a fallback that fits its native version, see [NativeFits]).
//
// Every document is decoded strictly (duplicate keys, null, keys in another
// case, integers over [MaxInt] and times not in one written form are
// refused), so that any verifier written from docs/format.md agrees.
// Failures are [*Error] values whose [Rule] says which check failed. The
// vectors in testdata/vectors.json pin each rule for this package and for
// the TypeScript verifier in client/.
package manifest
