// Package state is what a tracker remembers: the events devices report,
// the builds each device failed to start, the highest ACL version and
// channel sequences it verified (floors), and halt decisions. [State] is the
// interface; state/sqlite (one machine, embedded) and state/postgres
// (several trackers on one database) implement it, and state/statetest is
// the conformance suite every backend passes.
package state

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Actions with a meaning to the tracker. Capgo actions are stored as the
// plugin sends them.
const (
	ActionCheck            = "check"             // GET /build/latest, a Capgo update request
	ActionDownloadStart    = "download_start"    // GET /build/download
	ActionDownloadComplete = "download_complete" // GET /build/download/complete
	ActionUpdateFail       = "update_fail"       // Capgo: the bundle did not call notifyAppReady
)

// Event is one thing a device reported. (App, Device, Action, Version, TS)
// identifies it: an event sent again is stored and counted once.
type Event struct {
	App           string
	Device        string
	Action        string
	Version       string
	TS            int64 // milliseconds since the epoch, as the device sent it
	Number        int64 // build number, 0 if the version names no known build
	OldVersion    string
	Platform      string
	PluginVersion string
	Source        string // "seed" or "capgo"
	// Group is the network (its /24 for IPv4, /64 for IPv6) of the client that sent the event
	// when its device is in the cohort of a staged rollout whose candidate
	// is Version, else "": the event then counts toward the candidate's
	// health (Health), under the first group it came from. It is not kept
	// in the raw event.
	Group string
}

// ACLFloor is the floor of the ACL version; channel floors are named
// app "/" channel, so they never collide with it.
const ACLFloor = "acl"

// ErrClosed is returned by every method of a State after Close.
var ErrClosed = errors.New("the tracker state is closed")

// ErrRefused is in the chain of an error of a database that refused the
// user or password it was given.
var ErrRefused = errors.New("the database refused the user or password")

// ErrNoDatabase is in the chain of an error of a database server that has
// no database of the name given.
var ErrNoDatabase = errors.New("the database does not exist")

// State is the tracker's memory. Methods are safe for concurrent use and
// take a context that bounds the wait. A method that writes returns nil only
// once the write is durable (committed, on disk) and visible to every
// tracker sharing the State; on error nothing is half-written: a batch of
// events is stored whole or not at all, and sending it again is safe.
// Errors other than ctx's and ErrClosed mean the backend cannot be reached
// or written right now; callers answer "try again later".
type State interface {
	// Record stores evs and returns once they are committed. Events stored
	// before (same identity) are ignored. Concurrent calls are committed
	// together (group commit).
	Record(ctx context.Context, evs ...Event) error
	// RecordCheck queues an update check without waiting for its commit.
	// Checks count at most once per app, device, version and minute (TS is
	// the minute) for each State; when the queue is full the check is
	// dropped: checks are the one kind of event acknowledged to nobody.
	// A check adds to the counts and marks the device seen, but is not
	// kept as a raw event: devices check often, and raw checks would be
	// most of what a tracker writes.
	RecordCheck(ev Event)
	// Flush returns once every event queued before it is committed.
	Flush(ctx context.Context) error

	// Failed reports whether device reported update_fail for version of
	// app, or Options.RetryLimit distinct RetryActions events: at once once
	// the event is acknowledged through this State, and within milliseconds
	// through the others on the same database (each keeps the failures in
	// memory and is told of new ones). Both are failed marks, which pruning
	// keeps.
	Failed(ctx context.Context, app, device, version string) (bool, error)

	// RaiseFloors raises the named floors to at least the given values,
	// never lowering one, and returns the stored values of those names
	// afterwards, which are higher than asked when another tracker raised
	// them further.
	RaiseFloors(ctx context.Context, floors map[string]int64) (map[string]int64, error)
	// Floors returns every stored floor by name.
	Floors(ctx context.Context) (map[string]int64, error)

	// Stats counts the events of each build of app, or of every app if
	// app is "", in no particular order.
	Stats(ctx context.Context, app string) ([]BuildCounts, error)
	// Hourly counts the events of app per build and hour of receipt, for
	// the hours in [from, to), in no particular order.
	Hourly(ctx context.Context, app string, from, to time.Time) ([]HourCounts, error)
	// Prune deletes raw events received before t and returns how many. The
	// counts of Stats and Hourly stay, and so do failures; an event sent
	// again after its raw row was pruned counts again.
	Prune(ctx context.Context, before time.Time) (int64, error)

	// Halt records that a rollout of a channel is halted. The first
	// decision for (app, channel, rollout) stays; recording it again
	// changes nothing. It returns the decision stored (At in milliseconds,
	// as Halts returns it) and whether this call stored it.
	Halt(ctx context.Context, h Halt) (stored Halt, first bool, err error)
	// Halts returns the halt decisions of app, oldest first.
	Halts(ctx context.Context, app string) ([]Halt, error)
	// Health counts, for a staged rollout's candidate, the devices whose
	// events for version of app came with a Group, and those of them that
	// reported a failure of it (an Unhealthy action), weighing each group
	// as at most perGroup devices (no bound if perGroup <= 0): see
	// RolloutCounts. Pruning raw events keeps both.
	Health(ctx context.Context, app, version string, perGroup int64) (RolloutCounts, error)

	// SetChannel stores the channel a device chose for app (the plugin's
	// setChannel); "" forgets the choice.
	SetChannel(ctx context.Context, app, device, channel string) error
	// Channels calls fn for each channel a device chose.
	Channels(ctx context.Context, fn func(app, device, channel string)) error

	// Ping reports whether the backend answers, for readiness checks.
	Ping(ctx context.Context) error
	// Close commits what is queued and releases the backend.
	Close() error
}

// Counts are what devices did with one build, as the stats show it.
type Counts struct {
	// Checks counts update checks that offered the build, at most one per
	// device and minute through each tracker.
	Checks             int64 `json:"checks"`
	DownloadsStarted   int64 `json:"downloads_started"`   // download_start events
	DownloadsCompleted int64 `json:"downloads_completed"` // devices with a download_complete
	DownloadsFailed    int64 `json:"downloads_failed"`    // download_fail, checksum_fail, unzip_fail, ...
	UpdatesFailed      int64 `json:"updates_failed"`      // update_fail, set_fail: rolled back on the device
	Devices            int64 `json:"devices"`             // distinct devices with any event for the build
}

// BuildCounts are the counts of one version of an app. Number is the
// highest build number its events named, 0 if none.
type BuildCounts struct {
	App     string
	Version string
	Number  int64
	Counts
}

// HourCounts are the counts of one version of an app in one hour. Devices
// and DownloadsCompleted count the devices first seen (or first completing
// a download) in that hour, so their sums over hours are the totals;
// Installs counts the devices that first installed the build in that hour
// (a download_complete, or the plugin's set), the adoption curve.
type HourCounts struct {
	BuildCounts
	Installs int64
	Hour     time.Time
}

// RolloutCounts are what a staged rollout's halt is decided on. Devices
// count in the group (client network) their first counted event came
// from; a group with n devices, f of them failed, adds min(n, perGroup)
// to Devices and f·min(n, perGroup)/n to Failed: its failure rate, with
// the weight of at most perGroup devices. So one network cannot outweigh
// the others with device ids it makes up, however many it sends, and the
// failure rate of a fleet behind few networks (a carrier NAT) is still
// its own. With every group under perGroup, Devices and Failed are plain
// counts.
type RolloutCounts struct {
	Reported int64   // devices counted, each group in full
	Devices  int64   // devices counted, each group weighing at most perGroup
	Failed   float64 // failed devices, each group's weighed as its devices are
}

// Halt is the decision to stop a staged rollout of a channel.
type Halt struct {
	App     string    `json:"app"`
	Channel string    `json:"channel"`
	Rollout string    `json:"rollout"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// Options are what every backend takes besides where its data lives.
type Options struct {
	Log zerolog.Logger
	// Now returns the current time, the receipt time of events; time.Now
	// if nil.
	Now func() time.Time
	// OnCommit, if set, is told the size, duration and outcome of each
	// commit of a batch of events (for metrics).
	OnCommit func(events int, took time.Duration, err error)
	// RetryLimit is how many distinct RetryActions events (each action and
	// timestamp once) of a device for a build make it failed, as an
	// update_fail does; DefaultRetryLimit if zero. A State applies it to
	// the events stored before it opened, too.
	RetryLimit int
}

// DefaultRetryLimit is the RetryLimit of Options that set none.
const DefaultRetryLimit = 3

// Retries returns o.RetryLimit, or DefaultRetryLimit if it is not set.
func (o Options) Retries() int {
	if o.RetryLimit <= 0 {
		return DefaultRetryLimit
	}
	return o.RetryLimit
}

// Clock returns o.Now, or time.Now if it is nil.
func (o Options) Clock() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

// Scanner is a row of a query result, as database/sql and pgx return it.
type Scanner interface{ Scan(dest ...any) error }

// HourlyColumns select a row of the hourly table for ScanCounts, and
// StatsSums the totals of the rows of a build.
const (
	HourlyColumns = `app, version, number, checks, downloads_started, downloads_completed, downloads_failed, updates_failed, devices`
	// HourlyColumnsAt is the order of the columns that Delta fills.
	HourlyColumnsAt = `app, version, hour, number, checks, downloads_started, downloads_completed, downloads_failed, updates_failed, devices, installs`
	StatsSums       = `app, version, MAX(number), SUM(checks), SUM(downloads_started), SUM(downloads_completed),
	SUM(downloads_failed), SUM(updates_failed), SUM(devices)`
)

// ScanCounts reads a row of HourlyColumns or StatsSums, then extra.
func ScanCounts(row Scanner, extra ...any) (BuildCounts, error) {
	var b BuildCounts
	err := row.Scan(append([]any{&b.App, &b.Version, &b.Number, &b.Checks, &b.DownloadsStarted, &b.DownloadsCompleted,
		&b.DownloadsFailed, &b.UpdatesFailed, &b.Devices}, extra...)...)
	return b, err
}

// Covered returns the stored floors of the names in want and whether none
// of them is below want, in which case raising them would change nothing.
func Covered(stored, want map[string]int64) (map[string]int64, bool) {
	out := make(map[string]int64, len(want))
	ok := true
	for name, v := range want {
		out[name] = stored[name]
		ok = ok && stored[name] >= v
	}
	return out, ok
}

// ScanHour reads a row of HourlyColumns, installs and hour.
func ScanHour(row Scanner) (HourCounts, error) {
	var h HourCounts
	var ms int64
	b, err := ScanCounts(row, &h.Installs, &ms)
	h.BuildCounts, h.Hour = b, time.UnixMilli(ms).UTC()
	return h, err
}
