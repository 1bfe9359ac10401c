package tracker

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
)

// HaltPolicy says when the tracker halts a staged rollout. Zero fields
// take the defaults in brackets. (How often a device may fail a build
// before it is no longer offered is state.Options.RetryLimit.)
type HaltPolicy struct {
	// Percent: a candidate is halted once more than this share of the
	// devices that got it reported a failure [DefaultHaltPercent].
	// Negative: never.
	Percent float64
	// MinDevices: ...and at least this many devices got it, each network
	// counted in full [DefaultHaltMinDevices].
	MinDevices int64
	// PerNetwork: in the failure rate, the devices of one client network
	// (the /24 of an IPv4 address, the /64 of an IPv6 one) that got the
	// candidate weigh as at most this many, with their own failure rate
	// (state.RolloutCounts), so that device ids made up in one network
	// cannot hide the failures of the others [DefaultHaltPerNetwork]. It
	// does not grow with MinDevices: a large fleet's higher threshold gives
	// made-up ids no more weight.
	PerNetwork int64
	// Key signs the halt the tracker writes to the store as the channel's
	// latest.json, so that devices reading the CDN stop too. The ACL must
	// grant its user can_halt, and nothing else. Nil: the tracker stops
	// offering the candidate itself, but writes nothing.
	Key ed25519.PrivateKey
}

// The HaltPolicy of a tracker that sets none.
const (
	DefaultHaltPercent    = 5
	DefaultHaltMinDevices = 20
	DefaultHaltPerNetwork = 50
)

func (p HaltPolicy) withDefaults() HaltPolicy {
	if p.Percent == 0 {
		p.Percent = DefaultHaltPercent
	}
	if p.MinDevices <= 0 {
		p.MinDevices = DefaultHaltMinDevices
	}
	if p.PerNetwork <= 0 {
		p.PerNetwork = DefaultHaltPerNetwork
	}
	return p
}

func failKey(app, device, version string) string { return app + "\x00" + device + "\x00" + version }

// watch is a candidate in staged rollout on a channel.
type watch struct {
	app, channel string
	candidate    manifest.Candidate
}

// health watches each candidate the tracker serves and halts it when too
// many of its devices fail.
type health struct {
	s      *Server
	policy HaltPolicy

	mu        sync.RWMutex          // read on every offer
	halted    map[string]state.Halt // by rolloutKey
	watched   map[string]watch      // by app "/" channel
	rewriting map[string]bool       // rollouts whose halt is being written to the store
	writes    sync.WaitGroup        // those writes; Close waits for them

	evals flights // one evaluation of a rollout at a time, shared by waiting callers

	// pending are the rollouts (by rolloutKey) over the failure rate with
	// fewer than MinDevices devices when last evaluated: each device that
	// comes may bring them to the threshold. Guarded by mu; anyPending
	// spares every request the lock while there are none.
	pending    map[string]bool
	anyPending atomic.Bool
}

func rolloutKey(app, channel, rollout string) string { return app + "/" + channel + "/" + rollout }

// newHealth starts with no candidate watched.
func newHealth(s *Server, policy HaltPolicy) *health {
	return &health{s: s, policy: policy.withDefaults(), halted: map[string]state.Halt{}, watched: map[string]watch{},
		rewriting: map[string]bool{}, evals: newFlights(), pending: map[string]bool{}}
}

// watchRelease remembers the candidate of a verified release, if any, and
// reads the halt decisions of its app, which other trackers sharing the
// state may have taken. It runs once per cache refresh of the release.
func (h *health) watchRelease(rel *release) {
	c := rel.pointer.Candidate
	var halts []state.Halt
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var err error
		if halts, err = h.s.state.Halts(ctx, rel.app); err != nil {
			h.s.log.Error().Err(err).Str("app", rel.app).Msg("halt decisions not read")
		}
		cancel()
	}
	key := rel.app + "/" + rel.channel
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range halts {
		h.halted[rolloutKey(r.App, r.Channel, r.Rollout)] = r
	}
	for k := range h.pending { // rollouts the channel no longer has
		if strings.HasPrefix(k, key+"/") && (c == nil || k != rolloutKey(rel.app, rel.channel, c.Rollout)) {
			delete(h.pending, k)
		}
	}
	h.anyPending.Store(len(h.pending) > 0)
	if c == nil {
		delete(h.watched, key)
		return
	}
	h.watched[key] = watch{app: rel.app, channel: rel.channel, candidate: *c}
	h.s.metrics.rollout(rel.app, rel.channel)
	if r, ok := h.halted[rolloutKey(rel.app, rel.channel, c.Rollout)]; ok {
		// An uploader published a new pointer that keeps the halted rollout
		// as candidate: the tracker does not offer it, and devices reading
		// the CDN must not get it either. A new rollout id starts afresh.
		h.writeHalt(r)
	}
}

// writeHalt writes the halt of a rollout to the store, where devices
// reading latest.json from the CDN see it, in the background (one write
// of a rollout at a time), so that no device's request waits for the
// store and the CDN. The caller holds h.mu.
func (h *health) writeHalt(r state.Halt) {
	k := rolloutKey(r.App, r.Channel, r.Rollout)
	if h.policy.Key == nil || h.rewriting[k] || h.s.closed.Load() {
		return
	}
	h.rewriting[k] = true
	h.writes.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.s.writeHalt(ctx, r, h.policy.Key); err != nil {
			h.s.log.Error().Err(err).Str("rollout", r.Rollout).Msg("halt not written to the store: devices that read latest.json from the CDN keep getting the candidate")
		}
		h.mu.Lock()
		delete(h.rewriting, k)
		h.mu.Unlock()
	})
}

// halt returns the halt decision of a rollout, if any.
func (h *health) halt(app, channel, rollout string) (state.Halt, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	r, ok := h.halted[rolloutKey(app, channel, rollout)]
	return r, ok
}

// effective returns the pointer without its candidate when the tracker
// halted that rollout, else the pointer itself.
func (h *health) effective(l *manifest.Latest) *manifest.Latest {
	if l.Candidate == nil {
		return l
	}
	if _, ok := h.halt(l.App, l.Channel, l.Candidate.Rollout); !ok {
		return l
	}
	cp := *l
	cp.Candidate = nil
	return &cp
}

// observe takes events once they are stored: it re-evaluates the
// candidates that failure reports name, and the pending ones any event
// names. It returns once any halt they cause is decided, so the next
// check sees it.
func (h *health) observe(ctx context.Context, evs []state.Event) {
	var check []watch
	h.mu.Lock()
	for _, ev := range evs {
		for _, w := range h.watched {
			if w.app == ev.App && w.candidate.Build.Version == ev.Version && !containsWatch(check, w) &&
				(state.Unhealthy(ev.Action) || h.pending[rolloutKey(w.app, w.channel, w.candidate.Rollout)]) {
				check = append(check, w)
			}
		}
	}
	h.mu.Unlock()
	for _, w := range check {
		h.evals.do(ctx, rolloutKey(w.app, w.channel, w.candidate.Rollout), func() { h.evaluate(w) })
	}
}

// sweepEvery is how often a tracker re-evaluates every candidate it
// serves. Failures and devices may reach trackers sharing a state
// separately, so that none of them sees an event that crosses the
// threshold; the sweep halts such a candidate within this time.
var sweepEvery = 2 * time.Second

// sweep re-evaluates every watched candidate every sweepEvery until ctx
// ends.
func (h *health) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.RLock()
		ws := slices.Collect(maps.Values(h.watched))
		h.mu.RUnlock()
		for _, w := range ws {
			h.evals.do(ctx, rolloutKey(w.app, w.channel, w.candidate.Rollout), func() { h.evaluate(w) })
		}
	}
}

// seen takes a device's update check or download: while a rollout is
// pending, a new device may bring it to the threshold.
func (h *health) seen(ctx context.Context, ev state.Event) {
	if h.anyPending.Load() {
		h.observe(ctx, []state.Event{ev})
	}
}

// weighed writes a weighed count of devices: whole, or with one decimal.
func weighed(n float64) string {
	if n == math.Trunc(n) {
		return strconv.FormatFloat(n, 'f', 0, 64)
	}
	return strconv.FormatFloat(n, 'f', 1, 64)
}

// tag sets the Group of the events whose device is in the cohort of a
// candidate the tracker watches with the event's version: the network of
// r's client, so that the event counts toward the candidate's health
// (state.State.Health). Other events, such as those of device ids that no
// cohort holds, do not count.
func (h *health) tag(r *http.Request, evs []state.Event) {
	group := ""
	h.mu.RLock()
	defer h.mu.RUnlock()
	for i := range evs {
		ev := &evs[i]
		for _, w := range h.watched {
			if w.app == ev.App && w.candidate.Build.Version == ev.Version && manifest.InCohort(w.app, w.channel, &w.candidate, ev.Device) {
				if group == "" {
					group = addrGroup(h.s.clientAddr(r))
				}
				ev.Group = group
				break
			}
		}
	}
}

// tagged is ev, tagged.
func (h *health) tagged(r *http.Request, ev state.Event) state.Event {
	evs := []state.Event{ev}
	h.tag(r, evs)
	return evs[0]
}

// addrGroup is the network a client address counts in: its /24 for IPv4,
// its /64 for IPv6 (where one subscriber often has a /64), else the
// address as it is.
func addrGroup(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap().WithZone("")
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.String()
}

func containsWatch(ws []watch, w watch) bool {
	for _, x := range ws {
		if x.app == w.app && x.channel == w.channel && x.candidate.Rollout == w.candidate.Rollout {
			return true
		}
	}
	return false
}

// evaluate counts a candidate's devices and failures and halts it past
// the policy's threshold.
func (h *health) evaluate(w watch) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if h.policy.Percent < 0 {
		return
	}
	if _, ok := h.halt(w.app, w.channel, w.candidate.Rollout); ok {
		h.setPending(rolloutKey(w.app, w.channel, w.candidate.Rollout), false)
		return
	}
	c, err := h.s.state.Health(ctx, w.app, w.candidate.Build.Version, h.policy.PerNetwork)
	if err != nil {
		h.s.log.Error().Err(err).Str("app", w.app).Str("rollout", w.candidate.Rollout).Msg("candidate health not read")
		return
	}
	// The threshold counts every device reported, so that one network (a
	// fleet behind a carrier NAT) still reaches it; the rate weighs them.
	over := c.Failed*100 > h.policy.Percent*float64(c.Devices)
	h.setPending(rolloutKey(w.app, w.channel, w.candidate.Rollout), over && c.Reported < h.policy.MinDevices)
	if !over || c.Reported < h.policy.MinDevices {
		return
	}
	reason := fmt.Sprintf("%s of %d devices reported a failure of build %s (version %s), over %g%%",
		weighed(c.Failed), c.Devices, w.candidate.Build.ID, w.candidate.Build.Version, h.policy.Percent)
	if c.Reported > c.Devices {
		reason += fmt.Sprintf(" (%d devices reported, networks with more than %d weighed as %d)", c.Reported, h.policy.PerNetwork, h.policy.PerNetwork)
	}
	h.decide(ctx, state.Halt{App: w.app, Channel: w.channel, Rollout: w.candidate.Rollout, Reason: reason, At: h.s.now().UTC()})
}

func (h *health) setPending(k string, pending bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pending {
		h.pending[k] = true
	} else {
		delete(h.pending, k)
	}
	h.anyPending.Store(len(h.pending) > 0)
}

// decide halts a rollout: at once in memory, then durably, then in the
// store (writeHalt). When another tracker sharing the state recorded the
// rollout's halt first, this tracker takes that decision (its time and
// reason) and does not count it in rollout_halts_total: each halt counts
// once, on the tracker that recorded it (or on each that decided it but
// could not record it).
func (h *health) decide(ctx context.Context, r state.Halt) {
	k := rolloutKey(r.App, r.Channel, r.Rollout)
	h.mu.Lock()
	h.halted[k] = r
	h.mu.Unlock()
	log := h.s.log.Warn().Str("app", r.App).Str("channel", r.Channel).Str("rollout", r.Rollout)
	log.Msg("halting the staged rollout: " + r.Reason)
	stored, first, err := h.s.state.Halt(ctx, r)
	if err != nil {
		h.s.log.Error().Err(err).Str("rollout", r.Rollout).Msg("halt not stored: it holds until the tracker restarts")
		h.s.metrics.Halted(r.App, r.Channel)
	} else {
		if first {
			h.s.metrics.Halted(r.App, r.Channel)
		} else {
			h.s.log.Info().Str("rollout", r.Rollout).Time("at", stored.At).Msg("the rollout's halt was recorded first by another tracker: " + stored.Reason)
		}
		h.mu.Lock()
		h.halted[k] = stored
		h.mu.Unlock()
		r = stored
	}
	if h.policy.Key == nil {
		h.s.log.Warn().Str("rollout", r.Rollout).Msg("no halt key (halt_key_file): devices that read latest.json from the CDN keep getting the candidate; " +
			"publish a pointer without it, or give the tracker a key with can_halt")
		return
	}
	h.mu.Lock()
	h.writeHalt(r)
	h.mu.Unlock()
}

// flights runs a function per key at most once at a time. A caller that
// finds it running waits for the next run, which starts after the current
// one ends and serves every caller that queued meanwhile: each caller is
// served by a run that started after its call, and a burst of callers costs
// two runs, not one each.
type flights struct {
	mu      sync.Mutex
	running map[string]chan struct{} // closed when the run ends
	queued  map[string]chan struct{} // the next run's, closed when it ends
}

func newFlights() flights {
	return flights{running: map[string]chan struct{}{}, queued: map[string]chan struct{}{}}
}

// do runs fn for key, or waits for a run of key that starts after this
// call; it stops waiting when ctx ends.
func (f *flights) do(ctx context.Context, key string, fn func()) {
	f.mu.Lock()
	if _, busy := f.running[key]; busy {
		q, ok := f.queued[key]
		if !ok {
			q = make(chan struct{})
			f.queued[key] = q
		}
		f.mu.Unlock()
		select {
		case <-q:
		case <-ctx.Done():
		}
		return
	}
	f.running[key] = make(chan struct{})
	f.mu.Unlock()
	for {
		fn()
		f.mu.Lock()
		close(f.running[key])
		q, ok := f.queued[key]
		delete(f.queued, key)
		if !ok {
			delete(f.running, key)
			f.mu.Unlock()
			return
		}
		f.running[key] = q
		f.mu.Unlock()
	}
}
