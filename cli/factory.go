package cli

import (
	"context"
	"os"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// lazy is env's factory: what commands share, built on first use from the
// configuration and the options of the command being run.
type lazy struct {
	cfg   *config       // set once loaded
	where *storeOptions // the command's store options, if it has any
	st    store.Store
	trust *manifest.Trust
	log   *zerolog.Logger
}

// log returns the logger to stderr, at debug level with verbose=1.
func (e *env) log() zerolog.Logger {
	if e.lazy.log == nil {
		l := e.logger(e.cfg.bool("verbose"))
		e.lazy.log = &l
	}
	return *e.lazy.log
}

// store opens the store, which must exist: read-only commands never
// create one.
func (e *env) store(ctx context.Context) (store.Store, error) { return e.openStore(ctx, false, true) }

// storeForWrite opens the store, creating a local folder if needed.
func (e *env) storeForWrite(ctx context.Context) (store.Store, error) {
	return e.openStore(ctx, true, false)
}

// storeToServe opens a store that must exist, with an ACL or not yet: a
// tracker may start before `deploy init`, and serves nothing until then.
func (e *env) storeToServe(ctx context.Context) (store.Store, error) {
	return e.openStore(ctx, false, false)
}

func (e *env) openStore(ctx context.Context, create, needACL bool) (store.Store, error) {
	if e.st != nil {
		return e.st, nil
	}
	if p := e.cfg.str("aws_profile"); p != "" {
		os.Setenv("AWS_PROFILE", p) // read by the AWS SDK's default chain
	}
	loc, err := parseStoreParam(e.where.URL())
	if err != nil {
		return nil, err
	}
	st, err := loc.open(ctx, create)
	if err != nil {
		return nil, err
	}
	if !create {
		if err := loc.exists(ctx, st, needACL); err != nil {
			return nil, err
		}
	}
	e.st = st
	return st, nil
}

// pinned returns the pinned root keys (see storeOptions.rootTrust), once.
func (e *env) pinned() (manifest.Trust, error) {
	if e.trust == nil {
		t, err := e.where.rootTrust()
		if err != nil {
			return manifest.Trust{}, err
		}
		e.trust = &t
	}
	return *e.trust, nil
}
