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
	root.SetArgs(seedArgs(args))
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

// seedArgs turns the seed's key=value arguments into --key=value flags, so
// `deploy upload app=retailer dir=./www` and `deploy upload --app retailer
// --dir ./www` mean the same.
func seedArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if m := seedArg.FindStringSubmatch(a); m != nil {
			a = "--" + m[1] + "=" + m[2]
		}
		out = append(out, a)
	}
	return out
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
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun `%s --help` for the parameters", err, c.CommandPath())}
	})
	root.PersistentFlags().String("profile", "", "user profile to use from the user config")
	root.PersistentFlags().Bool("json", false, "print results as JSON")
	root.PersistentFlags().Bool("verbose", false, "log more detail")
	env := &env{io: stdio}
	root.AddCommand(
		newUpload(env),
		newList(env),
		newLogin(env),
		newKeys(env),
		newInit(env),
		newGrant(env),
		newRevoke(env),
		newACL(env),
		newVerify(env),
		newServe(env),
		newStats(env),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run:   func(c *cobra.Command, _ []string) { fmt.Fprintln(stdio.Out, "deploy", version) },
		},
	)
	return root
}

// env is what commands share: the IO streams and, once loaded, the config.
type env struct {
	io IO
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
