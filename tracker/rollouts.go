package tracker

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/manifest"
)

// RolloutHealth is a staged rollout of a channel as `deploy stats` shows
// it: its candidate, its state, and the devices that got the candidate
// and reported a failure of it.
type RolloutHealth struct {
	Channel string `json:"channel"`
	Rollout string `json:"rollout"`
	BuildID string `json:"build_id"`
	Version string `json:"version"`
	Percent int64  `json:"percent"`
	// State is running, paused or halted (dashboard.Running, ...).
	State string `json:"state"`
	// Reason says why it is halted: the tracker's counts.
	Reason   string     `json:"reason,omitempty"`
	HaltedAt *time.Time `json:"halted_at,omitempty"`
	// Devices got the candidate (in its cohort, with events for it) and
	// Failed are those of them that reported a failure, as the halt
	// weighs them: a client network's devices as at most
	// HaltPolicy.PerNetwork, with their failure rate (state.RolloutCounts;
	// Failed is rounded). Reported counts each network in full.
	Devices  int64 `json:"devices"`
	Failed   int64 `json:"failed"`
	Reported int64 `json:"reported"`
	// InStore says whether the halt is in the store too, where devices
	// reading latest.json from the CDN see it.
	InStore bool `json:"in_store,omitempty"`

	candidate manifest.Candidate
}

// rolloutOf returns the staged rollout of a verified release and its
// state, or nil if it has none. A halt read from the store keeps its
// candidate in the pointer it wraps.
func (s *Server) rolloutOf(rel *release) *RolloutHealth {
	c, reason, inStore := rel.pointer.Candidate, "", false
	if h := rel.pointer.Halted; h != nil {
		var inner manifest.Latest
		if json.Unmarshal(h.Pointer.Payload, &inner) != nil || inner.Candidate == nil {
			return nil
		}
		c, reason, inStore = inner.Candidate, h.Reason, true
	}
	if c == nil {
		return nil
	}
	ro := &RolloutHealth{Channel: rel.channel, Rollout: c.Rollout, BuildID: c.Build.ID, Version: c.Build.Version,
		Percent: c.Percent, State: dashboard.Running, Reason: reason, InStore: inStore, candidate: *c}
	if c.Paused {
		ro.State = dashboard.Paused
	}
	if r, ok := s.health.halt(rel.app, rel.channel, c.Rollout); ok {
		at := dashboard.APITime(r.At)
		ro.Reason, ro.HaltedAt = r.Reason, &at
	}
	if inStore || ro.HaltedAt != nil {
		ro.State = dashboard.Halted
	}
	return ro
}

// rollouts lists the staged rollouts of app's channels with their counts.
func (s *Server) rollouts(ctx context.Context, app string) ([]RolloutHealth, error) {
	names, err := s.src.channelNames(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return nil, err
	}
	out := []RolloutHealth{}
	for _, name := range names[app] {
		rel, err := s.man.release(ctx, app, name)
		if err != nil {
			continue
		}
		if ro := s.rolloutOf(rel); ro != nil {
			c, err := s.state.Health(ctx, app, ro.Version, s.health.policy.PerNetwork)
			if err != nil {
				return nil, err
			}
			ro.Devices, ro.Failed, ro.Reported = c.Devices, int64(math.Round(c.Failed)), c.Reported
			out = append(out, *ro)
		}
	}
	return out, nil
}
