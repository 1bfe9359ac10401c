package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

type aclResignOptions struct {
	*env
	storeOptions
	NewRootKeyFile string `param:"new_root_key_file,required,cmdline"`
	KeepOldRoot    bool   `param:"keep_old_root,cmdline"`
	DryRun         bool   `param:"dry_run"`
}

func newCmdACLResign(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "resign new_root_key_file=new-root.key [keep_old_root=1]",
		Short: "Move the ACL to a new root key (administrators)",
		Long: `Move the ACL to a new root key: read the ACL, verify it against the pinned
root keys (root_key, or the public half of root_key_file), raise its version
and publish it signed by the new root key. With keep_old_root=1 it is also
signed by root_key_file, so verifiers that pin only the old root still
trust it. Pin both roots everywhere first: see docs/key-rotation.md.`,
		Example: `  deploy keys generate key_file=new-root.key
  deploy acl resign new_root_key_file=new-root.key root_key_file=root.key dry_run=1`,
		Annotations: uses("store root_key root_key_file"),
	}, &aclResignOptions{env: e}, runACLResign)
}

func runACLResign(ctx context.Context, opts *aclResignOptions) error {
	signers, err := opts.signers()
	if err != nil {
		return err
	}
	trust, err := opts.rootTrust()
	if err != nil {
		return err
	}
	st, err := opts.store(ctx)
	if err != nil {
		return err
	}
	var acl *manifest.ACL
	if opts.DryRun {
		if acl, _, err = publish.ReadACL(ctx, st, trust); err == nil {
			if acl.Version >= manifest.MaxSequence { // as ResignACL would refuse it
				return &publish.ACLVersionError{Location: st.Location(manifest.ACLKey), Version: strconv.FormatInt(acl.Version, 10)}
			}
			acl.Version++
		}
	} else {
		acl, err = publish.ResignACL(ctx, st, trust, signers)
	}
	if err != nil {
		return err
	}
	return opts.report(signers, acl.Version)
}

// signers loads the new root key and, with keep_old_root, the old one.
// Both are private key files of mode 0600.
func (opts *aclResignOptions) signers() ([]ed25519.PrivateKey, error) {
	k, err := manifest.LoadKey(opts.NewRootKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{withHint(fmt.Errorf("no key at %s", opts.NewRootKeyFile), "create the new root key with `deploy keys generate key_file="+opts.NewRootKeyFile+"`")}
	}
	if err != nil {
		return nil, fmt.Errorf("new root key: %w", err)
	}
	signers := []ed25519.PrivateKey{k}
	if !opts.KeepOldRoot {
		return signers, nil
	}
	old, err := opts.rootKey()
	if err != nil {
		return nil, err
	}
	if old.Equal(k) {
		return nil, usageError{errors.New("new_root_key_file and root_key_file hold the same key; pass the new root key as new_root_key_file")}
	}
	return append(signers, old), nil
}

// report prints the roots that sign ACL version v and the root_key to pin.
func (opts *aclResignOptions) report(signers []ed25519.PrivateKey, v int64) error {
	roots := make([]string, len(signers))
	for i, k := range signers {
		roots[i] = manifest.FormatPublicKey(manifest.Public(k))
	}
	res := map[string]any{"root_key": roots[0], "signed_by": roots, "acl_version": v, "written": !opts.DryRun}
	if opts.DryRun {
		return opts.result(res, fmt.Sprintf("dry run: ACL version %d would be signed by %s; nothing written\n", v, strings.Join(roots, ", ")))
	}
	opts.wroteACL(opts.URL(), v)
	if opts.KeepOldRoot {
		fmt.Fprintln(opts.io.Err, "next: release apps that pin only the new root, then run this again without keep_old_root=1 and unpin the old root")
	} else {
		fmt.Fprintln(opts.io.Err, "next: sign with the new root from now on (root_key_file=), and unpin the old root once every app pins the new one")
	}
	return opts.result(res, fmt.Sprintf("ACL version %d signed by %s\npin root_key=%s\n", v, strings.Join(roots, ", "), roots[0]))
}
