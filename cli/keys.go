package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
)

type keysShowOptions struct {
	*env
	storeOptions
	Root bool `param:"root"`
}

type keysGenerateOptions struct {
	*env
	storeOptions
}

// NewCmdKeys returns `deploy keys show|generate`.
func NewCmdKeys(e *env) *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "Create or show your signing key"}
	c.AddCommand(
		newCommand(e, &cobra.Command{
			Use:   "show",
			Short: "Print your public key (to hand to the administrator), creating your default key if needed",
			Long: `Print your public key, to hand to the administrator who grants you uploads.
Your key at the default path is created if it does not exist yet; a key_file=
you name must exist (deploy keys generate key_file=... creates one), so that a
typo never prints a new key. With root=1, print the root public key instead,
in the form that the tracker's root_key and an app's configuration take.
Private keys are never printed.`,
			Example:     "  deploy keys show\n  deploy keys show root=1",
			Annotations: uses("key_file root_key_file"),
		}, &keysShowOptions{env: e}, runKeysShow),
		newCommand(e, &cobra.Command{
			Use:         "generate",
			Short:       "Create your signing key (mode 0600); never overwrites",
			Example:     "  deploy keys generate\n  deploy keys generate key_file=./ci.key",
			Annotations: uses("key_file"),
		}, &keysGenerateOptions{env: e}, runKeysGenerate),
	)
	return c
}

func runKeysShow(_ context.Context, opts *keysShowOptions) error {
	load := func() (ed25519.PrivateKey, error) { return opts.userKey(true, opts.io.Err) }
	if opts.Root {
		load = opts.rootKey
	}
	k, err := load()
	if err != nil {
		return err
	}
	return opts.printKey(k)
}

func runKeysGenerate(_ context.Context, opts *keysGenerateOptions) error {
	k, err := manifest.GenerateKey(opts.KeyFile)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; `deploy keys show` prints its public key", opts.KeyFile)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.io.Err, "created %s (mode 0600)\n", opts.KeyFile)
	return opts.printKey(k)
}
