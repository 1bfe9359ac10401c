package tracker

import (
	"context"
	"time"
)

// pruneEvery is how often a tracker with Config.Retention deletes raw
// events older than it.
const pruneEvery = time.Hour

// prune deletes old raw events now and every pruneEvery until ctx ends.
// Trackers sharing a state may all do it: deleting twice is harmless.
func (s *Server) prune(ctx context.Context) {
	if s.cfg.Retention <= 0 {
		return
	}
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		before := s.now().Add(-s.cfg.Retention)
		n, err := s.state.Prune(ctx, before)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error().Err(err).Msg("could not delete old raw events")
		case n > 0:
			s.log.Info().Int64("events", n).Time("before", before).Msg("deleted old raw events")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
