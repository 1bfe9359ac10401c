package tracker

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/cartona/deploy/manifest"
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
// a store without one is reachable, just not initialised.
func (s *Server) checkReady() (struct{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.state.Ping(ctx); err != nil {
		s.log.Error().Err(err).Msg("not ready: the tracker state cannot be used")
		return struct{}{}, errorf(codeUnavailable, "not ready: the tracker state (SQLite or PostgreSQL) cannot be used right now")
	}
	if _, err := s.cfg.Store.Stat(ctx, manifest.ACLKey); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error().Err(err).Msg("not ready: the store cannot be read")
		return struct{}{}, errorf(codeUnavailable, "not ready: the update store cannot be read right now")
	}
	return struct{}{}, nil
}
