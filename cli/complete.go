package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cartona/deploy/manifest"
)

// completeTimeout bounds the store lookups of completion: a slow or
// unreachable store gives fewer suggestions, never a hung shell.
const completeTimeout = 2 * time.Second

// complete suggests key= parameters, and values for them: app and channel
// names from the configured store, 1/0 for booleans, paths for files.
// It never fails: whatever goes wrong, it suggests less.
func (e *env) complete(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	key, val, hasValue := strings.Cut(toComplete, "=")
	if !hasValue {
		return paramNames(cmd, args, toComplete), cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	}
	f := cmd.Flags().Lookup(key)
	if f == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	values := e.values(cmd, args, f)
	if values == nil && pathParam(key) {
		values = paths(val)
	}
	var out []string
	for _, v := range values {
		if strings.HasPrefix(v, val) {
			out = append(out, key+"="+v)
		}
	}
	d := cobra.ShellCompDirectiveNoFileComp
	if len(out) == 1 && strings.HasSuffix(out[0], "/") {
		d |= cobra.ShellCompDirectiveNoSpace // a folder: go on into it
	}
	return out, d
}

// completeFlags makes the --key form of c's parameters complete as the
// key= form does; the shell completes the paths of dir, file and key files.
func (e *env) completeFlags(c *cobra.Command) {
	c.Flags().VisitAll(func(f *pflag.Flag) {
		_ = c.RegisterFlagCompletionFunc(f.Name, func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			switch {
			case f.Name == "dir":
				return nil, cobra.ShellCompDirectiveFilterDirs
			case pathParam(f.Name):
				return nil, cobra.ShellCompDirectiveDefault
			}
			var out []string
			for _, v := range e.values(cmd, args, f) {
				if strings.HasPrefix(v, toComplete) {
					out = append(out, v)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		})
	})
}

// values lists the values suggested for the parameter f, other than paths.
func (e *env) values(cmd *cobra.Command, args []string, f *pflag.Flag) []string {
	switch {
	case f.Value.Type() == "bool":
		return []string{"1", "0"}
	case f.Name == "app" || f.Name == "channel":
		return e.storeNames(cmd, args, f.Name)
	}
	return nil
}

// pathParam reports whether the parameter key names a file or folder.
func pathParam(key string) bool {
	return key == "dir" || key == "file" || strings.HasSuffix(key, "_file") || key == "db"
}

// paramNames lists the command's parameters as "key=" not given yet.
func paramNames(cmd *cobra.Command, args []string, prefix string) []string {
	var out []string
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" || !strings.HasPrefix(f.Name, prefix) || f.Changed || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, f.Name+"=") }) {
			return
		}
		out = append(out, f.Name+"=\t"+f.Usage)
	})
	return out
}

// paths lists the files and folders starting with prefix.
func paths(prefix string) []string {
	matches, _ := filepath.Glob(prefix + "*")
	for i, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			matches[i] = m + "/"
		}
	}
	return matches
}

// storeNames lists the apps that have a channel, or an app's channels,
// in the store the command would use. Names come from store keys, for
// suggestions only; an unset, missing or slow store gives none.
func (e *env) storeNames(cmd *cobra.Command, args []string, key string) []string {
	quiet := &env{io: discard}
	_ = applySeedArgs(cmd, args)
	cfg, err := quiet.load(cmd)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	st, err := cfg.openStore(ctx) // never creates a store
	if err != nil {
		return nil
	}
	prefix := "apps/"
	if key == "channel" {
		if manifest.CheckName("app", cfg.str("app")) != nil {
			return nil
		}
		prefix = manifest.ChannelsPrefix(cfg.str("app"))
	}
	infos, err := st.List(ctx, prefix)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, in := range infos {
		// apps/<app>/channels/<channel>/latest.json
		parts := strings.Split(in.Key, "/")
		if len(parts) != 5 || parts[2] != "channels" || parts[4] != "latest.json" {
			continue
		}
		name := map[string]string{"app": parts[1], "channel": parts[3]}[key]
		if manifest.CheckName(key, name) == nil {
			names[name] = true
		}
	}
	return sortedKeys(names)
}
