// Package cli is the deploy command line: cobra commands over the domain
// packages (publish, manifest, tracker), with viper for configuration.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// Execute runs deploy with args (without the program name) and returns the
// exit status (see exitCodes). With --json, errors are printed as JSON on
// stdout too.
func Execute(ctx context.Context, version string, args []string, stdio IO) int {
	root := newRoot(version, stdio)
	args = joinBoolValues(root, args)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := executeRecovering(ctx, root)
	if err == nil {
		return exitOK
	}
	var ue usageError
	if m := unknownCommandRE.FindStringSubmatch(err.Error()); m != nil && !errors.As(err, &ue) {
		err = unknownCommand(root, m[1]) // cobra's, of the root
	}
	var pe partialError // done, but for a follow-up: it says what was done
	if ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.As(err, &pe) {
		err = errInterrupted
	}
	return printError(stdio, wantJSON(root, args), err)
}

// errInterrupted is a command stopped by a signal (Ctrl-C).
var errInterrupted = errors.New("interrupted: deploy writes each object whole and changes a channel last, so the store holds no half-written object and no channel names anything missing; run the command again to finish")

// beforeCommand, when set, runs as a command starts, once its flags are
// parsed; tests set it to panic.
var beforeCommand func()

// executeRecovering runs root, turning a panic in a command into an
// internalError: the user sees one line and where to report it, never a
// stack trace.
func executeRecovering(ctx context.Context, root *cobra.Command) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = internalError{r}
		}
	}()
	return root.ExecuteContext(ctx)
}

// joinBoolValues turns `--flag VALUE` into `--flag=VALUE` for boolean
// flags when VALUE is a boolean (true, false, 1, 0), so booleans take a
// value in every form other parameters do.
func joinBoolValues(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, isFlag := strings.CutPrefix(a, "--")
		if isFlag && i+1 < len(args) && !strings.Contains(name, "=") && isBoolFlag(cmd, name) {
			if _, err := strconv.ParseBool(args[i+1]); err == nil {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func isBoolFlag(c *cobra.Command, name string) bool {
	f := c.Flags().Lookup(name)
	if f == nil {
		f = c.Root().PersistentFlags().Lookup(name)
	}
	return f != nil && f.Value.Type() == "bool"
}

// wantJSON reports whether errors should be JSON: --json as parsed, else as
// written on the command line (parsing may have failed), else DEPLOY_JSON.
func wantJSON(root *cobra.Command, args []string) bool {
	if f := root.PersistentFlags().Lookup("json"); f != nil && f.Changed {
		return f.Value.String() == "true"
	}
	for _, a := range args {
		for _, p := range []string{"--json=", "json="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				b, _ := strconv.ParseBool(v)
				return b
			}
		}
		if a == "--json" {
			return true
		}
	}
	b, _ := strconv.ParseBool(os.Getenv("DEPLOY_JSON"))
	return b
}

// seedArg is a key=value parameter; the value may span lines (notes).
var seedArg = regexp.MustCompile(`^([a-z][a-z0-9_]*)=((?s).*)$`)

// seedArgs checks that every argument is a key=value parameter, the seed's
// form, as in `deploy upload app=retailer dir=./www`.
func seedArgs(c *cobra.Command, args []string) error {
	for _, a := range args {
		if !seedArg.MatchString(a) {
			return unexpectedArg(c, args, a)
		}
	}
	return nil
}

// unexpectedArg is the error for a, an argument of c that is no key=value
// parameter. A command of c typed after the parameters (deploy rollout
// app=shop pause) is told where it goes. The error never quotes a private
// key's text.
func unexpectedArg(c *cobra.Command, args []string, a string) error {
	for _, sub := range c.Commands() {
		if sub.Name() == a {
			fixed := []string{sub.CommandPath()}
			for _, x := range args {
				switch k, _, _ := strings.Cut(x, "="); {
				case holdsKey(x) && seedArg.MatchString(x):
					fixed = append(fixed, k+"=...")
				case holdsKey(x):
					fixed = append(fixed, "...")
				case x != a:
					fixed = append(fixed, shellQuote(x))
				}
			}
			return usageError{fmt.Errorf("%q is a command of %s: it goes before the parameters, as in `%s`", a, c.CommandPath(), strings.Join(fixed, " "))}
		}
	}
	if holdsKey(a) {
		return usageError{fmt.Errorf("unexpected argument holding the text of a private key (not shown): parameters are key=value or --key value, and a key file is passed by its path; run `%s --help`", c.CommandPath())}
	}
	return usageError{fmt.Errorf("unexpected argument %q: parameters are key=value or --key value; run `%s --help`", a, c.CommandPath())}
}

// shellQuote writes a key=value argument as a POSIX shell reads it back:
// a value with anything but letters, digits and -_./:,@+= in single quotes.
func shellQuote(arg string) string {
	k, v, ok := strings.Cut(arg, "=")
	if !ok || !strings.ContainsFunc(v, func(r rune) bool { return !strings.ContainsRune(safeInShell, r) }) {
		return arg
	}
	return k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

const safeInShell = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,@+="

// applySeedArgs sets each key=value argument as the flag of that name, so it
// means the same as --key value. Cobra has already told flag values apart
// from arguments, so a value that itself holds '=' stays as it is.
func applySeedArgs(c *cobra.Command, args []string) error {
	if beforeCommand != nil {
		beforeCommand()
	}
	if c.Annotations[seedAnnotation] == "" {
		return nil // help, completion and help topics take other arguments
	}
	for _, a := range args {
		m := seedArg.FindStringSubmatch(a)
		if m == nil {
			return unexpectedArg(c, args, a)
		}
		if c.Flags().Lookup(m[1]) == nil {
			return unknownParam(c, m[1])
		}
		if err := c.Flags().Set(m[1], m[2]); err != nil {
			return valueError(c.Flags().Lookup(m[1]), m[2])
		}
	}
	return checkNotEmpty(c)
}

// unknownParam refuses a key=value argument naming no parameter of c,
// suggesting the nearest one.
func unknownParam(c *cobra.Command, name string) error {
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	err := fmt.Errorf("unknown parameter %q", name)
	if near := closest(name, names); near != "" {
		return usageError{withHint(err, fmt.Sprintf("did you mean %s=? `%s --help` lists the parameters", near, c.CommandPath()))}
	}
	return usageError{withHint(err, fmt.Sprintf("`%s --help` lists the parameters", c.CommandPath()))}
}

// notEmpty are the parameters that an empty value never fits: given
// empty (channel=$UNSET in a script), they are refused rather than taken
// as left out.
var notEmpty = []string{"app", "channel", "version", "dir", "store", "key_file", "root_key_file", "username", "build", "from", "to", "file", "new_root_key_file", "db", "addr"}

// checkNotEmpty refuses a parameter of notEmpty given on the command line
// with an empty value.
func checkNotEmpty(c *cobra.Command) error {
	for _, name := range notEmpty {
		if f := c.Flags().Lookup(name); f != nil && f.Changed && f.Value.String() == "" {
			return usageError{fmt.Errorf("%s= is empty; give a value, or leave %s out for its default", name, name)}
		}
	}
	return nil
}

const seedAnnotation = "deploy/seed-args"

// withSeedArgs makes every runnable command under c take key=value
// arguments, and complete them.
func withSeedArgs(c *cobra.Command, e *env) {
	for _, sub := range c.Commands() {
		withSeedArgs(sub, e)
	}
	if c.RunE != nil {
		c.Args = seedArgs
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[seedAnnotation] = "1"
		c.ValidArgsFunction = e.complete
	}
}

func init() {
	cobra.AddTemplateFunc("versionText", func(c *cobra.Command) string {
		if on, _ := c.Flags().GetBool("json"); on {
			b, _ := json.MarshalIndent(map[string]string{"version": c.Version}, "", "  ")
			return string(b)
		}
		return "deploy " + c.Version
	})
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
  deploy upload --app retailer --dir ./www
Booleans take --key, --key=1, --key 1, or key=1 (1/0 or true/false).
--json prints results and errors as JSON on stdout; see ` + "`deploy help exit-codes`" + `
for the exit statuses.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRunE: applySeedArgs,
	}
	// --version --json prints what `deploy version --json` prints.
	root.SetVersionTemplate("{{versionText .}}\n")
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().String("profile", "", "user profile to use from the user config")
	root.PersistentFlags().Bool("json", false, "print results, and errors, as JSON on stdout (--json, --json=true, --json 1, json=1)")
	root.PersistentFlags().Bool("verbose", false, "log more detail")
	env := &env{io: stdio}
	root.AddCommand(
		NewCmdUpload(env),
		NewCmdList(env),
		NewCmdChannel(env),
		NewCmdPromote(env),
		NewCmdRollout(env),
		NewCmdRollback(env),
		NewCmdHistory(env),
		NewCmdPrune(env),
		newLogin(env),
		NewCmdKeys(env),
		NewCmdInit(env),
		NewCmdGrant(env),
		NewCmdRevoke(env),
		NewCmdACL(env),
		NewCmdVerify(env),
		NewCmdServe(env),
		NewCmdStats(env),
		newConfig(env),
		newVersion(env, version),
		exitCodesTopic(),
	)
	withSeedArgs(root, env)
	root.SetOut(stdio.Out) // where the completion command writes its scripts
	root.InitDefaultCompletionCmd()
	strictGroups(root)
	strictHelp(root)
	return root
}

// unknownCommandRE matches cobra's error for an unknown command of the
// root.
var unknownCommandRE = regexp.MustCompile(`^unknown command "([^"]*)"`)

// unknownCommand refuses name, which is no command of c, suggesting the
// one it is close to.
func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usageError{fmt.Errorf("%s; run `%s --help` for its commands", msg, c.CommandPath())}
}

// strictGroups makes each command that only groups others (deploy list,
// deploy channel, deploy completion) refuse an unknown command with the
// usage status, where cobra would print its help and succeed. Alone, it
// still prints its help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasParent() || c.Runnable() || !c.HasSubCommands() {
		return
	}
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[groupAnnotation] = "1"
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return unknownCommand(c, args[0])
	}
}

const groupAnnotation = "deploy/group"

// runs reports whether c does something of its own, rather than group
// other commands.
func runs(c *cobra.Command) bool { return c.Runnable() && c.Annotations[groupAnnotation] == "" }

// strictHelp makes `deploy help` refuse a topic that is no command, where
// cobra prints the usage and succeeds.
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, help := range root.Commands() {
		if help.Name() != "help" {
			continue
		}
		help.Run = nil
		help.RunE = func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 && cmd.HasSubCommands() {
				return usageError{fmt.Errorf("no help topic %q; run `deploy help` for the commands and topics", strings.Join(args, " "))}
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		}
	}
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

// flagError rewords pflag's errors without Go internals, and without a
// private key's text that pflag would quote.
func flagError(c *cobra.Command, err error) error {
	var ve *pflag.InvalidValueError
	if errors.As(err, &ve) {
		return valueError(ve.GetFlag(), ve.GetValue())
	}
	if holdsKey(err.Error()) {
		return usageError{withHint(errors.New("an argument holds the text of a private key (not shown); parameters are key=value or --key value"),
			fmt.Sprintf("pass a key file by its path; run `%s --help` for the parameters", c.CommandPath()))}
	}
	return usageError{withHint(err, fmt.Sprintf("run `%s --help` for the parameters", c.CommandPath()))}
}

// valueError says that value does not fit flag f, and what does.
func valueError(f *pflag.Flag, value string) error {
	want := map[string]string{
		"bool":     "1 or 0 (true or false)",
		"duration": "a duration such as 720h or 90m",
		"int":      "a whole number",
	}[f.Value.Type()]
	if want == "" {
		want = "a " + f.Value.Type()
	}
	return usageError{fmt.Errorf("%s=%s is not valid: %s takes %s", f.Name, quoteValue(value), f.Name, want)}
}

// quoteValue quotes a value for a message, unless it holds a private key:
// a message never shows one.
func quoteValue(v string) string {
	if holdsKey(v) {
		return "(the text of a private key, not shown)"
	}
	return strconv.Quote(v)
}
