package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newConfig(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "config [profile=NAME] [app=NAME]",
		Short: "Print the effective configuration and where each value comes from",
		Long: `Print every configuration key with its value and where that value comes
from: the command line, a DEPLOY_<NAME> environment variable, the project file
(package.json's "deploy" object or deploy.yaml, found in this folder or the
nearest parent holding one), the user profile, or the default. Tokens,
database passwords and private keys are masked. Keys that no command takes
are errors everywhere, with a suggestion.`,
		Example: "  deploy config\n  deploy config profile=retailer --json",
		RunE:    func(c *cobra.Command, _ []string) error { return e.showConfig(c) },
	}
	c.Flags().String("app", "", "app name (picks the profile named like it)")
	return c
}

// configEntry is one line of `deploy config`.
type configEntry struct {
	Key    string `json:"-"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func (e *env) showConfig(cmd *cobra.Command) error {
	cfg, err := e.load(cmd)
	if err != nil {
		return err
	}
	defaults := flagDefaults(cmd.Root())
	var entries []configEntry
	for _, k := range sortedKeys(knownKeys(cmd.Root())) {
		val, src := cfg.v.GetString(k), cfg.source(k)
		if src == "default" {
			val = defaults[k]
		}
		switch {
		case strings.Contains(k, "token") && val != "":
			val = "(set)"
		case holdsKey(val), params[k].keyFile && keyText(val):
			val = "(hidden: the text of a private key)"
		case k == "db":
			val = redactDB(val)
		}
		entries = append(entries, configEntry{k, val, src})
	}
	if cfg.bool("json") {
		values := map[string]configEntry{}
		for _, en := range entries {
			values[en.Key] = en
		}
		return writeJSON(e.io.Out, map[string]any{"profile": cfg.profile, "project_file": cfg.projectPath, "user_config": userConfigPath(), "values": values})
	}
	tw := tabwriter.NewWriter(e.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
	for _, en := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", en.Key, en.Value, en.Source)
	}
	return tw.Flush()
}

// source says where the value of key comes from.
func (c *config) source(key string) string {
	if f := c.cmd.Flags().Lookup(key); f != nil && f.Changed {
		return "command line"
	}
	if env := "DEPLOY_" + strings.ToUpper(key); os.Getenv(env) != "" {
		return "environment " + env
	}
	if _, ok := c.project[key]; ok {
		return c.projectPath
	}
	if _, ok := c.prof[key]; ok {
		return fmt.Sprintf("profile %q (%s)", c.profile, userConfigPath())
	}
	return "default"
}

// flagDefaults is the default of each parameter, from the first command
// that declares it with one.
func flagDefaults(root *cobra.Command) map[string]string {
	out := map[string]string{"key_file": defaultKeyFile(), "root_key_file": defaultRootKeyFile(), "store": defaultStoreURL()}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if _, ok := out[f.Name]; !ok && f.DefValue != "" {
				out[f.Name] = f.DefValue
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}
