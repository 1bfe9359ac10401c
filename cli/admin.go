package cli

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

func newInit(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create the root key and the store's first ACL (administrators)",
		Long: `Create the root key (if root_key_file does not exist yet) and write the
store's first signed ACL. Prints the root public key, which trackers
(root_key=) and apps pin. Refuses to overwrite an existing ACL.`,
		Example: "  deploy init store=s3://my-bucket/live?region=eu-west-1",
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.load(c)
			if err != nil {
				return err
			}
			ctx := c.Context()
			st, err := cfg.openStore(ctx)
			if err != nil {
				return err
			}
			if _, err := st.Stat(ctx, manifest.ACLKey); err == nil {
				return fmt.Errorf("%s already exists: this store is initialised; change grants with `deploy grant` or `deploy acl apply`", st.Location(manifest.ACLKey))
			}
			path := cfg.str("root_key_file")
			root, created, err := manifest.LoadOrGenerateKey(path)
			if err != nil {
				return fmt.Errorf("root key: %w", err)
			}
			if created {
				fmt.Fprintf(e.io.Err, "created the root key at %s (mode 0600)\nkeep it offline or in a secret store: whoever holds it decides who may publish\n", path)
			} else {
				fmt.Fprintf(e.io.Err, "using the existing root key at %s\n", path)
			}
			if _, err := publish.InitACL(ctx, st, root, []manifest.User{}); err != nil {
				return err
			}
			pub := manifest.FormatPublicKey(manifest.Public(root))
			fmt.Fprintf(e.io.Err, "wrote ACL version 1 to %s\nnext: deploy grant username=<name> app=<app> can_upload=1 key=<their `deploy keys show`>\npin this root public key in the tracker (root_key=) and in your app:\n", st.Location(manifest.ACLKey))
			fmt.Fprintln(e.io.Out, pub)
			return nil
		},
	}
	storeFlags(c)
	return c
}

func newGrant(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "grant username=NAME app=APP can_upload=1 [key=PUBLIC_KEY]",
		Short: "Grant or take back a user's upload right (administrators)",
		Long: `Grant (can_upload=1) or take back (can_upload=0) a user's right to upload
to an app; app=* grants every app. A new user needs key=, the public key
they print with ` + "`deploy keys show`" + `. Signs the new ACL with the root key.`,
		Example: "  deploy grant username=ahmed app=retailer can_upload=1 key=ed25519:...",
		RunE: func(c *cobra.Command, _ []string) error {
			return e.changeGrant(c, c.Flags().Lookup("can_upload").Value.String() == "true")
		},
	}
	c.Flags().Bool("can_upload", true, "1 to grant, 0 to take back")
	grantFlags(c)
	return c
}

func newRevoke(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "revoke username=NAME app=APP",
		Short:   "Take back a user's upload right (administrators)",
		Example: "  deploy revoke username=ahmed app=retailer",
		RunE:    func(c *cobra.Command, _ []string) error { return e.changeGrant(c, false) },
	}
	grantFlags(c)
	return c
}

func grantFlags(c *cobra.Command) {
	c.Flags().String("username", "", "user name in the ACL")
	c.Flags().String("app", "", "app name, or * for every app")
	c.Flags().String("key", "", "the user's public key (ed25519:...), needed for a new user")
	c.Flags().String("store", "", "store URL (default "+defaultStoreURL()+")")
	c.Flags().String("root_key_file", defaultRootKeyFile(), "the root private key")
}

func (e *env) changeGrant(cmd *cobra.Command, upload bool) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	// Whom and what a grant is about come from this command line only, never
	// from a profile, the project config or the environment.
	for _, n := range []string{"username", "app", "key"} {
		if !cmd.Flags().Changed(n) {
			cfg.v.Set(n, "")
		}
	}
	if err := cfg.require("username", "app"); err != nil {
		return err
	}
	name, app, key := cfg.str("username"), cfg.str("app"), cfg.str("key")
	if err := manifest.CheckName("user", name); err != nil {
		return usageError{err}
	}
	if app != manifest.AllApps {
		if err := manifest.CheckName("app", app); err != nil {
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
	ctx := cmd.Context()
	st, err := cfg.openStore(ctx)
	if err != nil {
		return err
	}
	root, err := cfg.rootKey()
	if err != nil {
		return err
	}
	acl, changed, err := publish.UpdateACL(ctx, st, root, func(acl *manifest.ACL) (bool, error) {
		return setGrant(acl, name, app, key, upload)
	})
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(e.io.Err, "nothing to change: %s already has can_upload=%d for %s (ACL version %d)\n", name, b2i(upload), app, acl.Version)
		return nil
	}
	fmt.Fprintf(e.io.Out, "%s can_upload=%d for %s (ACL version %d)\n", name, b2i(upload), app, acl.Version)
	return nil
}

// setGrant changes one grant in acl, adding the user (which needs a key) or
// the key if new. It reports whether anything changed.
func setGrant(acl *manifest.ACL, name, app, key string, upload bool) (bool, error) {
	u := acl.User(name)
	if u == nil {
		if !upload {
			return false, nil
		}
		if key == "" {
			return false, usageError{fmt.Errorf("%s is not in the ACL yet; add key=<their public key> (they print it with `deploy keys show`)", name)}
		}
		acl.Users = append(acl.Users, manifest.User{Name: name})
		u = &acl.Users[len(acl.Users)-1]
	}
	changed := false
	if key != "" && !slices.Contains(u.Keys, key) {
		u.Keys = append(u.Keys, key)
		changed = true
	}
	if upload {
		if !u.Grants[app].CanUpload {
			if u.Grants == nil {
				u.Grants = map[string]manifest.Grant{}
			}
			u.Grants[app] = manifest.Grant{CanUpload: true}
			changed = true
		}
	} else if _, ok := u.Grants[app]; ok {
		delete(u.Grants, app)
		changed = true
	}
	if !upload && app != manifest.AllApps && u.Grants[manifest.AllApps].CanUpload {
		return false, usageError{fmt.Errorf("%s may upload to every app (app=*), %s included; take that back with `deploy revoke username=%s app=*`", name, app, name)}
	}
	return changed, nil
}

func defaultRootKeyFile() string { return filepath.Join(configDir(), "root.key") }
