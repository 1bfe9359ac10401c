package publish

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// DefaultGrace is how recent an object must be for a prune to leave it
// whatever references it, when PruneOptions.Grace is zero: it covers
// uploads by versions of deploy that write no lease.
const DefaultGrace = time.Hour

// PruneOptions say what a prune keeps. Whatever the options, it keeps
// every build that a channel's pointer names (stable, candidate or
// fallback, halted or not), and everything a running upload is about to
// reference.
type PruneOptions struct {
	App string
	// Keep is how many of the newest builds stay; at least 1.
	Keep int
	// OlderThan, when set, keeps every build recorded, and every build
	// named by a channel's history entry written, less than OlderThan ago.
	OlderThan time.Duration
	// Grace keeps objects written less than Grace ago (DefaultGrace if
	// zero; a negative Grace keeps none for that reason).
	Grace  time.Duration
	DryRun bool // report what would go, remove nothing
}

// PrunedObject is an object a prune removed (or would remove).
type PrunedObject struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// PrunedUpload is an incomplete upload a prune aborted (or would abort):
// the parts an interrupted upload left in the store (S3 multipart uploads).
type PrunedUpload struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	Started time.Time `json:"started"`
}

// PruneResult is what a prune did.
type PruneResult struct {
	App    string         `json:"app"`
	DryRun bool           `json:"dry_run"`
	Builds []int64        `json:"builds"` // numbers of the build records removed
	Kept   []int64        `json:"kept"`   // numbers of the build records kept
	Items  []PrunedObject `json:"objects"`
	Bytes  int64          `json:"bytes"`
	// Uploads are the incomplete uploads aborted, whose bytes are not in
	// Bytes.
	Uploads []PrunedUpload `json:"incomplete_uploads"`
	// Spared counts unreferenced objects left for a running upload.
	Spared int `json:"spared"`
	// Claimed lists the versions of removed build records whose claim
	// the prune wrote, as they had none (stores from before claims).
	Claimed []string `json:"claimed,omitempty"`
	// Warnings are what kept the prune from removing more.
	Warnings []string `json:"warnings,omitempty"`
}

// Prune removes an app's bundles, file objects, file manifests (with the
// patches that make them) and build records that nothing keeps (see
// [PruneOptions]), and aborts the incomplete uploads (on a
// [store.Multipart] store) that interrupted uploads left under the app
// and that no running upload's lease names, once older than the grace
// period. It never removes a version claim ([VersionClaim]), and writes
// the missing claim of each build record it removes, so that a version
// stays taken for good. It writes the list of what it is about to remove
// at apps/<app>/prune.json, spares what a concurrent upload's lease names,
// removes build records first and the objects after, so that an
// interrupted prune leaves no build without its files. Only one prune of
// an app runs at a time.
func (p *Publisher) Prune(ctx context.Context, opt PruneOptions) (*PruneResult, error) {
	if err := manifest.CheckName("app", opt.App); err != nil {
		return nil, invalid(err)
	}
	if opt.Keep < 1 {
		return nil, invalid(fmt.Errorf("keep=%d would remove every build; keep at least 1 (the newest)", opt.Keep))
	}
	if opt.Grace == 0 {
		opt.Grace = DefaultGrace
	}
	now := time.Now() // not rounded: ages are compared with the store's times
	if p.Now != nil {
		now = p.Now()
	}
	objs, err := p.prunable(ctx, opt.App)
	if err != nil {
		return nil, err
	}
	m, err := p.mark(ctx, opt, now, objs)
	if err != nil {
		return nil, err
	}
	m.markPatches(opt.App, objs)
	res := &PruneResult{App: opt.App, DryRun: opt.DryRun, Kept: m.kept, Warnings: m.warnings}
	doomed := map[string]store.Info{}
	for key, in := range objs {
		if !m.keys[key] && !(m.allFiles && strings.HasPrefix(key, manifest.FileKey(opt.App, "", ""))) && in.ModTime.Before(now.Add(-opt.Grace)) {
			doomed[key] = in
		}
	}
	// Uploads are listed before spare reads the leases: an upload writes
	// its lease before it starts writing, so each one listed whose upload
	// runs still has a lease that spare sees.
	uploads, err := p.incomplete(ctx, opt.App, now.Add(-opt.Grace))
	if err != nil { // the objects can still go; the uploads wait for a later prune
		res.Warnings = append(res.Warnings, fmt.Sprintf("incomplete uploads were not listed, so none was aborted (%v); give the prune's credentials s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or let a lifecycle rule abort them", err))
		uploads = map[string]store.Upload{}
	}
	if opt.DryRun {
		if err := p.spare(ctx, opt.App, now, doomed, uploads, res); err != nil {
			return nil, err
		}
		res.report(doomed)
		res.reportUploads(uploads)
		return res, nil
	}
	return p.sweep(ctx, opt.App, now, doomed, uploads, res)
}

// incomplete returns, by id, the incomplete uploads under the app that
// started before cutoff, on a store that has them.
func (p *Publisher) incomplete(ctx context.Context, app string, cutoff time.Time) (map[string]store.Upload, error) {
	ups := map[string]store.Upload{}
	mp, ok := p.Store.(store.Multipart)
	if !ok {
		return ups, nil
	}
	all, err := mp.Uploads(ctx, manifest.AppPrefix(app))
	if err != nil {
		return nil, err
	}
	for _, u := range all {
		if u.Started.Before(cutoff) {
			ups[u.ID] = u
		}
	}
	return ups, nil
}

// prunable lists the objects a prune may remove: the app's bundles, files,
// file manifests and build records.
func (p *Publisher) prunable(ctx context.Context, app string) (map[string]store.Info, error) {
	objs := map[string]store.Info{}
	for _, prefix := range []string{manifest.AppPrefix(app) + "bundles/", manifest.FileKey(app, "", ""), manifest.BuildsPrefix(app)} {
		infos, err := p.Store.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			objs[in.Key] = in
		}
	}
	return objs, nil
}

// sweep writes the doomed list, spares what leases and current pointers
// name, and removes the rest: build records first, incomplete uploads
// last.
func (p *Publisher) sweep(ctx context.Context, app string, now time.Time, doomed map[string]store.Info, uploads map[string]store.Upload, res *PruneResult) (*PruneResult, error) {
	started := time.Now()
	if err := p.claimPrune(ctx, app, now, doomed); err != nil {
		return nil, err
	}
	defer p.Store.Delete(context.WithoutCancel(ctx), pruneKey(app))
	if err := p.spare(ctx, app, now, doomed, uploads, res); err != nil {
		return nil, err
	}
	stopped := func() error {
		if time.Since(started) > pruneWindow*8/10 {
			return fmt.Errorf("the prune took over %s and stopped so as not to race uploads; run it again to remove the rest", pruneWindow*8/10)
		}
		return nil
	}
	records, rest := map[string]store.Info{}, map[string]store.Info{}
	for key, in := range doomed {
		if _, ok := manifest.ParseBuildKey(app, key); ok {
			records[key] = in
		} else {
			rest[key] = in
		}
	}
	if err := p.keepVersions(ctx, app, records, res); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	removed := map[string]store.Info{}
	for _, batch := range []map[string]store.Info{records, rest} {
		err := forEach(ctx, batch, func(in store.Info) error {
			if err := stopped(); err != nil {
				return err
			}
			if err := p.Store.Delete(ctx, in.Key); err != nil {
				return err
			}
			mu.Lock()
			removed[in.Key] = in
			mu.Unlock()
			return nil
		})
		if err != nil {
			res.report(removed)
			res.reportUploads(nil)
			return res, err
		}
	}
	res.report(removed)
	aborted := map[string]store.Upload{}
	err := forEach(ctx, uploads, func(u store.Upload) error {
		if err := stopped(); err != nil {
			return err
		}
		if err := p.Store.(store.Multipart).AbortUpload(ctx, u); err != nil {
			mu.Lock() // a later prune tries again
			res.Warnings = append(res.Warnings, fmt.Sprintf("incomplete upload %s was not aborted: %v", u.Key, err))
			mu.Unlock()
			return nil
		}
		mu.Lock()
		aborted[u.ID] = u
		mu.Unlock()
		return nil
	})
	res.reportUploads(aborted)
	return res, err
}

// keepVersions writes the claim of each record's version that has none
// (a store from before claims), so that the version stays taken once the
// record is gone. Records are read whether they verify or not: a claim only
// blocks a version, so claiming too much is safe. One that cannot be read
// names no version. It runs before any record is removed, and fails the
// prune if a claim cannot be written.
func (p *Publisher) keepVersions(ctx context.Context, app string, records map[string]store.Info, res *PruneResult) error {
	for _, key := range slices.Sorted(maps.Keys(records)) {
		data, in, err := store.ReadSmall(ctx, p.Store, key, manifest.MaxBuildSize)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrTooLarge) {
			continue
		}
		if err != nil {
			return err
		}
		var env manifest.Envelope
		var b manifest.Build
		if json.Unmarshal(data, &env) != nil || json.Unmarshal(env.Payload, &b) != nil || b.App != app || b.Version == "" || b.SHA256 == "" {
			continue
		}
		claim, err := json.Marshal(VersionClaim{App: app, Version: b.Version, SHA256: b.SHA256, Time: in.ModTime.UTC()})
		if err != nil {
			return err
		}
		_, err = p.Store.Put(ctx, manifest.VersionKey(app, b.Version), bytes.NewReader(claim), store.PutOptions{CreateOnly: true, Size: int64(len(claim)), ContentType: "application/json"})
		switch {
		case err == nil:
			res.Claimed = append(res.Claimed, b.Version)
		case !errors.Is(err, fs.ErrExist): // one there already stays, whatever it says
			return fmt.Errorf("claiming version %s of the build record %s before removing it: %w; nothing was removed", b.Version, key, err)
		}
	}
	return nil
}

// claimPrune writes the doomed list, refusing while another prune of the
// app is at work.
func (p *Publisher) claimPrune(ctx context.Context, app string, now time.Time, doomed map[string]store.Info) error {
	data, err := json.Marshal(coord{Started: now, Keys: slices.Sorted(maps.Keys(doomed))})
	if err != nil {
		return err
	}
	opt := store.PutOptions{CreateOnly: true, Size: int64(len(data)), ContentType: "application/json"}
	info, err := p.Store.Stat(ctx, pruneKey(app))
	switch {
	case err == nil && info.ModTime.After(now.Add(-pruneWindow)):
		return fmt.Errorf("another prune of %s is running (since %s); wait for it to finish, or %s after that if it died", app, info.ModTime.Format(time.RFC3339), pruneWindow)
	case err == nil: // left by a prune that died
		opt.CreateOnly, opt.IfMatch = false, info.ETag
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	_, err = p.Store.Put(ctx, pruneKey(app), bytes.NewReader(data), opt)
	if lostRace(err) {
		return fmt.Errorf("another prune of %s started at the same time; let it finish", app)
	}
	return err
}

// spare takes out of doomed what a live lease names and what a channel's
// pointer names now (a pointer may have moved since the mark), and out of
// uploads those to a key a live lease names, and removes leases that have
// expired.
func (p *Publisher) spare(ctx context.Context, app string, now time.Time, doomed map[string]store.Info, uploads map[string]store.Upload, res *PruneResult) error {
	infos, err := p.Store.List(ctx, leasesPrefix(app))
	if err != nil {
		return err
	}
	for _, in := range infos {
		l, err := readCoord(ctx, p.Store, in.Key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil && !errors.Is(err, errBadCoord) {
			return err
		}
		if err == nil && l.Started.After(now.Add(-leaseTTL)) || err != nil && in.ModTime.After(now.Add(-leaseTTL)) {
			res.Spared += spareKeys(doomed, l)
			spareUploads(uploads, l)
			continue
		}
		if !res.DryRun {
			p.Store.Delete(ctx, in.Key) // an upload that died long ago
		}
	}
	m := &marks{keys: map[string]bool{}}
	if err := p.markPointers(ctx, app, m, nil); err != nil {
		return err
	}
	m.markPatches(app, doomed)
	for key := range m.keys {
		delete(doomed, key)
	}
	if m.allFiles {
		return fmt.Errorf("a file manifest that a channel names could not be read; nothing was removed: %s", strings.Join(m.warnings, "; "))
	}
	return nil
}

// spareKeys removes the lease's keys from doomed, or every file object
// and bundle when the lease cannot be read, and returns how many went.
func spareKeys(doomed map[string]store.Info, l *coord) int {
	n := len(doomed)
	if l == nil {
		for key := range doomed {
			if !strings.Contains(key, "/builds/") {
				delete(doomed, key)
			}
		}
		return n - len(doomed)
	}
	for _, key := range l.Keys {
		delete(doomed, key)
	}
	return n - len(doomed)
}

// spareUploads removes from uploads those to a key the lease names, or
// every one when the lease cannot be read.
func spareUploads(uploads map[string]store.Upload, l *coord) {
	var keys map[string]bool
	if l != nil {
		keys = make(map[string]bool, len(l.Keys))
		for _, key := range l.Keys {
			keys[key] = true
		}
	}
	for id, u := range uploads {
		if l == nil || keys[u.Key] {
			delete(uploads, id)
		}
	}
}

// reportUploads fills in the incomplete uploads aborted, by key.
func (r *PruneResult) reportUploads(aborted map[string]store.Upload) {
	r.Uploads = []PrunedUpload{}
	for _, u := range aborted {
		r.Uploads = append(r.Uploads, PrunedUpload{Key: u.Key, Size: u.Size, Started: u.Started.UTC().Truncate(time.Second)})
	}
	slices.SortFunc(r.Uploads, func(a, b PrunedUpload) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), a.Started.Compare(b.Started))
	})
}

// report fills in what was removed.
func (r *PruneResult) report(removed map[string]store.Info) {
	r.Items, r.Builds, r.Bytes = []PrunedObject{}, []int64{}, 0
	for _, key := range slices.Sorted(maps.Keys(removed)) {
		r.Items = append(r.Items, PrunedObject{Key: key, Size: removed[key].Size})
		r.Bytes += removed[key].Size
		if n, ok := manifest.ParseBuildKey(r.App, key); ok {
			r.Builds = append(r.Builds, n)
		}
	}
	slices.Sort(r.Builds)
}
