package publish

import (
	"context"
	"errors"
	"io/fs"
	"sort"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// ListBuilds returns an app's build records that verify against acl,
// newest first. A record that is oversized, malformed or does not verify
// (or vanished since the listing) is skipped and passed to warn with its
// key, so that one bad record never hides the others; only a store error
// fails the listing.
func ListBuilds(ctx context.Context, s store.Store, acl *manifest.ACL, app string, warn func(key string, err error)) ([]manifest.Build, error) {
	infos, err := s.List(ctx, manifest.BuildsPrefix(app))
	if err != nil {
		return nil, err
	}
	builds := []manifest.Build{}
	for _, in := range infos {
		if _, ok := manifest.ParseBuildKey(app, in.Key); !ok {
			continue
		}
		data, _, err := store.ReadSmall(ctx, s, in.Key, manifest.MaxBuildSize)
		if err != nil && !errors.Is(err, store.ErrTooLarge) && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		var b *manifest.Build
		if err == nil {
			b, err = manifest.VerifyBuild(acl, data, app)
		}
		if err != nil {
			warn(in.Key, err)
			continue
		}
		builds = append(builds, *b)
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].Number > builds[j].Number })
	return builds, nil
}
