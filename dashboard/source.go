package dashboard

import (
	"context"
	"errors"
	"time"
)

// Source is where the dashboard reads what it shows. The tracker implements
// it from its verified manifests and its event store.
//
// Error contract: an app or channel the source does not know is reported
// with an error that wraps [ErrNotFound], whose message is shown to the
// user; any other error is logged and shown as "cannot be read right now".
type Source interface {
	// Apps returns the names of the apps that have at least one channel,
	// sorted.
	Apps(ctx context.Context) ([]string, error)

	// Channels returns the channels of app, sorted by name.
	Channels(ctx context.Context, app string) ([]Channel, error)

	// History returns the pointers a channel had, newest first. Each entry
	// says whether its signature verified.
	History(ctx context.Context, app, channel string) ([]Entry, error)

	// Counters returns what devices did with each build of app.
	Counters(ctx context.Context, app string) ([]Counters, error)

	// Adoption returns, per bucket of the given length (an hour or a day,
	// buckets starting at multiples of it since the Unix epoch, in UTC) and
	// per build, how many devices installed the build for the first time
	// in that bucket. Buckets without installs are left out.
	Adoption(ctx context.Context, app string, bucket time.Duration) ([]Installs, error)
}

// ErrNotFound is wrapped by the errors of a Source for an unknown app or
// channel.
var ErrNotFound = errors.New("not found")

// Build is a build as a channel names it.
type Build struct {
	ID        string `json:"id"`
	Number    int64  `json:"number"`
	Version   string `json:"version"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size,omitempty"`
	MinNative string `json:"min_native,omitempty"`
	MaxNative string `json:"max_native,omitempty"`
}

// Rollout states.
const (
	Running = "running" // the candidate reaches Percent of the devices
	Paused  = "paused"  // held at Percent
	Halted  = "halted"  // stopped: devices get the stable build again
)

// Rollout is a staged rollout of a candidate build on a channel: the
// channel's stable build serves the other devices.
type Rollout struct {
	ID        string  `json:"id"`
	Candidate Build   `json:"candidate"`
	Percent   float64 `json:"percent"`
	State     string  `json:"state"`         // Running, Paused or Halted
	Why       string  `json:"why,omitempty"` // the reason given for a pause or a halt
}

// Channel is the signed pointer a channel serves now.
type Channel struct {
	Name string `json:"name"`
	// Build is the stable build; nil when the pointer is not served
	// (Problem says why).
	Build    *Build    `json:"build"`
	Rollout  *Rollout  `json:"rollout"` // nil: no staged rollout
	Sequence int64     `json:"sequence,omitempty"`
	Issued   time.Time `json:"issued,omitzero"`
	Expires  time.Time `json:"expires,omitzero"` // devices refuse the pointer from then on
	Problem  string    `json:"problem,omitempty"`
}

// Changes of a channel, as its pointers show them.
const (
	ChangeFirst    = "first release" // the channel's first pointer
	ChangeNewer    = "newer build"   // a newer stable build (uploaded or promoted: the pointer does not say), for every device
	ChangeRollout  = "rollout"       // a candidate started or its percentage changed
	ChangePause    = "pause"         // the candidate held
	ChangeResume   = "resume"        // the candidate offered again
	ChangeRollback = "rollback"      // an older stable build, or the candidate dropped
	ChangeHalt     = "halt"          // the candidate stopped by a halt key
	ChangeSettings = "settings"      // the same builds, other settings or notes
)

// Entry is one pointer in a channel's history: who moved the channel, when,
// to what. An entry that does not verify carries only its Sequence and
// Problem: nothing it claims is shown.
type Entry struct {
	Sequence int64     `json:"sequence"`
	Issued   time.Time `json:"issued,omitzero"`
	By       string    `json:"by,omitempty"` // the ACL user whose key signed it
	Build    *Build    `json:"build"`        // nil when it does not verify
	Rollout  *Rollout  `json:"rollout"`
	// Change is what the pointer changed from the one before it (a
	// constant above), "" when that one is unknown or does not verify.
	Change string `json:"change,omitempty"`
	// Dropped is the candidate the change took away (a rollback of a
	// staged rollout), if any.
	Dropped  *Build `json:"dropped,omitempty"`
	Notes    string `json:"notes,omitempty"`
	Verified bool   `json:"verified"` // its signature verifies against the pinned root
	Problem  string `json:"problem,omitempty"`
}

// Counters are the events of one build (one version of an app). Events of a
// version that names no known build have an empty BuildID.
type Counters struct {
	BuildID   string `json:"build_id,omitempty"`
	Number    int64  `json:"number,omitempty"`
	Version   string `json:"version"`
	Checks    int64  `json:"checks"`    // update checks that offered the build
	Downloads int64  `json:"downloads"` // downloads started
	Installs  int64  `json:"installs"`  // downloads completed, once per device
	Failures  int64  `json:"failures"`  // downloads that failed
	Rollbacks int64  `json:"rollbacks"` // devices that rolled it back: it did not start
	Devices   int64  `json:"devices"`   // distinct devices with any event for the build
}

// Installs is how many devices installed a build for the first time in
// the bucket starting at Start.
type Installs struct {
	Start   time.Time
	BuildID string
	Number  int64
	Version string
	Devices int64
}
