package tracker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/manifest"
)

// dashboardSource shows the tracker's verified manifests and its events on
// the dashboard. Channels come from the store's latest.json objects, each
// verified as devices get it; histories from the channels' history entries
// (dashhistory.go); events from the tracker state.
type dashboardSource struct {
	s       *Server
	lists   *ttlCache[map[string][]string] // channel names by app, per listed prefix
	history *ttlCache[[]dashboard.Entry]   // by app "/" channel
}

var _ dashboard.Source = (*dashboardSource)(nil)

// newDashboardSource caches store listings as long as manifests.
func newDashboardSource(s *Server) *dashboardSource {
	return &dashboardSource{s: s, lists: newTTLCache[map[string][]string](s.cfg.CacheTTL, maxCacheKeys, s.now, nil),
		history: newTTLCache[[]dashboard.Entry](s.cfg.CacheTTL, maxCacheKeys, s.now, nil)}
}

// Apps lists the apps that have a channel in the store.
func (d *dashboardSource) Apps(ctx context.Context) ([]string, error) {
	channels, err := d.channelNames(ctx, manifest.AppsPrefix)
	if err != nil {
		return nil, err
	}
	apps := make([]string, 0, len(channels))
	for app := range channels {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	return apps, nil
}

// channelNames lists the channels with a latest.json under prefix, by app.
func (d *dashboardSource) channelNames(ctx context.Context, prefix string) (map[string][]string, error) {
	return d.lists.get(ctx, prefix, func() (map[string][]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d.s.man.timeout)
		defer cancel()
		infos, err := d.s.cfg.Store.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		out := map[string][]string{}
		for _, in := range infos {
			if app, channel, ok := manifest.ParseLatestKey(in.Key); ok {
				out[app] = append(out[app], channel)
			}
		}
		return out, nil
	})
}

// Channels verifies the latest.json of each channel of app. A channel whose
// pointer is not served says why in Problem.
func (d *dashboardSource) Channels(ctx context.Context, app string) ([]dashboard.Channel, error) {
	names, err := d.channelNames(ctx, manifest.ChannelsPrefix(app))
	if err != nil {
		return nil, err
	}
	if len(names[app]) == 0 {
		return nil, fmt.Errorf("app %q has no published channel: %w", app, dashboard.ErrNotFound)
	}
	var out []dashboard.Channel
	for _, name := range names[app] {
		c := dashboard.Channel{Name: name}
		rel, err := d.s.man.release(ctx, app, name)
		if err != nil {
			c.Problem = problem(err)
		} else {
			b := dashboardBuild(rel.pointer.Build)
			c.Build, c.Sequence, c.Issued, c.Expires = &b, rel.pointer.Sequence, rel.pointer.Issued, rel.pointer.Expires
			c.Rollout = d.rollout(rel)
		}
		out = append(out, c)
	}
	return out, nil
}

// rollout is the staged rollout of a verified release and its state, or
// nil.
func (d *dashboardSource) rollout(rel *release) *dashboard.Rollout {
	ro := d.s.rolloutOf(rel)
	if ro == nil {
		return nil
	}
	return &dashboard.Rollout{ID: ro.Rollout, Candidate: dashboardBuild(ro.candidate.Build), Percent: float64(ro.Percent), State: ro.State, Why: ro.Reason}
}

// problem is what a user may read of why a channel is not served.
func problem(err error) string {
	var ae *appError
	if errors.As(err, &ae) && ae.Code != codeInternal {
		return ae.Message
	}
	return "the tracker cannot read it right now"
}

// Counters are the stats of /api/stats, by build.
func (d *dashboardSource) Counters(ctx context.Context, app string) ([]dashboard.Counters, error) {
	stats, err := d.s.stats(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Counters, len(stats))
	for i, b := range stats {
		out[i] = dashboard.Counters{BuildID: b.BuildID, Number: b.Number, Version: b.Version, Checks: b.Checks,
			Downloads: b.DownloadsStarted, Installs: b.DownloadsCompleted, Failures: b.DownloadsFailed,
			Rollbacks: b.UpdatesFailed, Devices: b.Devices}
	}
	return out, nil
}

// Adoption counts first installs per bucket from the hourly counts of the
// tracker state.
func (d *dashboardSource) Adoption(ctx context.Context, app string, bucket time.Duration) ([]dashboard.Installs, error) {
	counts, err := d.s.adoption(ctx, app, bucket)
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Installs, len(counts))
	for i, c := range counts {
		n := c.number
		if b := d.s.man.byVersion(app, c.version); b != nil {
			n = max(n, b.ref.Number)
		}
		out[i] = dashboard.Installs{Start: c.start, Number: n, Version: c.version, Devices: c.devices}
		if n > 0 {
			out[i].BuildID = manifest.BuildID(app, n)
		}
	}
	return out, nil
}

func dashboardBuild(b manifest.BuildRef) dashboard.Build {
	return dashboard.Build{ID: b.ID, Number: b.Number, Version: b.Version, SHA256: b.SHA256, Size: b.Size, MinNative: b.MinNative, MaxNative: b.MaxNative}
}
