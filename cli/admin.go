package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

type initOptions struct {
	*env
	storeOptions
}

// NewCmdInit returns `deploy init`.
func NewCmdInit(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "init",
		Short: "Create the root key and the store's first ACL (administrators)",
		Long: `Create the root key (if root_key_file does not exist yet) and write the
store's first signed ACL. Prints the root public key, which trackers
(root_key=) and apps pin. Refuses to overwrite an existing ACL.`,
		Example:     "  deploy init store=s3://my-bucket/live?region=eu-west-1",
		Annotations: uses("store root_key_file"),
	}, &initOptions{env: e}, runInit)
}

func runInit(ctx context.Context, opts *initOptions) error {
	st, err := opts.storeForWrite(ctx)
	if err != nil {
		return err
	}
	if _, err := st.Stat(ctx, manifest.ACLKey); err == nil {
		return fmt.Errorf("%s already exists: this store is initialised; change grants with `deploy grant` or `deploy acl apply`", st.Location(manifest.ACLKey))
	}
	root, created, err := manifest.LoadOrGenerateKey(opts.RootKeyFile)
	if err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	if created {
		fmt.Fprintf(opts.io.Err, "created the root key at %s (mode 0600)\nkeep it offline or in a secret store: whoever holds it decides who may publish\n", opts.RootKeyFile)
	} else {
		fmt.Fprintf(opts.io.Err, "using the existing root key at %s\n", opts.RootKeyFile)
	}
	if _, err := publish.InitACL(ctx, st, root, []manifest.User{}); err != nil {
		return err
	}
	pub := manifest.FormatPublicKey(manifest.Public(root))
	fmt.Fprintf(opts.io.Err, "wrote ACL version 1 to %s\nnext: deploy grant username=<name> app=<app> can_upload=1 key=<their `deploy keys show`>\n", st.Location(manifest.ACLKey))
	opts.wroteACL(opts.URL(), 1)
	fmt.Fprintln(opts.io.Err, "pin this root public key in the tracker (root_key=) and in your app:")
	return opts.result(map[string]any{"root_key": pub, "acl_version": 1}, pub+"\n")
}

// wroteACL follows a new ACL version written to the store at storeURL:
// it raises this user's floor there (rememberACL), and says how to make
// trackers refuse every older version: a tracker with an empty database
// otherwise trusts the first root-signed acl.json it reads, however old.
func (e *env) wroteACL(storeURL string, version int64) {
	e.rememberACL(storeURL, version)
	fmt.Fprintf(e.io.Err, "ACL version %d: make trackers refuse older ACLs, which may still grant what you took back, with\n  deploy serve min_acl_version=%d   (or DEPLOY_MIN_ACL_VERSION=%d)\n", version, version, version)
}

// grantee is whom and what a grant is about: from the command line only,
// never from a profile, the project config or the environment.
type grantee struct {
	Username string `param:"username,required,cmdline"`
	App      string `param:"app,required,cmdline"`
}

type grantOptions struct {
	*env
	storeOptions
	grantee
	Key       string `param:"key,cmdline"`
	CanUpload bool   `param:"can_upload,cmdline"`
}

type revokeOptions struct {
	*env
	storeOptions
	grantee
}

// NewCmdGrant returns `deploy grant`.
func NewCmdGrant(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "grant username=NAME app=APP can_upload=1 [key=PUBLIC_KEY]",
		Short: "Grant or take back a user's upload right (administrators)",
		Long: `Grant (can_upload=1) or take back (can_upload=0) a user's right to upload
to an app; app=* grants every app. A new user needs key=, the public key
they print with ` + "`deploy keys show`" + `. Signs the new ACL with the root key.`,
		Example:     "  deploy grant username=ahmed app=retailer can_upload=1 key=ed25519:...",
		Annotations: uses("store root_key_file"),
	}, &grantOptions{env: e}, func(ctx context.Context, opts *grantOptions) error {
		return opts.changeGrant(ctx, &opts.storeOptions, opts.grantee, opts.Key, opts.CanUpload)
	})
}

// NewCmdRevoke returns `deploy revoke`.
func NewCmdRevoke(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:         "revoke username=NAME app=APP",
		Short:       "Take back a user's upload right (administrators)",
		Example:     "  deploy revoke username=ahmed app=retailer",
		Annotations: uses("store root_key_file"),
	}, &revokeOptions{env: e}, func(ctx context.Context, opts *revokeOptions) error {
		return opts.changeGrant(ctx, &opts.storeOptions, opts.grantee, "", false)
	})
}

// changeGrant sets g's upload right to upload, signing a new ACL.
func (e *env) changeGrant(ctx context.Context, so *storeOptions, g grantee, key string, upload bool) error {
	if err := manifest.CheckName("user", g.Username); err != nil {
		return usageError{err}
	}
	if g.App != manifest.AllApps {
		if err := manifest.CheckName("app", g.App); err != nil {
			return usageError{err}
		}
	}
	if key != "" {
		pk, err := manifest.ParsePublicKey(key)
		if err != nil {
			return usageError{err}
		}
		key = manifest.FormatPublicKey(pk)
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	root, err := so.rootKey()
	if err != nil {
		return err
	}
	acl, changed, err := publish.UpdateACL(ctx, st, root, func(acl *manifest.ACL) (bool, error) {
		if !upload && acl.User(g.Username) == nil {
			return false, usageError{withHint(fmt.Errorf("%s is not in the ACL, so there is nothing to revoke", g.Username), "`deploy list permissions` lists the users")}
		}
		changed, err := acl.SetGrant(g.Username, g.App, key, upload)
		if err != nil {
			return false, usageError{err}
		}
		return changed, nil
	})
	if err != nil {
		return err
	}
	res := map[string]any{"username": g.Username, "app": g.App, "can_upload": upload, "changed": changed, "acl_version": acl.Version}
	if !changed {
		fmt.Fprintf(e.io.Err, "nothing to change: %s already has can_upload=%d for %s (ACL version %d)\n", g.Username, b2i(upload), g.App, acl.Version)
		return e.result(res, "")
	}
	e.wroteACL(so.URL(), acl.Version)
	return e.result(res, fmt.Sprintf("%s can_upload=%d for %s (ACL version %d)\n", g.Username, b2i(upload), g.App, acl.Version))
}

func defaultRootKeyFile() string { return filepath.Join(configDir(), "root.key") }
