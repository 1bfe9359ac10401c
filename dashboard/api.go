package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/cartona/deploy/manifest"
)

// Buckets of the adoption series, by the name the API takes.
var buckets = map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}

// defaultPoints is how many buckets an adoption series covers by default;
// maxPoints is the most it may ask for.
var defaultPoints = map[string]int{"hour": 48, "day": 30}

const maxPoints = 1000

// errorResponse is the body of an error answer, the same shape as the
// tracker's.
type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// api wraps an API handler: it needs the token (bearer or session cookie)
// and checks the app and channel names in the path.
func (d *Dashboard) api(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, wait := false, time.Duration(0)
		if !d.disabled {
			ok, wait = d.Authorize(r)
		}
		switch {
		case d.disabled:
			writeJSON(w, http.StatusForbidden, errorResponse{"forbidden", "the API is disabled on this tracker: start it with a stats token (deploy serve stats_token=<secret>)"})
		case wait > 0:
			msg, secs := RetryIn(wait)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, http.StatusTooManyRequests, errorResponse{"rate_limited", msg})
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="deploy tracker"`)
			writeJSON(w, http.StatusUnauthorized, errorResponse{"unauthorized", "missing or wrong stats token: send \"Authorization: Bearer <token>\" with the tracker's stats token, or sign in at " + Path})
		case !validName(r.PathValue("app")) || !validName(r.PathValue("channel")):
			writeJSON(w, http.StatusBadRequest, errorResponse{"invalid_request", "app and channel names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit"})
		default:
			next(w, r)
		}
	}
}

func validName(s string) bool { return s == "" || manifest.CheckName("", s) == nil }

// fail answers a Source error: not found with its message, anything else
// logged and hidden.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, errorResponse{"not_found", err.Error()})
		return
	}
	d.log.Error().Err(err).Str("path", r.URL.Path).Msg("dashboard data cannot be read")
	w.Header().Set("Retry-After", "30")
	writeJSON(w, http.StatusServiceUnavailable, errorResponse{"unavailable", "the dashboard's data cannot be read right now; try again later"})
}

// APITime is t as the API answers times, as docs/api.md shows them: UTC,
// in whole seconds (RFC 3339 without a fraction once encoded). A fraction
// is cut off, also of a signed time; a zero time stays zero.
func APITime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// handleApps answers GET /api/apps.
func (d *Dashboard) handleApps(w http.ResponseWriter, r *http.Request) {
	apps, err := d.src.Apps(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": nonNil(apps)})
}

// App is the answer of GET /api/apps/{app}.
type App struct {
	App       string          `json:"app"`
	Generated time.Time       `json:"generated"`
	Channels  []Channel       `json:"channels"`
	Builds    []BuildCounters `json:"builds"`
}

// BuildCounters are a build's counters with rates; a rate is null when
// nothing it divides by happened yet.
type BuildCounters struct {
	Counters
	FailureRate  *float64 `json:"failure_rate"`  // failures / (installs + failures)
	RollbackRate *float64 `json:"rollback_rate"` // rollbacks / installs
}

// handleApp answers GET /api/apps/{app}.
func (d *Dashboard) handleApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	channels, err := d.src.Channels(r.Context(), app)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	counters, err := d.src.Counters(r.Context(), app)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	builds := make([]BuildCounters, len(counters))
	for i, c := range counters {
		builds[i] = BuildCounters{Counters: c, FailureRate: rate(c.Failures, c.Installs+c.Failures), RollbackRate: rate(c.Rollbacks, c.Installs)}
	}
	channels = slices.Clone(channels) // the Source's may be shared
	for i := range channels {
		channels[i].Issued, channels[i].Expires = APITime(channels[i].Issued), APITime(channels[i].Expires)
	}
	writeJSON(w, http.StatusOK, App{App: app, Generated: APITime(d.now()), Channels: nonNil(channels), Builds: builds})
}

func rate(n, of int64) *float64 {
	if of <= 0 {
		return nil
	}
	r := float64(n) / float64(of)
	return &r
}

// handleHistory answers GET /api/apps/{app}/channels/{channel}/history.
func (d *Dashboard) handleHistory(w http.ResponseWriter, r *http.Request) {
	app, channel := r.PathValue("app"), r.PathValue("channel")
	entries, err := d.src.History(r.Context(), app, channel)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	entries = slices.Clone(entries) // the Source's may be shared
	for i := range entries {
		entries[i].Issued = APITime(entries[i].Issued)
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": app, "channel": channel, "entries": nonNil(entries)})
}

// handleAdoption answers GET /api/apps/{app}/adoption?bucket=hour|day&points=N.
func (d *Dashboard) handleAdoption(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("bucket")
	if name == "" {
		name = "hour"
	}
	bucket, ok := buckets[name]
	points, err := strconv.Atoi(q.Get("points"))
	if q.Get("points") == "" {
		points, err = defaultPoints[name], nil
	}
	if !ok || err != nil || points < 1 || points > maxPoints {
		writeJSON(w, http.StatusBadRequest, errorResponse{"invalid_request", "bucket is hour or day, and points a whole number from 1 to 1000"})
		return
	}
	rows, err := d.src.Adoption(r.Context(), r.PathValue("app"), bucket)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	a := adoption(rows, bucket, d.now(), points)
	a.App, a.Bucket = r.PathValue("app"), name
	writeJSON(w, http.StatusOK, a)
}

// Adoption is the answer of GET /api/apps/{app}/adoption: for each build,
// how many devices had installed it by the end of each bucket.
type Adoption struct {
	App    string      `json:"app"`
	Bucket string      `json:"bucket"` // "hour" or "day"
	Times  []time.Time `json:"times"`  // bucket starts, oldest first
	Series []Series    `json:"series"`
}

// Series is one build's adoption, one count per bucket of Adoption.Times.
type Series struct {
	BuildID string  `json:"build_id,omitempty"`
	Number  int64   `json:"number,omitempty"`
	Version string  `json:"version"`
	Devices []int64 `json:"devices"`
}

// adoption turns first installs per bucket into cumulative series over the
// buckets from the first install (at most points buckets back) to the one
// holding now. Installs before the window count from its first bucket on.
func adoption(rows []Installs, bucket time.Duration, now time.Time, points int) Adoption {
	a := Adoption{Times: []time.Time{}, Series: []Series{}}
	if len(rows) == 0 {
		return a
	}
	size := int64(bucket / time.Second)
	last := now.Unix() - mod(now.Unix(), size)
	first := last
	for _, row := range rows {
		first = min(first, row.Start.Unix())
	}
	first = max(first-mod(first, size), last-int64(points-1)*size)
	n := int((last-first)/size) + 1
	for i := range n {
		a.Times = append(a.Times, time.Unix(first+int64(i)*size, 0).UTC())
	}
	index := map[string]int{}
	for _, row := range rows {
		key := row.Version + "\x00" + row.BuildID
		i, ok := index[key]
		if !ok {
			i = len(a.Series)
			index[key] = i
			a.Series = append(a.Series, Series{BuildID: row.BuildID, Number: row.Number, Version: row.Version, Devices: make([]int64, n)})
		}
		at := max(0, int((row.Start.Unix()-first)/size))
		if at < n {
			a.Series[i].Devices[at] += row.Devices
		}
	}
	for _, s := range a.Series {
		for i := 1; i < n; i++ {
			s.Devices[i] += s.Devices[i-1]
		}
	}
	sort.Slice(a.Series, func(i, j int) bool {
		x, y := a.Series[i], a.Series[j]
		if x.Number != y.Number {
			return x.Number < y.Number
		}
		return x.Version < y.Version
	})
	return a
}

// mod is the remainder of a by b, never negative.
func mod(a, b int64) int64 { return ((a % b) + b) % b }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
