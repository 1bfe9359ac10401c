package tracker

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cartona/deploy/dashboard"
	"github.com/cartona/deploy/internal/throttle"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/store"
)

// DefaultCacheTTL is how long a verified manifest is served before the
// store is read again.
const DefaultCacheTTL = 5 * time.Second

// Config is what a Server needs. Store, Trust and State are required.
type Config struct {
	// Store holds acl.json, the channels' latest.json, build records and
	// bundles (store/file or store/s3).
	Store store.Store
	// Trust pins the root key(s) that acl.json must verify against.
	Trust manifest.Trust
	// CDN is the public base URL that serves the store's keys, such as
	// "https://d123.cloudfront.net". Downloads are redirected to
	// CDN + "/" + bundle key once the store's object is checked against
	// the build's sha256. Empty: the tracker serves bundles itself.
	CDN string
	// PublicURL is the tracker's base URL as devices reach it, used in the
	// download URLs it answers. Empty: derived from each request's Host and
	// X-Forwarded-Proto, and New logs a warning.
	PublicURL string
	// State is where the tracker keeps events, device failures, floors
	// and halts (state/sqlite or state/postgres). The Server owns it once
	// New succeeds: Close closes it.
	State state.State
	// Retention is how long raw events are kept: older ones are deleted
	// when Serve starts and every hour. Stats and device failures stay, but
	// an event sent again after its raw row was deleted counts again. Zero
	// keeps every event.
	Retention time.Duration
	// StatsToken protects the operators' routes: the API under /api/
	// ("Authorization: Bearer <token>") and the dashboard at /dashboard,
	// where people sign in with it. Empty disables them (403).
	StatsToken string
	// CacheTTL is how long a verified manifest is cached; DefaultCacheTTL
	// if zero.
	CacheTTL time.Duration
	// Log receives access logs (info), refused manifests (warn) and
	// failures (error).
	Log zerolog.Logger
	// MinACLVersion is the lowest ACL version the tracker accepts, also
	// with an empty database: without it a fresh tracker trusts the first
	// root-signed acl.json it reads, however old. `deploy init`, `grant`,
	// `revoke` and `acl apply` print the version to pin. 0: no pin.
	MinACLVersion int64
	// TrustProxy makes the rightmost X-Forwarded-For address the client
	// address for rate limits. Set it only behind a proxy that sets it.
	TrustProxy bool
	// Limits are rate, size and time limits; zero fields take defaults.
	Limits Limits
	// Halt says when a staged rollout is halted, how often a device may
	// fail a build, and the key that signs halts in the store.
	Halt HaltPolicy
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Metrics receives the tracker's Prometheus metrics; New makes a set
	// if nil. Pass one made with NewMetrics to report to it from outside,
	// as the State does with state.Options.OnCommit = Metrics.ObserveCommit.
	Metrics *Metrics
	// PrivateMetrics leaves GET /metrics out of Handler, for a caller that
	// serves the metrics on another address with ServeMetrics.
	PrivateMetrics bool
}

// Limits protect the tracker. A zero field takes the default in brackets;
// a negative rate disables that limit.
type Limits struct {
	DeviceRate  float64 // requests per second per device ID [5]
	DeviceBurst int     // [60]
	AddrRate    float64 // requests per second per client address [200]
	AddrBurst   int     // [2000]
	MaxKeys     int     // devices or addresses remembered per limiter [100000]
	MaxBody     int64   // bytes of a request body [1 MiB]
	MaxEvents   int     // events in one stats request [1000]

	ReadHeaderTimeout time.Duration // [10s]
	ReadTimeout       time.Duration // whole request, body included [30s]
	WriteTimeout      time.Duration // whole answer, long enough for a bundle download [10m]
	IdleTimeout       time.Duration // keep-alive [2m]
	ShutdownTimeout   time.Duration // to drain requests when Serve's ctx ends [30s]
}

func (l Limits) withDefaults() Limits {
	set := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	if l.DeviceRate == 0 {
		l.DeviceRate = 5
	}
	if l.DeviceBurst <= 0 {
		l.DeviceBurst = 60
	}
	if l.AddrRate == 0 {
		l.AddrRate = 200
	}
	if l.AddrBurst <= 0 {
		l.AddrBurst = 2000
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 100000
	}
	if l.MaxBody <= 0 {
		l.MaxBody = 1 << 20
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = 1000
	}
	set(&l.ReadHeaderTimeout, 10*time.Second)
	set(&l.ReadTimeout, 30*time.Second)
	set(&l.WriteTimeout, 10*time.Minute)
	set(&l.IdleTimeout, 2*time.Minute)
	set(&l.ShutdownTimeout, 30*time.Second)
	return l
}

// Server is the tracker. Make one with New, serve it with Serve (or mount
// Handler), and Close it when done.
type Server struct {
	cfg    Config
	limits Limits
	log    zerolog.Logger
	now    func() time.Time
	cdn    string // without a trailing slash
	// failedLookups keeps device failure lookups that fail on every
	// update check (a database that is down) from flooding the log.
	failedLookups throttle.Failures
	public        string // without a trailing slash
	man           *manifests
	bundles       *bundleChecks
	state         state.State
	files         *fileSets
	health        *health
	chans         *deviceChannels
	devices       *limiter
	addrs         *limiter
	dash          *dashboard.Dashboard
	metrics       *Metrics
	ready         *ttlCache[struct{}]
	mux           *http.ServeMux
	src           *dashboardSource
	handler       http.Handler

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// MinStatsToken is the shortest stats token started without a warning.
const MinStatsToken = 32

// logSettings says which settings change what devices are offered.
func (cfg *Config) logSettings(public string) {
	if cfg.MinACLVersion > 0 {
		cfg.Log.Info().Int64("min_acl_version", cfg.MinACLVersion).Msg("acl.json older than the pinned version is refused")
	}
	if n := len(cfg.StatsToken); n > 0 && n < MinStatsToken {
		cfg.Log.Warn().Int("characters", n).Msgf("the stats token is short enough to be guessed from many addresses; "+
			"use %d random characters or more (openssl rand -base64 32)", MinStatsToken)
	}
	if public == "" {
		cfg.Log.Warn().Msg("public_url is not set: the download URLs in update answers are derived from each request's Host and X-Forwarded-Proto, " +
			"so behind a TLS proxy that sends no X-Forwarded-Proto they start with http://; set public_url to the URL devices reach the tracker at")
	}
}

// check refuses a Config that lacks what every tracker needs.
func (cfg *Config) check() error {
	switch {
	case cfg.Store == nil:
		return errors.New("tracker: no store; set Config.Store")
	case cfg.State == nil:
		return errors.New("tracker: no state; set Config.State")
	case len(cfg.Trust.Roots) == 0:
		return errors.New("tracker: no pinned root key; set the root public key (deploy keys show on the administrator's machine)")
	case cfg.MinACLVersion < 0:
		return fmt.Errorf("tracker: minimum ACL version %d is negative; use 0 (no pin) or the version `deploy grant` printed", cfg.MinACLVersion)
	}
	return nil
}

// New checks cfg, reads the floors from cfg.State and returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cdn, err := baseURL("CDN", cfg.CDN)
	if err != nil {
		return nil, err
	}
	public, err := baseURL("public URL", cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	limits := cfg.Limits.withDefaults()
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	floors, err := cfg.State.Floors(context.Background())
	if err != nil {
		return nil, fmt.Errorf("tracker: read the floors of the tracker state: %w", err)
	}
	floors[state.ACLFloor] = max(floors[state.ACLFloor], cfg.MinACLVersion)
	cfg.logSettings(public)
	s := &Server{
		cfg:     cfg,
		limits:  limits,
		log:     cfg.Log,
		now:     now,
		cdn:     cdn,
		public:  public,
		man:     newManifests(cfg.Store, cfg.Trust, cfg.CacheTTL, now, cfg.Log, cfg.State, floors, cfg.Metrics),
		bundles: newBundleChecks(),
		state:   cfg.State,
		files:   newFileSets(now),
		devices: newLimiter(limits.DeviceRate, limits.DeviceBurst, limits.MaxKeys),
		addrs:   newLimiter(limits.AddrRate, limits.AddrBurst, limits.MaxKeys),
		metrics: cfg.Metrics,
		ready:   newTTLCache[struct{}](cfg.CacheTTL, 1, now, nil),
	}
	if err := s.openReleases(); err != nil {
		return nil, fmt.Errorf("tracker: read the tracker state: %w", err)
	}
	s.src = newDashboardSource(s)
	s.dash, err = dashboard.New(dashboard.Config{Source: s.src, Token: cfg.StatsToken, Log: cfg.Log, Now: now, ClientAddr: s.clientAddr,
		Held: func() { s.metrics.limited(limitToken) }})
	if err != nil {
		return nil, fmt.Errorf("tracker: dashboard: %w", err)
	}
	s.mux = s.routes()
	s.handler = s.logRequests(s.recoverPanics(s.cors(s.checkPath(s.limitAddrs(s.mux)))))
	return s, nil
}

// openReleases reads what the release rules keep (health.go, channels.go)
// and has them watch each verified release.
func (s *Server) openReleases() (err error) {
	s.health = newHealth(s, s.cfg.Halt)
	if s.chans, err = loadDeviceChannels(s.state); err != nil {
		return err
	}
	s.man.onRelease = s.health.watchRelease
	return nil
}

// baseURL validates an absolute http(s) base URL and trims its final '/'.
func baseURL(what, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("tracker: %s %q is not an http(s) base URL such as https://updates.example.com", what, s)
	}
	return strings.TrimRight(s, "/"), nil
}

// routes registers every route in one place.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// The seed's API, as its DeployUpdateService calls it.
	mux.HandleFunc("GET /build/latest", s.handleLatest)
	mux.HandleFunc("GET /build/download", s.handleDownload)
	mux.HandleFunc("GET /build/download/complete", s.handleComplete)
	mux.HandleFunc("GET /build/files", s.handleFiles)
	// The Capgo plugin's self-hosted protocol: updateUrl and statsUrl.
	mux.HandleFunc("POST /capgo/{app}/updates", s.handleCapgoUpdates)
	mux.HandleFunc("POST /capgo/{app}/stats", s.handleCapgoStats)
	// The plugin's channelUrl: setChannel, getChannel, unsetChannel, listChannels.
	mux.HandleFunc("POST /capgo/{app}/channel", s.handleSetChannel)
	mux.HandleFunc("PUT /capgo/{app}/channel", s.handleGetChannel)
	mux.HandleFunc("DELETE /capgo/{app}/channel", s.handleUnsetChannel)
	mux.HandleFunc("GET /capgo/{app}/channel", s.handleListChannels)
	// Operators.
	mux.HandleFunc("GET "+StatsPath, s.handleStats)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	// The release dashboard and its API, behind the stats token.
	s.dash.Register(mux)

	allowed := map[string]string{
		"/build/latest":            "GET, HEAD, OPTIONS",
		"/build/download":          "GET, HEAD, OPTIONS",
		"/build/download/complete": "GET, HEAD, OPTIONS",
		"/build/files":             "GET, HEAD, OPTIONS",
		"/capgo/{app}/updates":     "POST, OPTIONS",
		"/capgo/{app}/stats":       "POST, OPTIONS",
		"/capgo/{app}/channel":     "POST, PUT, DELETE, GET, OPTIONS",
		StatsPath:                  "GET, HEAD",
		"/healthz":                 "GET, HEAD",
		"/readyz":                  "GET, HEAD",
	}
	if !s.cfg.PrivateMetrics {
		mux.Handle("GET /metrics", s.metrics.Handler())
		allowed["/metrics"] = "GET, HEAD"
	}

	// Other methods on those paths, and other paths, get JSON errors.
	for path, allow := range allowed {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.writeError(w, r, errorf(codeMethod, "%s does not answer %s; use %s", r.URL.Path, r.Method, strings.Split(allow, ",")[0]))
		})
	}
	mux.HandleFunc("/", s.notFound)
	return mux
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, errorf(codeNoRoute, "no such endpoint %s; docs/api.md lists the tracker's routes", abbrev(r.URL.Path)))
}

// Handler returns the tracker's HTTP handler, with its access log, CORS,
// and rate limits. Serve uses it; tests and other servers may mount it.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish (up to
// Limits.ShutdownTimeout), flushes queued events to disk and returns.
// It returns nil after a clean shutdown. Close the Server afterwards.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	pctx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	go s.prune(pctx)
	go s.health.sweep(pctx)
	return s.serveHTTP(ctx, ln, s.handler, "tracker", func(ctx context.Context) error {
		if err := s.state.Flush(ctx); err != nil && !errors.Is(err, state.ErrClosed) { // Close flushed them
			return fmt.Errorf("tracker: flush events: %w", err)
		}
		return nil
	})
}

// ServeMetrics answers GET /metrics on ln until ctx ends, for a Server
// configured with PrivateMetrics: operators scrape a private address
// while devices reach Serve's.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/", s.notFound)
	return s.serveHTTP(ctx, ln, mux, "metrics", nil)
}

// serveHTTP answers requests on ln with h until ctx ends, then stops
// accepting, lets requests in flight finish and calls drained (if not nil)
// with what is left of Limits.ShutdownTimeout.
func (s *Server) serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, what string, drained func(context.Context) error) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(s.log.With().Str("component", "http").Logger(), "", 0),
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg(what + " listening")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: serve: %w", what, err)
	case <-ctx.Done():
	}
	s.log.Info().Msg(what + " shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.limits.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close()
		err = fmt.Errorf("%s: shutdown: %w", what, err)
	}
	<-errc
	if drained != nil {
		if derr := drained(sctx); derr != nil && err == nil {
			err = derr
		}
	}
	s.log.Info().Msg(what + " stopped")
	return err
}

// Close waits for halts being written to the store, flushes queued events
// and closes the State. Requests still running after Close get errors; end
// Serve first.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.health != nil {
			s.health.writes.Wait()
		}
		s.closeErr = s.state.Close()
	})
	return s.closeErr
}

// handleHealth answers GET /healthz.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		s.writeError(w, r, errorf(codeUnavailable, "shutting down"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
