package tracker

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// readyTimeout bounds each readiness check of the store and the database.
const readyTimeout = 5 * time.Second

// handleReady answers GET /readyz: 200 while the tracker state and the
// store answer, 503 while either does not. Unlike /healthz (liveness), a
// load balancer should stop sending devices to a tracker that fails it.
// The result is cached like a manifest, so probes cost at most one store
// read per Config.CacheTTL.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if _, err := s.ready.get(r.Context(), "", s.checkReady); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// checkReady pings the tracker state, then asks the store for acl.json:
// a store without one is reachable, just not initialised, but a bucket
// that does not exist is a store= that can never serve.
func (s *Server) checkReady() (struct{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.state.Ping(ctx); err != nil {
		s.log.Error().Err(err).Msg("not ready: the tracker state cannot be used")
		return struct{}{}, errorf(codeUnavailable, "not ready: the tracker state (SQLite or PostgreSQL) cannot be used right now")
	}
	switch _, err := s.cfg.Store.Stat(ctx, manifest.ACLKey); {
	case errors.Is(err, store.ErrNoBucket):
		s.log.Error().Err(err).Str("store", s.cfg.Store.Location("")).Msg("not ready: the store's bucket does not exist")
		return struct{}{}, errorf(codeUnavailable, "not ready: the update store's bucket does not exist; check the bucket in the tracker's store=")
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		s.log.Error().Err(err).Msg("not ready: the store cannot be read")
		return struct{}{}, errorf(codeUnavailable, "not ready: the update store cannot be read right now")
	}
	return struct{}{}, nil
}
