// Package cli is the deploy command line: cobra commands over the domain
// packages (publish, manifest, tracker), with viper for configuration.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// IO is where a command reads and writes: results go to Out, logs,
// progress and prompts to Err.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// interactive reports whether prompts can be shown: stdin and stderr are
// terminals and CI is not set.
func (s IO) interactive() bool {
	return isTerminal(s.In) && isTerminal(s.Err) && os.Getenv("CI") == ""
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ error }

// Execute runs deploy with args (without the program name) and returns the
// exit status: 0 on success, 1 on failure, 2 for a bad command line.
func Execute(ctx context.Context, version string, args []string, stdio IO) int {
	root := newRoot(version, stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stdio.Err, "deploy: %s\n", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}

var seedArg = regexp.MustCompile(`^([a-z][a-z0-9_]*)=(.*)$`)

// seedArgs checks that every argument is a key=value parameter, the seed's
// form, as in `deploy upload app=retailer dir=./www`.
func seedArgs(c *cobra.Command, args []string) error {
	for _, a := range args {
		if !seedArg.MatchString(a) {
			return usageError{fmt.Errorf("unexpected argument %q: parameters are key=value or --key value; run `%s --help`", a, c.CommandPath())}
		}
	}
	return nil
}

// applySeedArgs sets each key=value argument as the flag of that name, so it
// means the same as --key value. Cobra has already told flag values apart
// from arguments, so a value that itself holds '=' stays as it is.
func applySeedArgs(c *cobra.Command, args []string) error {
	for _, a := range args {
		m := seedArg.FindStringSubmatch(a)
		if c.Flags().Lookup(m[1]) == nil {
			return usageError{fmt.Errorf("unknown parameter %q; run `%s --help` for the parameters", m[1], c.CommandPath())}
		}
		if err := c.Flags().Set(m[1], m[2]); err != nil {
			return usageError{fmt.Errorf("%s=%s: %v", m[1], m[2], err)}
		}
	}
	return nil
}

// withSeedArgs makes every runnable command under c take key=value
// arguments.
func withSeedArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		withSeedArgs(sub)
	}
	if c.RunE != nil {
		c.Args = seedArgs
	}
}

func newRoot(version string, stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "deploy",
		Short: "Self-hosted live updates for Ionic/Capacitor apps",
		Long: `deploy publishes signed web bundles of Ionic/Capacitor apps to a store
(a local folder, or S3 behind CloudFront) and runs the tracker that devices ask
for updates.

Every parameter can be given as key=value or --key value:
  deploy upload app=retailer dir=./www
  deploy upload --app retailer --dir ./www`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRunE: applySeedArgs,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun `%s --help` for the parameters", err, c.CommandPath())}
	})
	root.PersistentFlags().String("profile", "", "user profile to use from the user config")
	root.PersistentFlags().Bool("json", false, "print results as JSON")
	root.PersistentFlags().Bool("verbose", false, "log more detail")
	env := &env{io: stdio}
	root.AddCommand(
		NewCmdUpload(env),
		NewCmdList(env),
		newLogin(env),
		NewCmdKeys(env),
		NewCmdInit(env),
		NewCmdGrant(env),
		NewCmdRevoke(env),
		NewCmdACL(env),
		NewCmdVerify(env),
		NewCmdServe(env),
		NewCmdStats(env),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run:   func(c *cobra.Command, _ []string) { fmt.Fprintln(stdio.Out, "deploy", version) },
		},
	)
	withSeedArgs(root)
	return root
}

// env is what commands share: the IO streams and, once loaded, the config.
type env struct {
	io IO
	lazy
}

// logger writes human-readable logs to stderr.
func (e *env) logger(verbose bool) zerolog.Logger {
	w := zerolog.ConsoleWriter{Out: e.io.Err, NoColor: !isTerminal(e.io.Err), PartsExclude: []string{zerolog.TimestampFieldName}}
	lvl := zerolog.InfoLevel
	if verbose {
		lvl = zerolog.DebugLevel
	}
	return zerolog.New(w).Level(lvl)
}
