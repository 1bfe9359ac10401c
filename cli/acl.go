package cli

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

func newACL(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "acl",
		Short: "Keep the ACL as a YAML file in your repository (administrators)",
		Long: `Keep the ACL as a YAML file: export it, edit it in a pull request, apply it.
Grants applied from a file and grants made with deploy grant are the same thing.`,
	}
	export := &cobra.Command{
		Use:     "export [file=acl.yaml]",
		Short:   "Write the current ACL as YAML (stdout, or file=)",
		Example: "  deploy acl export file=acl.yaml",
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.load(c)
			if err != nil {
				return err
			}
			_, _, acl, err := openVerified(c.Context(), cfg)
			if err != nil {
				return err
			}
			data, err := marshalACL(acl)
			if err != nil {
				return err
			}
			if path := cfg.str("file"); path != "" {
				if err := os.WriteFile(path, data, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(e.io.Err, "wrote ACL version %d to %s\n", acl.Version, path)
				return nil
			}
			_, err = e.io.Out.Write(data)
			return err
		},
	}
	export.Flags().String("file", "", "file to write (default: stdout)")
	storeFlags(export)

	apply := &cobra.Command{
		Use:     "apply file=acl.yaml",
		Short:   "Show what a YAML ACL changes, then sign and publish it",
		Example: "  deploy acl apply file=acl.yaml dry_run=1",
		RunE:    func(c *cobra.Command, _ []string) error { return e.applyACL(c) },
	}
	apply.Flags().String("file", "", "the YAML ACL")
	apply.Flags().Bool("dry_run", false, "only show what would change")
	storeFlags(apply)
	c.AddCommand(export, apply)
	return c
}

// aclFile is the YAML form: the users; the version is informational.
type aclFile struct {
	Version int64           `yaml:"version,omitempty"`
	Users   []manifest.User `yaml:"users"`
}

func marshalACL(acl *manifest.ACL) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# deploy ACL. Edit, then: deploy acl apply file=<this file>\n# grants: app name (or \"*\" for every app) -> can_upload\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(aclFile{Version: acl.Version, Users: acl.Users}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// readACLFile parses and checks a YAML ACL.
func readACLFile(path string) ([]manifest.User, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f aclFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w; compare it with `deploy acl export`", path, err)
	}
	seen := map[string]bool{}
	for i, u := range f.Users {
		if err := manifest.CheckName("user", u.Name); err != nil {
			return nil, fmt.Errorf("%s: user %d: %w", path, i+1, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("%s: user %q appears twice; merge the entries", path, u.Name)
		}
		seen[u.Name] = true
		if len(u.Keys) == 0 {
			return nil, fmt.Errorf("%s: user %q has no keys; add the key they print with `deploy keys show`", path, u.Name)
		}
		for j, k := range u.Keys {
			pk, err := manifest.ParsePublicKey(k)
			if err != nil {
				return nil, fmt.Errorf("%s: user %q: %w", path, u.Name, err)
			}
			f.Users[i].Keys[j] = manifest.FormatPublicKey(pk)
		}
		for app := range u.Grants {
			if app != manifest.AllApps {
				if err := manifest.CheckName("app", app); err != nil {
					return nil, fmt.Errorf("%s: user %q: %w", path, u.Name, err)
				}
			}
		}
		for app, g := range u.Grants { // a grant of nothing is no grant
			if !g.CanUpload {
				delete(f.Users[i].Grants, app)
			}
		}
	}
	return f.Users, nil
}

// diffACL lists what changes from old to new users, one line each.
func diffACL(old, new []manifest.User) []string {
	var out []string
	find := func(us []manifest.User, name string) *manifest.User {
		for i := range us {
			if us[i].Name == name {
				return &us[i]
			}
		}
		return nil
	}
	for _, n := range new {
		o := find(old, n.Name)
		if o == nil {
			out = append(out, fmt.Sprintf("+ user %s", n.Name))
			o = &manifest.User{}
		}
		for _, k := range n.Keys {
			if !slices.Contains(o.Keys, k) {
				out = append(out, fmt.Sprintf("+ %s key %s", n.Name, k))
			}
		}
		for _, k := range o.Keys {
			if !slices.Contains(n.Keys, k) {
				out = append(out, fmt.Sprintf("- %s key %s", n.Name, k))
			}
		}
		for _, app := range sortedKeys(n.Grants) {
			if n.Grants[app].CanUpload && !o.Grants[app].CanUpload {
				out = append(out, fmt.Sprintf("+ %s can_upload %s", n.Name, app))
			}
		}
		for _, app := range sortedKeys(o.Grants) {
			if o.Grants[app].CanUpload && !n.Grants[app].CanUpload {
				out = append(out, fmt.Sprintf("- %s can_upload %s", n.Name, app))
			}
		}
	}
	for _, o := range old {
		if find(new, o.Name) == nil {
			out = append(out, fmt.Sprintf("- user %s", o.Name))
		}
	}
	return out
}

func (e *env) applyACL(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	if err := cfg.require("file"); err != nil {
		return err
	}
	users, err := readACLFile(cfg.str("file"))
	if err != nil {
		return err
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
	dry := cfg.bool("dry_run")
	var changes []string
	acl, changed, err := publish.UpdateACL(ctx, st, root, func(acl *manifest.ACL) (bool, error) {
		changes = diffACL(acl.Users, users)
		if len(changes) == 0 || dry {
			return false, nil
		}
		acl.Users = users
		return true, nil
	})
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintf(e.io.Out, "nothing to change (ACL version %d)\n", acl.Version)
		return nil
	}
	fmt.Fprintln(e.io.Out, strings.Join(changes, "\n"))
	if changed {
		fmt.Fprintf(e.io.Out, "applied: ACL version %d\n", acl.Version)
	} else {
		fmt.Fprintln(e.io.Out, "dry run: nothing written")
	}
	return nil
}
