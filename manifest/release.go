package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CohortBuckets is how many buckets [Cohort] spreads devices over: a
// candidate at p percent goes to buckets below p*100.
const CohortBuckets = 10000

// cohortDomain separates cohort hashes from every other use of SHA-256.
const cohortDomain = "deploy-cohort-v1"

// Cohort returns the bucket (0 to 9999) of a device in a rollout:
// SHA-256 over "deploy-cohort-v1" followed by app, channel, rollout and
// device, each as a 4-byte big-endian length and its UTF-8 bytes; the first
// 8 bytes of the digest as a big-endian unsigned integer, modulo 10000.
// The device ID has its ASCII letters lowercased first, as the tracker
// takes device IDs. The bucket depends on nothing else, so raising a
// rollout's percentage only adds devices.
func Cohort(app, channel, rollout, device string) int64 {
	device = asciiLower(device)
	h := sha256.New()
	h.Write([]byte(cohortDomain))
	for _, s := range []string{app, channel, rollout, device} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		h.Write([]byte(s))
	}
	sum := h.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]) % CohortBuckets)
}

// InCohort reports whether a device gets a candidate of the given rollout
// and percentage.
func InCohort(app, channel string, c *Candidate, device string) bool {
	return Cohort(app, channel, c.Rollout, device) < c.Percent*100
}

// Reasons of a [Selection].
const (
	SelectCandidate = "candidate"           // the device is in the rollout's cohort
	SelectStable    = "stable"              // the pointer's build
	SelectFallback  = "fallback"            // a fallback build, for an older native version
	SelectNone      = "no_compatible_build" // no build fits the device's native version
)

// Selection is the build a device should run, and why.
type Selection struct {
	Build  *BuildRef // nil when Reason is SelectNone
	Reason string
	Detail string // for SelectNone: what the device should do
}

// Select returns the build that a device with the given native version
// and device id should run under a verified pointer: the candidate if the
// rollout is not paused, the device is in its cohort and its native version
// fits; else the first of the stable build and the fallbacks that fits.
func (l *Latest) Select(native, device string) Selection {
	if c := l.Candidate; c != nil && !c.Paused && InCohort(l.App, l.Channel, c, device) && NativeFits(c.Build, native) {
		return Selection{Build: &c.Build, Reason: SelectCandidate}
	}
	if NativeFits(l.Build, native) {
		return Selection{Build: &l.Build, Reason: SelectStable}
	}
	for i := range l.Fallbacks {
		if NativeFits(l.Fallbacks[i], native) {
			return Selection{Build: &l.Fallbacks[i], Reason: SelectFallback}
		}
	}
	return Selection{Reason: SelectNone, Detail: fmt.Sprintf("no build of channel %s runs on native version %q; update the app from its store", l.Channel, native)}
}

var nativeRE = regexp.MustCompile(`^([0-9]{1,9}(?:\.[0-9]{1,9})*)([-+][^\n]*)?$`)

// NativeFits reports whether a build runs on a device's native version
// (docs/format.md, "Native versions"): min_native <= native <= max_native,
// comparing dotted numbers, a missing number being 0. A native version with
// a pre-release suffix ("-beta.1") is just below its numbers; a "+" suffix is
// ignored. A native version that is not of this form fits only builds
// without bounds.
func NativeFits(b BuildRef, native string) bool {
	if b.MinNative == "" && b.MaxNative == "" {
		return true
	}
	m := nativeRE.FindStringSubmatch(native)
	if m == nil {
		return false
	}
	pre := strings.HasPrefix(m[2], "-")
	cmp := func(bound string) int {
		c := compareNumeric(m[1], bound)
		if c == 0 && pre {
			return -1
		}
		return c
	}
	return (b.MinNative == "" || cmp(b.MinNative) >= 0) && (b.MaxNative == "" || cmp(b.MaxNative) <= 0)
}

// compareNumeric compares two dotted numbers of at most 9 digits each.
func compareNumeric(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		x, y := numberAt(as, i), numberAt(bs, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func numberAt(parts []string, i int) int64 {
	if i >= len(parts) {
		return 0
	}
	n, _ := strconv.ParseInt(parts[i], 10, 64)
	return n
}
