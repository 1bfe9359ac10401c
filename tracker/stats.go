package tracker

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
)

// StatsPath is the route of the stats endpoint.
const StatsPath = "/api/stats"

// Stats is the answer of GET /api/stats: per build, what devices did.
type Stats struct {
	App       string       `json:"app,omitempty"` // empty: every app
	Generated time.Time    `json:"generated"`     // in whole seconds, as every time of the API
	Builds    []BuildStats `json:"builds"`
	// Rollouts are the staged rollouts of the app's channels (only when
	// one app is asked for).
	Rollouts []RolloutHealth `json:"rollouts,omitempty"`
}

// BuildStats counts the events of one build (one version of an app).
// Events whose version names no build the tracker knows (such as "builtin")
// have an empty BuildID and a zero Number.
type BuildStats struct {
	App     string `json:"app"`
	BuildID string `json:"build_id,omitempty"`
	Number  int64  `json:"number,omitempty"`
	Version string `json:"version"`
	state.Counts
}

// stats returns the BuildStats of app, or of every app if app is "",
// sorted by app and then newest build first. Update checks wait briefly
// to share a commit: they are flushed first, so the stats count every
// check answered before.
func (s *Server) stats(ctx context.Context, app string) ([]BuildStats, error) {
	if err := s.state.Flush(ctx); err != nil {
		return nil, err
	}
	counts, err := s.state.Stats(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]BuildStats, 0, len(counts))
	for _, c := range counts {
		bs := BuildStats{App: c.App, Version: c.Version, Number: c.Number, Counts: c.Counts}
		if b := s.man.byVersion(c.App, c.Version); b != nil {
			bs.Number = max(bs.Number, b.ref.Number)
		}
		if bs.Number > 0 {
			bs.BuildID = manifest.BuildID(bs.App, bs.Number)
		}
		out = append(out, bs)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.App != b.App {
			return a.App < b.App
		}
		if a.Number != b.Number {
			return a.Number > b.Number
		}
		return a.Version < b.Version
	})
	return out, nil
}

// handleStats answers GET /api/stats?app= for `deploy stats`. It needs
// "Authorization: Bearer <Config.StatsToken>" (or the dashboard's session
// cookie); without a configured token the endpoint is disabled.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if s.cfg.StatsToken == "" {
		s.writeError(w, r, errorf(codeForbidden, "stats are disabled on this tracker: start it with a stats token (deploy serve stats_token=<secret>)"))
		return
	}
	ok, wait := s.dash.Authorize(r)
	if wait > 0 {
		msg, secs := dashboard.RetryIn(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.writeError(w, r, errorf(codeRateLimited, "%s", msg))
		return
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="deploy tracker"`)
		s.writeError(w, r, errorf(codeUnauthorized, "missing or wrong stats token: send \"Authorization: Bearer <token>\" with the tracker's stats token"))
		return
	}
	app, err := query(r, "app")
	if err == nil && app != "" {
		err = checkName("app", app)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	builds, err := s.stats(r.Context(), app)
	if err != nil {
		s.writeError(w, r, &appError{Code: codeUnavailable, Message: "stats cannot be read right now; try again later", Err: err})
		return
	}
	st := Stats{App: app, Generated: dashboard.APITime(s.now()), Builds: builds}
	if app != "" {
		if st.Rollouts, err = s.rollouts(r.Context(), app); err != nil {
			s.writeError(w, r, &appError{Code: codeUnavailable, Message: "rollouts cannot be read right now; try again later", Err: err})
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}
