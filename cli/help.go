package cli

import (
	"crypto/ed25519"

	"fmt"
	"github.com/cartona/deploy/manifest"
	"strings"

	"github.com/spf13/cobra"
)

// newVersion prints the same line as `deploy --version`.
func newVersion(e *env, version string) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version (the same as deploy --version)",
		Example: "  deploy version\n  deploy version --json",
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := e.load(c); err != nil {
				return err
			}
			return e.result(map[string]string{"version": version}, "deploy "+version+"\n")
		},
	}
}

// exitCodesTopic is `deploy help exit-codes`.
func exitCodesTopic() *cobra.Command {
	var b strings.Builder
	b.WriteString("deploy exits with one of these statuses; with --json, an error is printed on\nstdout as {\"error\": {\"code\": CODE, \"message\": ..., \"hint\": ...}} (hint only\nwhen there is one; a partial success adds \"result\", what was done), and\nnothing else is printed on stdout.\n\n  STATUS  CODE                 MEANING\n")
	for _, c := range exitCodes {
		fmt.Fprintf(&b, "  %-6d  %-19s  %s\n", c.status, c.code, c.means)
	}
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "The exit statuses and JSON error codes of deploy",
		Long:  b.String(),
	}
}

// result prints v as JSON with --json, else text, on stdout.
func (e *env) result(v any, text string) error {
	if e.cfg.bool("json") {
		return writeJSON(e.io.Out, v)
	}
	_, err := fmt.Fprint(e.io.Out, text)
	return err
}

// printKey prints the public half of k.
func (e *env) printKey(k ed25519.PrivateKey) error {
	pub := manifest.FormatPublicKey(manifest.Public(k))
	return e.result(map[string]string{"public_key": pub}, pub+"\n")
}
