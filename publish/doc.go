// Package publish writes builds and channel pointers to a store, signed so
// that the verifiers in manifest and client/ accept them.
//
// # Uploading
//
// A [Publisher] holds the store, the uploader's key and the pinned root
// keys. [Publisher.Upload] takes a [Request] and runs five steps, each its
// own function: check the grant in the ACL, [Zip] the web build into a
// [Bundle], upload the bundle and each file the store lacks with the
// build's file manifest, write the build record, and point the channel at
// it. Every field is checked first ([Request.Check], and both
// envelopes are signed and measured), so a refused upload writes nothing.
// The [Result] says what happened as an [Outcome]: [Published],
// [Unchanged], [Renewed] or [Superseded].
//
// # Pruning
//
// [Publisher.Prune] removes what no channel, recent history entry or
// newest build references. An upload, and a release change that points a
// channel at a build it did not name, writes a lease naming the objects it
// is about to reference and waits for any prune that doomed one of them;
// a prune writes the list of what it is about to remove and spares what a
// lease names (lease.go says why neither loses a race).
//
// # Changing a channel
//
// Every change of a channel's latest.json goes through one loop,
// Publisher.updatePointer, given an [Edit]: a function from the channel's
// current verified pointer to the next one. The loop owns the rest: the
// compare-and-swap and its retries, the sequence (one more each change,
// refused with a [SequenceError] rather than passing
// [manifest.MaxSequence]), signing, checking the result as a device would,
// and writing it create-only to the channel's history before latest.json.
// Promote, rollback and staged rollouts are edits on that loop.
//
// # Releasing
//
// The release edits are pure functions, table-tested: [Promote],
// [Rollout] (start, raise, complete at 100), [SetPercent], [Pause],
// [Rollback] (its target chosen from the history by [RollbackTarget]),
// [SetSelfAssign]; [Fallbacks] picks the older builds a pointer keeps for
// native versions its stable build does not fit; [Expect] refuses a
// channel that changed since a decision was made on it; [Noted] adds the
// notes and a fresh expiry. [Publisher.Change] runs one on the loop after
// checking the grant, or, in a dry run, signs what it would write and
// writes nothing. Refusals of what the user asked are [ReleaseError]s
// that say what to do instead. [ReadHistory] reads a channel's history,
// every entry verified, and follows the chain of links from latest.json
// back, reporting a gap. A build's version is unique within its app for
// good: an upload claims it create-only ([VersionClaim]) before writing
// anything else, a prune never removes a claim, and other content under a
// taken version is a [VersionTakenError]; an upload that names none gets
// [DefaultVersion].
//
// # The ACL
//
// [InitACL] writes the first ACL, [ReadACL] reads and verifies it, and
// [UpdateACL] changes it through the same retry helper. [ListBuilds] lists
// an app's verified build records, skipping a bad one with a warning.
//
// # Checking files
//
// [CheckFiles] checks the file manifests of builds and every file object
// they name as a device that downloads files would; a failure is a
// [FileError] naming the build, the file and the rule.
//
// Keys of the store come from manifest (layout.go); the store itself is
// package store.
package publish
