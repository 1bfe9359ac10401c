package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/tracker"
)

type serveOptions struct {
	*env
	storeOptions
	Addr       string        `param:"addr"`
	CDN        string        `param:"cdn"`
	PublicURL  string        `param:"public_url"`
	DB         string        `param:"db"`
	StatsToken string        `param:"stats_token"`
	TrustProxy bool          `param:"trust_proxy"`
	CacheTTL   time.Duration `param:"cache_ttl"`
	// MetricsAddr serves /metrics there instead of on Addr.
	MetricsAddr string        `param:"metrics_addr"`
	Retention   time.Duration `param:"retention"`
	MinACL      int           `param:"min_acl_version"`
	// The automatic halt of staged rollouts.
	HaltPercent    string `param:"halt_percent"`
	HaltMinDevices string `param:"halt_min_devices"`
	HaltKeyFile    string `param:"halt_key_file"`
	RetryLimit     string `param:"retry_limit"`
}

// NewCmdServe returns `deploy serve`.
func NewCmdServe(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "serve [addr=:8080] [store=URL] [root_key=ed25519:...]",
		Short: "Run the tracker that devices ask for updates",
		Long: `Run the tracker: the HTTP service that devices talk to. It answers the
original API (/build/latest, /build/download, /build/download/complete) and
the Capgo plugin's self-hosted protocol (/capgo/<app>/updates and
/capgo/<app>/stats), serves only manifests that verify against the root key,
redirects downloads to the CDN (or serves them from a local store), and
records events in SQLite (db=sqlite:///path) or PostgreSQL (db=postgres://...).
GET /metrics answers Prometheus metrics (on metrics_addr if set), GET /readyz
whether the store and the database can be used. Stops gracefully on SIGTERM
or Ctrl-C. Every parameter can also come from a DEPLOY_<NAME> environment
variable, as in a systemd unit.


It halts a staged rollout when more than halt_percent (default 5) of at
least halt_min_devices (default 20) devices that got the candidate report
update_fail, set_fail, checksum_fail, unzip_fail or an app crash for it: it
stops offering it at once and, with halt_key_file (a key whose ACL user holds
only can_halt), writes a signed halt as the channel's latest.json so that
devices reading the CDN stop too. A device that reports set_fail,
checksum_fail or unzip_fail retry_limit times (default 3) for a build is no
longer offered it.`,
		Example: "  export DEPLOY_STATS_TOKEN=...   # from the environment, not the command line, which ps shows\n" +
			"  deploy serve addr=:8080 store='s3://live-bucket/prod?region=eu-west-1' cdn=https://d123.cloudfront.net root_key=ed25519:...",
	}, &serveOptions{env: e}, runServe)
}

func runServe(ctx context.Context, opts *serveOptions) error {
	// Every parameter is checked before anything is opened or logged.
	if err := opts.check(); err != nil {
		return err
	}
	halt, retryLimit, err := opts.haltPolicy()
	if err != nil {
		return err
	}
	st, err := opts.storeToServe(ctx)
	if err != nil {
		return err
	}
	trust, err := opts.pinned()
	if err != nil {
		return err
	}
	logs := tracker.NewLogWriter(opts.io.Err, 100*time.Millisecond)
	defer logs.Close()
	log := zerolog.New(logs).With().Timestamp().Logger()
	metrics := tracker.NewMetrics()
	db, err := OpenState(ctx, opts.DB, state.Options{Log: log, OnCommit: metrics.ObserveCommit, RetryLimit: retryLimit})
	if err != nil {
		return err
	}
	srv, err := tracker.New(tracker.Config{
		Store: st, Trust: trust, CDN: opts.CDN, PublicURL: opts.PublicURL,
		State: db, StatsToken: opts.StatsToken, TrustProxy: opts.TrustProxy,
		CacheTTL: opts.CacheTTL, Retention: opts.Retention, MinACLVersion: int64(opts.MinACL),
		PrivateMetrics: opts.MetricsAddr != "", Halt: halt, Metrics: metrics, Log: log,
	})
	if err != nil {
		db.Close()
		return err
	}
	defer srv.Close()
	ln, err := listen(opts.Addr, "addr")
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	if opts.MetricsAddr != "" {
		if metricsLn, err = listen(opts.MetricsAddr, "metrics_addr"); err != nil {
			ln.Close()
			return err
		}
	}
	log.Info().Msgf("listening on http://%s (store %s)", ln.Addr(), opts.URL())
	if metricsLn != nil {
		serveMetrics(ctx, srv, metricsLn, log)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	return srv.Close()
}

// check refuses the values of serve's parameters that no tracker can use,
// as mistakes in the command line.
func (opts *serveOptions) check() error {
	if err := checkListenAddr("addr", opts.Addr, "8080"); err != nil {
		return err
	}
	if opts.MetricsAddr != "" {
		if err := checkListenAddr("metrics_addr", opts.MetricsAddr, "9090"); err != nil {
			return err
		}
	}
	if opts.MinACL < 0 {
		return usageError{fmt.Errorf("min_acl_version=%d is negative; give 0 (no pin) or the ACL version that deploy init, grant, revoke or acl apply printed", opts.MinACL)}
	}
	if opts.Retention < 0 {
		return usageError{fmt.Errorf("retention=%s is negative; give how long raw events are kept, such as retention=720h, or leave it out to keep them all", opts.Retention)}
	}
	if opts.CacheTTL < 0 {
		return usageError{fmt.Errorf("cache_ttl=%s is negative; give how long the tracker uses what it verified, such as cache_ttl=5s", opts.CacheTTL)}
	}
	return nil
}

// checkListenAddr refuses a listen address addr, of the parameter param,
// that is not host:port with a port number or name; examplePort is a
// port to show in the message.
func checkListenAddr(param, addr, examplePort string) error {
	host, port, err := net.SplitHostPort(addr)
	why := ""
	switch {
	case err != nil && strings.Contains(addr, ":"):
		why = "it is not host:port"
	case host != "" && strings.Trim(host, "0123456789.") == "" && net.ParseIP(host) == nil:
		why = host + " is not an IPv4 address"
	case err != nil || port == "":
		why = "it has no port"
	case strings.Trim(port, "0123456789") == "":
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return nil
		}
		why = "port " + port + " is out of range"
	default:
		if _, err := net.LookupPort("tcp", port); err == nil {
			return nil // a service name, such as http
		}
		why = "port " + strconv.Quote(port) + " is not a number"
	}
	return usageError{fmt.Errorf("%s=%s is not a listen address: %s; give host:port with a port from 1 to 65535, such as %s=:%s (every interface) or %s=127.0.0.1:%s (this machine only)",
		param, addr, why, param, examplePort, param, examplePort)}
}

// serveMetrics serves the tracker's metrics on ln until ctx ends. An error
// serving them later is logged: devices are still served.
func serveMetrics(ctx context.Context, srv *tracker.Server, ln net.Listener, log zerolog.Logger) {
	log.Info().Msgf("metrics on http://%s/metrics", ln.Addr())
	go func() {
		if err := srv.ServeMetrics(ctx, ln); err != nil {
			log.Error().Err(err).Msg("metrics stopped")
		}
	}()
}

// listen opens the TCP address addr of the parameter named param.
func listen(addr, param string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, unavailableError{fmt.Errorf("cannot listen on %s: the address is in use, by another program or tracker; stop it, or pick another with %s=", addr, param)}
	case errors.Is(err, syscall.EACCES):
		return nil, unavailableError{fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges); pick a port from 1024 up with %s=, behind a proxy", addr, param)}
	case err != nil:
		return nil, fmt.Errorf("listen on %s: %w; pick another with %s=", addr, err, param)
	}
	return ln, nil
}

// haltPolicy reads the halt parameters and retry_limit; an empty one takes
// the default.
func (opts *serveOptions) haltPolicy() (p tracker.HaltPolicy, retryLimit int, err error) {
	num := func(name, s string, set func(float64)) error {
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || v > 1e9 {
			return usageError{fmt.Errorf("%s=%q is not a positive number; use, for example, halt_percent=5 halt_min_devices=20 retry_limit=3", name, s)}
		}
		set(v)
		return nil
	}
	if v, err := strconv.ParseFloat(opts.HaltPercent, 64); err == nil && v > 100 {
		return p, 0, usageError{fmt.Errorf("halt_percent=%q is over 100; give the percentage of a rollout's devices whose failures halt it, such as halt_percent=5", opts.HaltPercent)}
	}
	err = errors.Join(
		num("halt_percent", opts.HaltPercent, func(v float64) { p.Percent = v }),
		num("halt_min_devices", opts.HaltMinDevices, func(v float64) { p.MinDevices = int64(v) }),
		num("retry_limit", opts.RetryLimit, func(v float64) { retryLimit = int(v) }))
	if err == nil && opts.HaltKeyFile != "" {
		p.Key, err = manifest.LoadKey(opts.HaltKeyFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = usageError{withHint(fmt.Errorf("no key at %s (halt_key_file)", opts.HaltKeyFile),
				"create the tracker's key with `deploy keys generate key_file="+opts.HaltKeyFile+"` and grant it only can_halt in the ACL "+
					"(README, \"Automatic halt\"); without halt_key_file, the tracker stops offering a failing candidate but writes no halt to the store")}
		case err != nil:
			err = fmt.Errorf("halt_key_file: %w", err)
		}
	}
	return p, retryLimit, err
}

type statsOptions struct {
	*env
	App        string `param:"app,required"`
	Tracker    string `param:"tracker,required"`
	StatsToken string `param:"stats_token,required"`
	JSON       bool   `param:"json"`
}

// NewCmdStats returns `deploy stats`.
func NewCmdStats(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:     "stats app=NAME [tracker=URL] [stats_token=TOKEN]",
		Short:   "Show per-build download statistics from the tracker",
		Example: "  DEPLOY_STATS_TOKEN=... deploy stats app=retailer tracker=https://updates.example.com",
	}, &statsOptions{env: e}, runStats)
}

func runStats(ctx context.Context, opts *statsOptions) error {
	client := &http.Client{Timeout: 30 * time.Second}
	st, err := tracker.GetStats(ctx, client, opts.Tracker, opts.StatsToken, opts.App)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.io.Out, st)
	}
	tw := tabwriter.NewWriter(opts.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tVERSION\tCHECKS\tSTARTED\tCOMPLETED\tFAILED\tROLLED_BACK\tDEVICES")
	for _, b := range st.Builds {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", b.Number, b.Version, b.Checks, b.DownloadsStarted, b.DownloadsCompleted, b.DownloadsFailed, b.UpdatesFailed, b.Devices)
	}
	if err := tw.Flush(); err != nil || len(st.Rollouts) == 0 {
		return err
	}
	fmt.Fprintln(opts.io.Out)
	fmt.Fprintln(tw, "CHANNEL\tROLLOUT\tCANDIDATE\tVERSION\tPERCENT\tSTATE\tDEVICES\tFAILED\tWHY")
	for _, r := range st.Rollouts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", r.Channel, r.Rollout, r.BuildID, r.Version, r.Percent, r.State, r.Devices, r.Failed, r.Reason)
	}
	return tw.Flush()
}
