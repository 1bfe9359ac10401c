package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
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
		Long: `Ask for (or take as parameters) your user name, the st, the CDN, the
CloudFront distribution, the tracker URL, the root public key and your signing
key; check that the store can be reached; and save them as a profile (mode
0600). Name the profile after an app (profile=retailer) and commands for that
app use it.`,
		Example: "  deploy login profile=retailer username=ahmed store='s3://live-bucket/retailer?region=eu-west-1' cdn=https://d123.cloudfront.net root_key=ed25519:...",
		RunE:    func(c *cobra.Command, _ []string) error { return e.login(c) },
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
			line, err := r.ReadString('\n')
			if line = strings.TrimSpace(line); line != "" {
				cfg.v.Set(f.name, line)
			}
			if err != nil {
				break
			}
		}
	}
	if err := manifest.CheckName("user", cfg.str("username")); err != nil {
		return usageError{err}
	}
	if s := cfg.str("root_key"); s != "" {
		if _, err := manifest.ParsePublicKeys(s); err != nil {
			return usageError{fmt.Errorf("root_key: %w", err)}
		}
	}
	ctx := cmd.Context()
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	if _, err := st.Stat(ctx, manifest.ACLKey); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.io.Err, "reached %s; it has no ACL yet (an administrator runs `deploy init`)\n", cfg.storeURL())
	} else if err != nil {
		return fmt.Errorf("cannot reach the store %s: %w\ncheck the URL and your AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID...)", cfg.storeURL(), err)
	} else {
		fmt.Fprintf(e.io.Err, "reached %s\n", cfg.storeURL())
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
	if err := saveProfile(cfg.profile, values); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	fmt.Fprintf(e.io.Out, "saved profile %q to %s\nyour public key (give it to your administrator): %s\n", cfg.profile, userConfigPath(), manifest.FormatPublicKey(manifest.Public(key)))
	return nil
}
