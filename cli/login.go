package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// loginFields are what `deploy login` asks for and saves, in order.
var loginFields = []struct{ name, help string }{
	{"username", "your user name in the ACL"},
	{"store", "store URL (file:///path or s3://bucket/prefix?region=...)"},
	{"cdn", "public CDN base URL serving the store (empty for none)"},
	{"distribution", "CloudFront distribution id (empty for none)"},
	{"tracker", "tracker URL devices use (deploy serve)"},
	{"root_key", "the administrator's root public key (ed25519:...)"},
	{"key_file", "your signing key file"},
}

func newLogin(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "login [profile=NAME] [store=URL] ...",
		Short: "Save your settings as a profile in the user config",
		Long: `Ask for (or take as parameters) your user name, the store, the CDN, the
CloudFront distribution, the tracker URL, the root public key and your signing
key; check that the store, the CDN and the tracker answer; and save them as a profile (mode
0600). Name the profile after an app (profile=retailer) and commands for that
app use it.`,
		Annotations: uses("store root_key key_file"),
		Example:     "  deploy login profile=retailer username=ahmed store='s3://live-bucket/retailer?region=eu-west-1' cdn=https://d123.cloudfront.net root_key=ed25519:...",
		RunE:        func(c *cobra.Command, _ []string) error { return e.login(c) },
	}
	f := c.Flags()
	f.String("username", defaultUsername(), "your user name in the ACL")
	f.String("cdn", "", "public CDN base URL")
	f.String("distribution", "", "CloudFront distribution id")
	f.String("tracker", "", "tracker URL")
	storeFlags(c)
	return c
}

func (e *env) login(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	cfg.v.SetDefault("store", defaultStoreURL())
	if e.io.interactive() {
		r := bufio.NewReader(e.io.In)
		for _, f := range loginFields {
			if cmd.Flags().Changed(f.name) {
				continue
			}
			fmt.Fprintf(e.io.Err, "%s, %s [%s]: ", f.name, f.help, cfg.str(f.name))
			line, err := promptLine(cmd.Context(), r)
			if ctxErr := cmd.Context().Err(); ctxErr != nil {
				return ctxErr
			}
			if line = strings.TrimSpace(line); line != "" {
				cfg.v.Set(f.name, line)
			}
			if err != nil {
				break
			}
		}
	}
	if err := cfg.checkKeyFiles(); err != nil { // again, for what was typed at a prompt
		return err
	}
	if err := manifest.CheckName("user", cfg.str("username")); err != nil {
		return usageError{err}
	}
	if s := cfg.str("root_key"); s != "" {
		if _, err := manifest.ParsePublicKeys(s); err != nil {
			return usageError{fmt.Errorf("root_key: %w", err)}
		}
	}
	hasACL, err := e.checkStore(cmd.Context(), cfg)
	if err != nil {
		return withOtherProfiles(err, cfg.profile)
	}
	if err := e.checkURLs(cmd.Context(), cfg, hasACL); err != nil {
		return err
	}
	key, err := cfg.userKey(true)
	if err != nil {
		return err
	}
	values := map[string]any{}
	for _, f := range loginFields {
		if v := cfg.str(f.name); v != "" {
			values[f.name] = v
		}
	}
	if v := cfg.str("aws_profile"); v != "" { // saved when given, never asked for
		values["aws_profile"] = v
	}
	if err := saveProfile(cfg.profile, values); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	pub := manifest.FormatPublicKey(manifest.Public(key))
	return e.result(map[string]any{"profile": cfg.profile, "user_config": userConfigPath(), "public_key": pub},
		fmt.Sprintf("saved profile %q to %s\nyour public key (give it to your administrator): %s\n", cfg.profile, userConfigPath(), pub))
}

// withOtherProfiles adds to err, when the user config has profiles other
// than profile, that login changes only the one it names.
func withOtherProfiles(err error, profile string) error {
	uc, rerr := readUserConfig()
	if rerr != nil {
		return err
	}
	var others []string
	for name := range uc.Profiles {
		if name != profile {
			others = append(others, name)
		}
	}
	if len(others) == 0 {
		return err
	}
	slices.Sort(others)
	return withHint(err, fmt.Sprintf("this login checks and saves profile %q; to change another one, name it: deploy login profile=%s ... (your profiles: %s)",
		profile, others[0], strings.Join(others, ", ")))
}

// checkStore lists the store, so a missing bucket, wrong credentials or a
// wrong region show now, and reports whether it has an ACL.
func (e *env) checkStore(ctx context.Context, cfg *config) (bool, error) {
	st, err := cfg.openStore(ctx)
	if err != nil {
		return false, err
	}
	infos, err := st.List(ctx, manifest.ACLKey)
	if err != nil {
		return false, unavailableError{fmt.Errorf("cannot reach the store %s: %w", cfg.storeURL(), err)}
	}
	if !slices.ContainsFunc(infos, func(in store.Info) bool { return in.Key == manifest.ACLKey }) {
		fmt.Fprintf(e.io.Err, "reached %s; it has no ACL yet (an administrator runs `deploy init`)\n", cfg.storeURL())
		return false, nil
	}
	fmt.Fprintf(e.io.Err, "reached %s\n", cfg.storeURL())
	return true, nil
}

// checkURLs makes sure the CDN and tracker URLs are http(s) URLs that
// answer: the CDN serves the store's acl.json (when the store has one),
// the tracker answers /healthz.
func (e *env) checkURLs(ctx context.Context, cfg *config, hasACL bool) error {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	checks := []struct {
		key, path string
		mustOK    bool
	}{
		{"cdn", "/" + manifest.ACLKey, hasACL},
		{"tracker", "/healthz", true},
	}
	for _, c := range checks {
		raw := strings.TrimSuffix(cfg.str(c.key), "/")
		if raw == "" {
			continue
		}
		status, err := httpStatus(ctx, client, raw+c.path)
		if err != nil {
			return unavailableError{withHint(fmt.Errorf("cannot reach %s=%s: %s", c.key, raw, netProblem(err)), "check the URL, and that it is reachable from here")}
		}
		if c.mustOK && status != http.StatusOK {
			return withHint(fmt.Errorf("%s%s answered HTTP %d, not 200", raw, c.path, status), "check that "+c.key+"= is the right URL")
		}
		fmt.Fprintf(e.io.Err, "reached %s=%s\n", c.key, raw)
	}
	return nil
}

func httpStatus(ctx context.Context, client *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// netProblem is the cause of a failed request, without the URL and Go
// wording around it.
func netProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
