package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/store"
)

// maxCacheKeys bounds each cache of store reads; keys come from requests.
const maxCacheKeys = 10000

// floorReadTimeout bounds the read of the floors at a cache refresh that
// has none to raise, or after the database failed.
const floorReadTimeout = 2 * time.Second

// release is a verified latest.json of one channel, ready to answer with.
type release struct {
	app, channel string
	// pointer is the verified (effective) pointer: which builds a device
	// may get is (*manifest.Latest).Select's answer. acl and data are what
	// was verified.
	pointer *manifest.Latest
	acl     *manifest.ACL
	data    []byte
	// seedHeads (by build number, one per build of the pointer) and
	// seedTail frame the /build/latest answer around its one per-request
	// part, the download URL.
	seedHeads map[int64][]byte
	seedTail  []byte
}

// buildInfo is a build that a verified manifest named.
type buildInfo struct {
	app string
	ref manifest.BuildRef
}

// manifests reads latest.json, build records and acl.json from the store,
// verifies them against the pinned roots and caches the results briefly.
// It keeps what verification must never forget: the highest ACL version and
// per-channel sequence seen (so a store rolled back is refused), stored in
// the database so a restart does not forget them either, and every build a
// verified manifest named (so a device can still download a build it was
// offered just before a new publish).
type manifests struct {
	store   store.Store
	trust   manifest.Trust
	now     func() time.Time
	log     zerolog.Logger
	timeout time.Duration // of each store read
	// floorTimeout bounds a use of db that devices should not wait for
	// (floorReadTimeout).
	floorTimeout time.Duration
	db           state.State // keeps maxACL and maxSeq across restarts and trackers
	metrics      *Metrics

	// onRelease, if set, is told of each release verified.
	onRelease func(*release)

	acl     *ttlCache[[]byte]
	latest  *ttlCache[*release]
	records *ttlCache[*buildInfo]

	mu       sync.RWMutex
	maxACL   int64
	maxSeq   map[string]int64      // app "/" channel
	recorded map[string]int64      // the floors known to be in db, by name
	failing  atomic.Bool           // the last raise could not use db
	builds   map[string]*buildInfo // by build ID
	versions map[string]*buildInfo // by app "/" version: the highest number
}

// newManifests starts from the floors stored in db.
func newManifests(st store.Store, trust manifest.Trust, ttl time.Duration, now func() time.Time, log zerolog.Logger, db state.State, floors map[string]int64, metrics *Metrics) *manifests {
	m := &manifests{
		store:        st,
		trust:        trust,
		now:          now,
		log:          log,
		timeout:      15 * time.Second,
		floorTimeout: floorReadTimeout,
		db:           db,
		metrics:      metrics,
		acl:          newTTLCache[[]byte](ttl, 1, now, metrics.cacheLookups("acl")),
		latest:       newTTLCache[*release](ttl, maxCacheKeys, now, metrics.cacheLookups("latest")),
		records:      newTTLCache[*buildInfo](ttl, maxCacheKeys, now, metrics.cacheLookups("build")),
		maxSeq:       map[string]int64{},
		recorded:     map[string]int64{},
		builds:       map[string]*buildInfo{},
		versions:     map[string]*buildInfo{},
	}
	for name, v := range floors {
		m.recorded[name] = v
		if name == state.ACLFloor {
			m.maxACL = v
		} else {
			m.maxSeq[name] = v
		}
	}
	return m
}

// release returns the verified current build of a channel. Errors are
// *appError: not_found for a channel without latest.json, not_servable for
// a manifest that fails verification, unavailable for a store that cannot
// be read.
func (m *manifests) release(ctx context.Context, app, channel string) (*release, error) {
	return m.latest.get(ctx, app+"/"+channel, func() (*release, error) { return m.fetchRelease(app, channel) })
}

// build returns a build by ID: one a verified latest.json named, or else
// one whose build record verifies. Errors are *appError.
func (m *manifests) build(ctx context.Context, id string) (*buildInfo, error) {
	m.mu.RLock()
	b := m.builds[id]
	m.mu.RUnlock()
	if b != nil {
		return b, nil
	}
	app, n, err := parseBuildID(id)
	if err != nil {
		return nil, err
	}
	return m.records.get(ctx, id, func() (*buildInfo, error) { return m.fetchBuild(app, n) })
}

// byVersion returns the highest-numbered known build of app with version.
func (m *manifests) byVersion(app, version string) *buildInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.versions[app+"/"+version]
}

func (m *manifests) fetchRelease(app, channel string) (*release, error) {
	aclData, err := m.aclData()
	if err != nil {
		return nil, err
	}
	data, err := m.read(manifest.LatestKey(app, channel), manifest.MaxLatestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(codeNotFound, "no build is published on channel %q of app %q; check the app and channel names, or publish with `deploy upload`", channel, app)
	}
	if err != nil {
		return nil, err
	}
	key := app + "/" + channel
	m.mu.RLock()
	exp := manifest.Expect{App: app, Channel: channel, MinACLVersion: m.maxACL, MinSequence: m.maxSeq[key], Now: m.now()}
	m.mu.RUnlock()
	l, acl, err := m.trust.VerifyLatest(aclData, data, exp)
	if err != nil {
		return nil, m.refuse(err, kindLatest, "the manifest of channel %q of app %q", channel, app)
	}
	m.metrics.manifest(kindLatest, "")
	rel, err := newRelease(l, aclData, data)
	if err != nil {
		return nil, &appError{Code: codeInternal, Message: "encode release", Err: err}
	}
	rel.acl, rel.data = acl, data
	if err := m.raise(acl.Version, key, l.Sequence); err != nil {
		return nil, err
	}
	m.mu.Lock()
	for _, b := range pointerBuilds(l) {
		m.register(app, b)
	}
	m.mu.Unlock()
	if m.onRelease != nil {
		m.onRelease(rel)
	}
	return rel, nil
}

func (m *manifests) fetchBuild(app string, n int64) (*buildInfo, error) {
	b, acl, err := m.verifiedBuild(app, n)
	if err != nil {
		return nil, err
	}
	if err := m.raise(acl.Version, "", 0); err != nil {
		return nil, err
	}
	m.mu.Lock()
	info := m.register(app, b.BuildRef)
	m.mu.Unlock()
	return info, nil
}

// verifiedBuild reads the build record of app's build n and verifies it
// and the ACL. Errors are *appError.
func (m *manifests) verifiedBuild(app string, n int64) (*manifest.Build, *manifest.ACL, error) {
	acl, err := m.verifiedACL()
	if err != nil {
		return nil, nil, err
	}
	id := manifest.BuildID(app, n)
	data, err := m.read(manifest.BuildKey(app, n), manifest.MaxBuildSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errorf(codeNotFound, "unknown build id %q: use the id answered by /build/latest", id)
	}
	if err != nil {
		return nil, nil, err
	}
	b, err := manifest.VerifyBuild(acl, data, app)
	if err == nil && b.ID != id {
		err = &manifest.Error{Rule: manifest.RuleMalformed, Detail: fmt.Sprintf("build record %s names build %s", id, b.ID)}
	}
	if err != nil {
		return nil, nil, m.refuse(err, kindBuild, "the build record of %s", id)
	}
	m.metrics.manifest(kindBuild, "")
	return b, acl, nil
}

// verifiedACL reads and verifies acl.json, no older than one seen before.
// Errors are *appError.
func (m *manifests) verifiedACL() (*manifest.ACL, error) {
	data, err := m.aclData()
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	minACL := m.maxACL
	m.mu.RUnlock()
	acl, err := m.trust.VerifyACL(data, minACL)
	if err != nil {
		return nil, m.refuse(err, kindACL, "acl.json")
	}
	return acl, nil
}

// raise records a verified ACL version and, unless channel (app "/"
// channel) is "", sequence, before the manifest is served: in memory, where
// a lower one is refused from then on, and durably in the state, where a
// restarted tracker, and every other tracker sharing the state, reads it.
// The state answers the floors they raised (it only reads when none
// rises): a manifest below them is refused as a rollback.
//
// A state that cannot be used right now does not stop the manifest from
// being served. A floor that was recorded before (read at start or
// answered by an earlier raise) needs nothing from the state; only what
// other trackers raised meanwhile is not learnt until it answers again. A
// floor above what is recorded is kept in memory and written again at the
// next cache refresh; the manifest is served meanwhile. Refusing it would
// keep devices on the previous pointer for as long as the database is
// down, even when the new one is a publisher's rollback or halt, and what
// the durable floor adds to the one in memory matters only to a tracker
// started again, or to another tracker: one that cannot reach the database
// does not start, and one that can writes the floor as soon as it verifies
// the pointer. Only a pointer replayed into the store before that escapes
// the floor.
func (m *manifests) raise(aclVersion int64, channel string, seq int64) error {
	up := map[string]int64{state.ACLFloor: aclVersion}
	m.mu.Lock()
	m.maxACL = max(m.maxACL, aclVersion)
	rising := aclVersion > m.recorded[state.ACLFloor]
	if channel != "" {
		up[channel] = seq
		m.maxSeq[channel] = max(m.maxSeq[channel], seq)
		rising = rising || seq > m.recorded[channel]
	}
	m.mu.Unlock()
	timeout := m.timeout
	if !rising || m.failing.Load() {
		// Only reads, or a database that failed the last time: what a
		// tracker learns or records can wait for the next refresh, the
		// devices that wait for this one cannot.
		timeout = min(timeout, m.floorTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := m.db.RaiseFloors(ctx, up)
	m.failing.Store(err != nil)
	if err != nil {
		if rising {
			m.log.Warn().Err(err).Interface("floors", up).Msg("could not record the highest ACL version and sequence verified; serving them, and trying again at the next refresh")
		} else {
			m.log.Debug().Err(err).Msg("could not read the floors other trackers raised")
		}
		return nil
	}
	m.mu.Lock()
	for name, v := range got {
		m.recorded[name] = max(m.recorded[name], v)
	}
	m.maxACL = max(m.maxACL, got[state.ACLFloor])
	if v, ok := got[channel]; ok {
		m.maxSeq[channel] = max(m.maxSeq[channel], v)
	}
	m.mu.Unlock()
	switch {
	case got[state.ACLFloor] > aclVersion:
		return m.refuse(&manifest.Error{Rule: manifest.RuleACLRollback, Detail: fmt.Sprintf("ACL version %d is older than version %d verified before", aclVersion, got[state.ACLFloor])}, kindACL, "acl.json")
	case channel != "" && got[channel] > seq:
		return m.refuse(&manifest.Error{Rule: manifest.RuleRollback, Detail: fmt.Sprintf("sequence %d is lower than sequence %d verified before", seq, got[channel])}, kindLatest, "the manifest of channel %q", channel)
	}
	return nil
}

// register remembers a verified build. The caller holds m.mu.
func (m *manifests) register(app string, ref manifest.BuildRef) *buildInfo {
	if b := m.builds[ref.ID]; b != nil && b.ref == ref {
		return b
	}
	b := &buildInfo{app: app, ref: ref}
	m.builds[ref.ID] = b
	vk := app + "/" + ref.Version
	if cur := m.versions[vk]; cur == nil || cur.ref.Number <= ref.Number {
		m.versions[vk] = b
	}
	return b
}

// refuse logs and counts a verification failure of a manifest of kind
// with its rule and returns the error devices see. It is logged once per
// cache fill, not once per request.
func (m *manifests) refuse(err error, kind, what string, args ...any) error {
	what = fmt.Sprintf(what, args...)
	rule := manifest.RuleOf(err)
	if rule == "" {
		rule = "other"
	}
	m.metrics.manifest(kind, string(rule))
	m.log.Warn().Str("rule", string(rule)).Err(err).Msgf("refusing %s: it fails verification", what)
	ae := errorf(codeNotServable, "%s fails verification (%s); the tracker serves only signed manifests that verify against its pinned root key, so publish a valid one", what, rule)
	ae.Rule = string(rule)
	return ae
}

// aclData returns the bytes of acl.json, cached like the manifests.
func (m *manifests) aclData() ([]byte, error) {
	return m.acl.get(context.Background(), "acl", func() ([]byte, error) {
		data, err := m.read(manifest.ACLKey, manifest.MaxACLSize)
		if errors.Is(err, fs.ErrNotExist) {
			m.log.Warn().Msg("the store has no acl.json")
			return nil, errorf(codeNotServable, "the store has no acl.json yet; an administrator runs `deploy init` first")
		}
		return data, err
	})
}

// read returns the bytes at key, at most limit+1 of them: a verifier
// refuses anything over its limit. Errors other than fs.ErrNotExist are
// logged and returned as unavailable.
func (m *manifests) read(key string, limit int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	rc, _, err := m.store.Get(ctx, key)
	if err == nil {
		var data []byte
		data, err = io.ReadAll(io.LimitReader(rc, int64(limit)+1))
		rc.Close()
		if err == nil {
			return data, nil
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	m.log.Error().Err(err).Str("key", key).Msg("store read failed")
	return nil, &appError{Code: codeUnavailable, Message: "the update store cannot be read right now; try again later", Err: err}
}

// seedBuild is the "build" object of a /build/latest answer. Build is the
// version string the seed's client passes to CapacitorUpdater.download.
type seedBuild struct {
	ID        string `json:"id"`
	Build     string `json:"build"`
	Version   string `json:"version"`
	Number    int64  `json:"number"`
	App       string `json:"app"`
	Channel   string `json:"channel"`
	Sequence  int64  `json:"sequence"`
	SHA256    string `json:"sha256"`
	Checksum  string `json:"checksum"`
	Size      int64  `json:"size"`
	MinNative string `json:"min_native,omitempty"`
	MaxNative string `json:"max_native,omitempty"`
	// URL follows, added per request.
}

// newRelease precomputes the /build/latest answers of a verified pointer:
// {"build": {...}, "latest": <envelope>, "acl": <envelope>}, one per build
// it names, the envelopes as compact JSON objects that a device can verify
// itself.
func newRelease(l *manifest.Latest, aclData, latestData []byte) (*release, error) {
	var aclJSON, latestJSON bytes.Buffer
	if err := json.Compact(&aclJSON, aclData); err != nil {
		return nil, err
	}
	if err := json.Compact(&latestJSON, latestData); err != nil {
		return nil, err
	}
	rel := &release{app: l.App, channel: l.Channel, pointer: l, seedHeads: map[int64][]byte{}}
	for _, b := range pointerBuilds(l) {
		head, err := json.Marshal(seedBuild{
			ID: b.ID, Build: b.Version, Version: b.Version, Number: b.Number, App: l.App, Channel: l.Channel,
			Sequence: l.Sequence, SHA256: b.SHA256, Checksum: b.SHA256, Size: b.Size, MinNative: b.MinNative, MaxNative: b.MaxNative,
		})
		if err != nil {
			return nil, err
		}
		head = append([]byte(`{"build":`), head[:len(head)-1]...)
		rel.seedHeads[b.Number] = append(head, `,"url":`...)
	}
	tail := []byte(`},"latest":`)
	tail = append(tail, latestJSON.Bytes()...)
	tail = append(tail, `,"acl":`...)
	tail = append(tail, aclJSON.Bytes()...)
	rel.seedTail = append(tail, "}\n"...)
	return rel, nil
}

// pointerBuilds lists every build a verified pointer may give a device:
// the candidate, the stable build and the fallbacks.
func pointerBuilds(l *manifest.Latest) []manifest.BuildRef {
	out := make([]manifest.BuildRef, 0, 2+len(l.Fallbacks))
	if l.Candidate != nil {
		out = append(out, l.Candidate.Build)
	}
	out = append(out, l.Build)
	return append(out, l.Fallbacks...)
}
