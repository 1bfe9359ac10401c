package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cartona/deploy/manifest"
)

// StatsPath is the route of the stats endpoint.
const StatsPath = "/api/stats"

// Stats is the answer of GET /api/stats: per build, what devices did.
type Stats struct {
	App       string       `json:"app,omitempty"` // empty: every app
	Generated time.Time    `json:"generated"`
	Builds    []BuildStats `json:"builds"`
}

// BuildStats counts the events of one build (one version of an app).
// Events whose version names no build the tracker knows (such as "builtin")
// have an empty BuildID and a zero Number.
type BuildStats struct {
	App     string `json:"app"`
	BuildID string `json:"build_id,omitempty"`
	Number  int64  `json:"number,omitempty"`
	Version string `json:"version"`
	// Checks counts update checks that offered this build, at most one per
	// device and minute.
	Checks             int64 `json:"checks"`
	DownloadsStarted   int64 `json:"downloads_started"`   // download_start: each GET /build/download from byte 0
	DownloadsCompleted int64 `json:"downloads_completed"` // download_complete: once per device, from the seed's API or the plugin
	DownloadsFailed    int64 `json:"downloads_failed"`    // download_fail, checksum_fail, unzip_fail, ...
	UpdatesFailed      int64 `json:"updates_failed"`      // update_fail, set_fail: rolled back on the device
	Devices            int64 `json:"devices"`             // distinct devices with any event for the build
}

// downloadFailActions are the Capgo actions counted as failed downloads.
const downloadFailActions = `'download_fail', 'checksum_fail', 'checksum_required', 'unzip_fail', 'decrypt_fail',
	'windows_path_fail', 'canonical_path_fail', 'low_mem_fail', 'insufficient_disk_space'`

const statsSQL = `SELECT app, version, MAX(number),
	SUM(action = 'check'),
	SUM(action = 'download_start'),
	COUNT(DISTINCT CASE WHEN action = 'download_complete' THEN device END),
	SUM(action IN (` + downloadFailActions + `) OR (action LIKE 'download_manifest_%' AND action LIKE '%fail')),
	SUM(action IN ('update_fail', 'set_fail')),
	COUNT(DISTINCT device)
	FROM events WHERE_APP GROUP BY app, version`

// stats computes BuildStats for app, or for every app if app is "".
func (e *events) stats(ctx context.Context, app string, known func(app, version string) *buildInfo) ([]BuildStats, error) {
	q, args := strings.Replace(statsSQL, "WHERE_APP", "", 1), []any(nil)
	if app != "" {
		q, args = strings.Replace(statsSQL, "WHERE_APP", "WHERE app = ?", 1), []any{app}
	}
	rows, err := e.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []BuildStats{}
	for rows.Next() {
		var s BuildStats
		if err := rows.Scan(&s.App, &s.Version, &s.Number, &s.Checks, &s.DownloadsStarted, &s.DownloadsCompleted,
			&s.DownloadsFailed, &s.UpdatesFailed, &s.Devices); err != nil {
			return nil, err
		}
		if b := known(s.App, s.Version); b != nil {
			s.Number = max(s.Number, b.ref.Number)
		}
		if s.Number > 0 {
			s.BuildID = manifest.BuildID(s.App, s.Number)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
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
	if !s.dash.Authorized(r) {
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
	// Update checks wait briefly to share a commit: flush them, so the
	// stats count every check answered before.
	var builds []BuildStats
	if err = s.events.flush(r.Context()); err == nil {
		builds, err = s.events.stats(r.Context(), app, s.man.byVersion)
	}
	if err != nil {
		s.writeError(w, r, &appError{Code: codeUnavailable, Message: "stats cannot be read right now; try again later", Err: err})
		return
	}
	writeJSON(w, http.StatusOK, Stats{App: app, Generated: s.now().UTC(), Builds: builds})
}

// GetStats fetches the stats of app (every app if "") from the tracker at
// baseURL, for `deploy stats`. A nil client means http.DefaultClient.
// An error answer of the tracker is returned with its message.
func GetStats(ctx context.Context, client *http.Client, baseURL, token, app string) (*Stats, error) {
	if client == nil {
		client = http.DefaultClient
	}
	u := strings.TrimRight(baseURL, "/") + StatsPath
	if app != "" {
		u += "?app=" + url.QueryEscape(app)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("stats: read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("stats: %s: %s", resp.Status, e.Message)
		}
		return nil, fmt.Errorf("stats: %s from %s", resp.Status, u)
	}
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("stats: decode answer of %s: %w", u, err)
	}
	return &st, nil
}
