package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

type aclExportOptions struct {
	*env
	storeOptions
	File string `param:"file"`
}

type aclApplyOptions struct {
	*env
	storeOptions
	File   string `param:"file,required"`
	DryRun bool   `param:"dry_run"`
	Force  bool   `param:"force"`
}

// NewCmdACL returns `deploy acl export|apply|resign`.
func NewCmdACL(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "acl",
		Short: "Keep the ACL as a YAML file in your repository (administrators)",
		Long: `Keep the ACL as a YAML file: export it, edit it in a pull request, apply it.
Grants applied from a file and grants made with deploy grant are the same thing.`,
	}
	c.AddCommand(
		newCommand(e, &cobra.Command{
			Use:     "export [file=acl.yaml]",
			Short:   "Write the current ACL as YAML (stdout, or file=)",
			Example: "  deploy acl export file=acl.yaml",
		}, &aclExportOptions{env: e}, runACLExport),
		newCommand(e, &cobra.Command{
			Use:   "apply file=acl.yaml",
			Short: "Show what a YAML ACL changes, then sign and publish it",
			Long: `Show what a YAML ACL changes, then sign and publish it. A file exported
from an older ACL version than the store's is refused, with what applying
it would undo, unless force=1.`,
			Example:     "  deploy acl apply file=acl.yaml dry_run=1",
			Annotations: uses("store root_key_file"),
		}, &aclApplyOptions{env: e}, runACLApply),
		newCmdACLResign(e),
	)
	return c
}

func runACLExport(ctx context.Context, opts *aclExportOptions) error {
	_, acl, err := opts.verifiedACL(ctx)
	if err != nil {
		return err
	}
	data, err := manifest.MarshalACLFile(acl)
	if err != nil {
		return err
	}
	if opts.File == "" {
		if opts.cfg.bool("json") {
			return writeJSON(opts.io.Out, acl)
		}
		_, err = opts.io.Out.Write(data)
		return err
	}
	if err := os.WriteFile(opts.File, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(opts.io.Err, "wrote ACL version %d to %s\n", acl.Version, opts.File)
	return nil
}

func runACLApply(ctx context.Context, opts *aclApplyOptions) error {
	f, err := readACLFile(opts.File)
	if err != nil {
		return err
	}
	st, err := opts.store(ctx)
	if err != nil {
		return err
	}
	root, err := opts.rootKey()
	if err != nil {
		return err
	}
	var changes []manifest.ACLChange
	acl, changed, err := publish.UpdateACL(ctx, st, root, func(acl *manifest.ACL) (bool, error) {
		changes = manifest.DiffACL(acl.Users, f.Users)
		if err := opts.checkBase(f.Version, acl.Version, changes); err != nil {
			return false, err
		}
		if len(changes) == 0 || opts.DryRun {
			return false, nil
		}
		acl.Users = f.Users
		return true, nil
	})
	if err != nil {
		return err
	}
	if changed {
		opts.wroteACL(opts.URL(), acl.Version)
	}
	res := map[string]any{"changes": changeLines(changes), "applied": changed, "acl_version": acl.Version}
	if len(changes) == 0 {
		return opts.result(res, fmt.Sprintf("nothing to change (ACL version %d)\n", acl.Version))
	}
	text := strings.Join(changeLines(changes), "\n") + "\n"
	if changed {
		text += fmt.Sprintf("applied: ACL version %d\n", acl.Version)
	} else {
		text += "dry run: nothing written\n"
	}
	return opts.result(res, text)
}

// checkBase refuses, unless force=1, a file exported from an ACL version
// other than the store's: applying it would undo the changes made since,
// which changes lists.
func (opts *aclApplyOptions) checkBase(base, current int64, changes []manifest.ACLChange) error {
	switch {
	case base > current:
		return fmt.Errorf("%s claims ACL version %d, but the store is at version %d: it is not an export of this store; export it again with `deploy acl export`", opts.File, base, current)
	case base == 0 && len(changes) > 0:
		fmt.Fprintf(opts.io.Err, "%s has no version: it replaces ACL version %d whole\n", opts.File, current)
	case base < current && len(changes) > 0 && !opts.Force:
		return fmt.Errorf("%s was exported from ACL version %d, but the store is at version %d; applying it would change:\n%s\nexport again with `deploy acl export` and redo your edits, or pass force=1 to apply it anyway", opts.File, base, current, strings.Join(changeLines(changes), "\n"))
	}
	return nil
}

func changeLines(changes []manifest.ACLChange) []string {
	lines := make([]string, len(changes))
	for i, c := range changes {
		lines[i] = c.String()
	}
	return lines
}

// readACLFile parses and checks a YAML ACL.
func readACLFile(path string) (*manifest.ACLFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{withHint(fmt.Errorf("cannot read file=%s: %s", path, readProblem(err)), "name the YAML ACL file; `deploy acl export file=acl.yaml` writes the current one")}
	}
	f, err := manifest.ParseACLFile(data)
	if err != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, usageError{fmt.Errorf("%s: %w", path, err)}
		}
		return nil, usageError{fmt.Errorf("%s: %s; compare it with `deploy acl export`", path, yamlMessage(err))}
	}
	return f, nil
}

// readProblem says why a file could not be read, without the system call.
func readProblem(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, syscall.EISDIR):
		return "it is a folder"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.As(err, &pe):
		return pe.Err.Error()
	}
	return err.Error()
}
