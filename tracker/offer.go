package tracker

import (
	"context"
	"fmt"
	"time"

	"github.com/cartona/deploy/manifest"
)

// Reasons of an offer beyond manifest.Select's.
const (
	// offerBlocked: the build Select picked failed on this device (one
	// update_fail, or the state's RetryLimit set_fail, checksum_fail or
	// unzip_fail reports) and no other build fits.
	offerBlocked = "blocked"
)

// offer is what the tracker gives one device on a channel: the build
// (*manifest.Latest).Select picks, minus a candidate the tracker halted and
// a build that failed on the device.
type offer struct {
	build  *manifest.BuildRef // nil: nothing is offered
	reason string             // a manifest.Select* reason or offerBlocked
	detail string             // why nothing is offered
}

// offerFor selects the build for a device with the given native version
// (empty when the device does not say) under a verified release. Both
// device APIs answer with it, so they never disagree.
func (s *Server) offerFor(ctx context.Context, rel *release, native, device string) offer {
	l := s.health.effective(rel.pointer)
	sel := l.Select(native, device)
	if sel.Build == nil {
		return offer{reason: sel.Reason, detail: sel.Detail}
	}
	if !s.failedOn(ctx, rel.app, device, sel.Build.Version) {
		return offer{build: sel.Build, reason: sel.Reason}
	}
	failed := *sel.Build
	if sel.Reason == manifest.SelectCandidate {
		// The candidate failed here: the device goes back to what it
		// would run without the rollout.
		rest := *l
		rest.Candidate = nil
		if sel = rest.Select(native, device); sel.Build != nil && !s.failedOn(ctx, rel.app, device, sel.Build.Version) {
			return offer{build: sel.Build, reason: sel.Reason}
		}
	}
	return offer{reason: offerBlocked, detail: fmt.Sprintf("build %s (version %s) failed on this device; it is not offered again, and a newer build will be", failed.ID, failed.Version)}
}

// failedLookupTimeout bounds how long an update check waits to learn
// whether the build failed on the device: a lookup is a few milliseconds,
// and a database that answers nothing must not hold every check.
const failedLookupTimeout = time.Second

// failedOn reports whether device may no longer get version of app: it
// reported update_fail for it, or too many failures to set, check or
// unzip it (state.State.Failed). If that cannot be read the build is offered: a device refuses a
// bundle that does not verify, and the plugin rolls back one that fails.
func (s *Server) failedOn(ctx context.Context, app, device, version string) bool {
	ctx, cancel := context.WithTimeout(ctx, failedLookupTimeout)
	defer cancel()
	failed, err := s.state.Failed(ctx, app, device, version)
	if err == nil {
		if l, ok := s.failedLookups.OK(s.now()); ok {
			s.log.Info().Int("failed_lookups", l.Count).Str("failing_for", l.For.Round(time.Second).String()).Msg("device failure lookups succeed again")
		}
		return failed
	}
	switch l, ok := s.failedLookups.Fail(s.now(), 1); {
	case !ok:
	case l.First:
		s.log.Error().Err(err).Msg("device failure lookup failed; offering builds without it")
	default:
		s.log.Error().Err(err).Int("failed_lookups", l.Count).Str("failing_for", l.For.Round(time.Second).String()).Msg("device failure lookups still failing")
	}
	return failed
}
