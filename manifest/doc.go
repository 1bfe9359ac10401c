// Package manifest defines what deploy signs and how it is verified: Ed25519
// keys, DSSE envelopes, and their payloads (the root-signed [ACL], the
// [Build] record of each upload, and the [Latest] pointer of each channel).
//
// # Trust
//
// Root keys, pinned by trackers and devices, sign only the ACL. User keys,
// listed in the ACL with per-app grants, sign build records and latest.json.
// [Trust.VerifyLatest] accepts a latest.json only if the ACL verifies against
// the pinned roots and is not older than one seen before, a signer holds
// can_upload for the app, app and channel are the ones asked for, the
// sequence is not lower than one seen before, and it has not expired.
// [VerifyBundle] then checks the downloaded bytes.
//
// Failures are [*Error] values whose [Rule] says which check failed. The
// vectors under testdata/vectors pin each rule for this package and for the
// TypeScript verifier in client/. docs/format.md describes the formats.
package manifest
