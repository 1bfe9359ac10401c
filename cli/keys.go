package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
)

func newKeys(e *env) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Create or show your signing key"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Print your public key (to hand to the administrator), creating the key if needed",
		Long: `Print your public key, to hand to the administrator who grants you uploads.
With root=1, print the root public key instead, in the form that the tracker's
root_key and an app's configuration take. Private keys are never printed.`,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.load(c)
			if err != nil {
				return err
			}
			if cfg.bool("root") {
				k, err := cfg.rootKey()
				if err != nil {
					return err
				}
				fmt.Fprintln(e.io.Out, manifest.FormatPublicKey(manifest.Public(k)))
				return nil
			}
			k, err := cfg.userKey(true)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.io.Out, manifest.FormatPublicKey(manifest.Public(k)))
			return nil
		},
	}
	show.Flags().Bool("root", false, "show the root public key")
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Create your signing key (mode 0600); never overwrites",
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.load(c)
			if err != nil {
				return err
			}
			path := cfg.str("key_file")
			k, err := manifest.GenerateKey(path)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists; `deploy keys show` prints its public key", path)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.io.Err, "created %s (mode 0600)\n", path)
			fmt.Fprintln(e.io.Out, manifest.FormatPublicKey(manifest.Public(k)))
			return nil
		},
	}
	for _, sub := range []*cobra.Command{show, gen} {
		storeFlags(sub)
		c.AddCommand(sub)
	}
	return c
}
