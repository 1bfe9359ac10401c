package cli

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/cartona/deploy/tracker"
)

func newServe(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve [addr=:8080] [store=URL] [root_key=ed25519:...]",
		Short: "Run the tracker that devices ask for updates",
		Long: `Run the tracker: the HTTP service that devices talk to. It answers the
original API (/build/latest, /build/download, /build/download/complete) and
the Capgo plugin's self-hosted protocol (/capgo/<app>/updates and
/capgo/<app>/stats), serves only manifests that verify against the root key,
redirects downloads to the CDN (or serves them from a local st), and
records events in SQLite. Stops gracefully on SIGTERM or Ctrl-C.`,
		Example: "  deploy serve addr=:8080 store=s3://live-bucket/prod?region=eu-west-1 cdn=https://d123.cloudfront.net root_key=ed25519:... stats_token=$STATS_TOKEN",
		RunE:    func(c *cobra.Command, _ []string) error { return e.serve(c) },
	}
	f := c.Flags()
	f.String("addr", ":8080", "listen address")
	f.String("cdn", "", "public base URL serving the store; downloads redirect there (default: served by the tracker)")
	f.String("public_url", "", "the tracker's URL as devices reach it (default: from each request's Host)")
	f.String("db", filepath.Join(dataDir(), "events.db"), "SQLite database of events")
	f.String("stats_token", "", "bearer token for GET /api/stats and `deploy stats` (default: stats disabled)")
	f.Bool("trust_proxy", false, "take client addresses from X-Forwarded-For (only behind a proxy that sets it)")
	f.Duration("cache_ttl", tracker.DefaultCacheTTL, "how long a verified manifest is cached")
	storeFlags(c)
	return c
}

func (e *env) serve(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	trust, err := cfg.trust()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.str("db")), 0o755); err != nil {
		return err
	}
	srv, err := tracker.New(tracker.Config{
		Store: st, Trust: trust, CDN: cfg.str("cdn"), PublicURL: cfg.str("public_url"),
		DBPath: cfg.str("db"), StatsToken: cfg.str("stats_token"), TrustProxy: cfg.bool("trust_proxy"),
		CacheTTL: cfg.v.GetDuration("cache_ttl"),
		Log:      zerolog.New(e.io.Err).With().Timestamp().Logger(),
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.str("addr"))
	if err != nil {
		return fmt.Errorf("listen on %s: %w; pick another with addr=", cfg.str("addr"), err)
	}
	fmt.Fprintf(e.io.Err, "listening on http://%s (store %s)\n", ln.Addr(), cfg.storeURL())
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	return srv.Close()
}

func newStats(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "stats app=NAME [tracker=URL] [stats_token=TOKEN]",
		Short:   "Show per-build download statistics from the tracker",
		Example: "  deploy stats app=retailer tracker=https://updates.example.com stats_token=$STATS_TOKEN",
		RunE:    func(c *cobra.Command, _ []string) error { return e.stats(c) },
	}
	c.Flags().String("app", "", "app name")
	c.Flags().String("tracker", "", "tracker URL (deploy login saves it)")
	c.Flags().String("stats_token", "", "the tracker's stats token")
	return c
}

func (e *env) stats(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	if err := cfg.require("app", "tracker", "stats_token"); err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	st, err := tracker.GetStats(cmd.Context(), client, cfg.str("tracker"), cfg.str("stats_token"), cfg.str("app"))
	if err != nil {
		return err
	}
	if cfg.bool("json") {
		return writeJSON(e.io.Out, st)
	}
	tw := tabwriter.NewWriter(e.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tVERSION\tCHECKS\tSTARTED\tCOMPLETED\tFAILED\tROLLED_BACK\tDEVICES")
	for _, b := range st.Builds {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", b.Number, b.Version, b.Checks, b.DownloadsStarted, b.DownloadsCompleted, b.DownloadsFailed, b.UpdatesFailed, b.Devices)
	}
	return tw.Flush()
}
