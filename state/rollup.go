package state

import (
	"slices"
	"strings"
	"time"
)

// What a backend stores besides raw events, so that stats never scan them:
// marks (one row per device, build and kind; the failures are marks) and
// hourly counts per build. A backend stores a batch of events, then the
// Marks of the events that were new, then the Deltas of both.

// Kinds of mark.
const (
	MarkSeen      = "seen"      // any event of the device for the build
	MarkCompleted = "completed" // a download_complete
	MarkFailed    = "failed"    // an update_fail: the build is not offered to the device again
	MarkInstalled = "installed" // a download_complete or the plugin's set: the build is on the device
	MarkBroken    = "broken"    // an Unhealthy action: counts against a rollout's candidate
	MarkCohort    = "cohort"    // an event with a Group: the device counts toward a candidate's health
)

// RetryActions are the failures after which the plugin deletes a bundle
// and downloads it again at the next check; a tracker bounds them per
// device and build.
var RetryActions = []string{"set_fail", "checksum_fail", "unzip_fail"}

// unhealthy are the failures that count against a candidate, with crashes
// (actions starting with crashPrefix).
var unhealthy = append([]string{ActionUpdateFail}, RetryActions...)

const crashPrefix = "app_crash"

// Unhealthy reports whether an action counts against a staged rollout's
// candidate: the bundle did not start, could not be set, checked or
// unzipped, or the app crashed on it.
func Unhealthy(action string) bool {
	return slices.Contains(unhealthy, action) || strings.HasPrefix(action, crashPrefix)
}

// UnhealthySQL is the SQL condition on the column action of Unhealthy.
// Actions are plain names (lowercase letters, digits, '_'), so they are
// written as literals.
var UnhealthySQL = "(action IN ('" + strings.Join(unhealthy, "', '") + "') OR action LIKE '" + crashPrefix + "%')"

// RetrySQL is the SQL condition on the column action of RetryActions.
var RetrySQL = "action IN ('" + strings.Join(RetryActions, "', '") + "')"

// Mark records that a device did something with a build, first in Hour.
type Mark struct {
	App, Version, Device, Kind string
	Hour                       int64  // milliseconds since the epoch, a whole hour
	Group                      string // of a cohort mark: Event.Group
}

// Delta is what a batch adds to the hourly counts of a build.
type Delta struct {
	App, Version string
	Hour         int64 // milliseconds since the epoch, a whole hour
	Number       int64 // the highest build number seen
	Counts
	Installs int64 // devices whose first install of the build this is
}

// HourOf is the start of t's hour in milliseconds since the epoch.
func HourOf(t time.Time) int64 { return t.UnixMilli() / 3_600_000 * 3_600_000 }

// Marks returns the distinct marks of events received in hour: one cohort
// mark per device and build, of the first event with a Group.
func Marks(stored []Event, hour int64) []Mark {
	seen := map[Mark]bool{}
	var out []Mark
	add := func(m Mark) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, e := range stored {
		m := Mark{App: e.App, Version: e.Version, Device: e.Device, Kind: MarkCohort, Hour: hour}
		if e.Group != "" && !seen[m] {
			seen[m] = true
			c := m
			c.Group = e.Group
			out = append(out, c)
		}
		m.Kind = MarkSeen
		add(m)
		switch e.Action {
		case ActionDownloadComplete:
			m.Kind = MarkCompleted
			add(m)
			m.Kind = MarkInstalled
			add(m)
		case "set":
			m.Kind = MarkInstalled
			add(m)
		case ActionUpdateFail:
			m.Kind = MarkFailed
			add(m)
		}
		if Unhealthy(e.Action) {
			m.Kind = MarkBroken
			add(m)
		}
	}
	return out
}

// Retried returns, once each, the app, version and device of the batch's
// RetryActions events, as failed marks in hour: those a backend makes if
// the device's stored retries reach the limit. Resent events count too, so
// that a resend completes what a failed commit began.
func Retried(evs []Event, hour int64) []Mark {
	var out []Mark
	for _, e := range evs {
		m := Mark{App: e.App, Version: e.Version, Device: e.Device, Kind: MarkFailed, Hour: hour}
		if slices.Contains(RetryActions, e.Action) && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Deltas sums newly stored events and newly stored marks per build.
func Deltas(stored []Event, newMarks []Mark, hour int64) []Delta {
	type build struct{ app, version string }
	idx := map[build]int{}
	var out []Delta
	get := func(app, version string) *Delta {
		k := build{app, version}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Delta{App: app, Version: version, Hour: hour})
		}
		return &out[i]
	}
	for _, e := range stored {
		d := get(e.App, e.Version)
		d.Number = max(d.Number, e.Number)
		switch CountOf(e.Action) {
		case CountCheck:
			d.Checks++
		case CountDownloadStarted:
			d.DownloadsStarted++
		case CountDownloadFailed:
			d.DownloadsFailed++
		case CountUpdateFailed:
			d.UpdatesFailed++
		}
	}
	for _, m := range newMarks {
		d := get(m.App, m.Version)
		switch m.Kind {
		case MarkSeen:
			d.Devices++
		case MarkCompleted:
			d.DownloadsCompleted++
		case MarkInstalled:
			d.Installs++
		}
	}
	return out
}

// Which of the Counts an event adds to, besides Devices (CountNone: none).
const (
	CountNone = iota
	CountCheck
	CountDownloadStarted
	CountDownloadFailed
	CountUpdateFailed
)

// CountOf returns which count an action adds to.
func CountOf(action string) int {
	switch action {
	case ActionCheck:
		return CountCheck
	case ActionDownloadStart:
		return CountDownloadStarted
	case ActionUpdateFail, "set_fail":
		return CountUpdateFailed
	case "download_fail", "checksum_fail", "checksum_required", "unzip_fail", "decrypt_fail",
		"windows_path_fail", "canonical_path_fail", "low_mem_fail", "insufficient_disk_space":
		return CountDownloadFailed
	}
	if strings.HasPrefix(action, "download_manifest_") && strings.HasSuffix(action, "fail") {
		return CountDownloadFailed
	}
	return CountNone
}
