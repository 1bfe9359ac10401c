package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// guideCommand is a deploy command line written in a guide.
type guideCommand struct {
	file string
	line int
	text string // from "deploy" on
}

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	// A command line may be run as `$ deploy`, `npx deploy` or `go run
	// ./cmd/deploy`, and in a CI file as `- run: deploy` or `- deploy`; it is
	// checked from "deploy" on.
	commandLine = regexp.MustCompile(`^\s*(?:-\s+)?(?:run:\s+)?(?:\$\s+)?(?:npx\s+|go run \./cmd/)?(deploy\s.*)$`)
	placeholder = regexp.MustCompile(`<[^>]*>`)
)

// guideCommands returns the deploy command lines of a Markdown file: lines
// of fenced code blocks that start with deploy, and inline code spans that
// do (also across a line break). A code line ending in a backslash
// continues on the next one.
func guideCommands(file string, text string) []guideCommand {
	var out []guideCommand
	lines := strings.Split(text, "\n")
	var para []string // the lines of the paragraph being read, outside code blocks
	paraStart := 0
	endParagraph := func() {
		joined := strings.Join(para, "\n")
		for _, m := range inlineCode.FindAllStringSubmatchIndex(joined, -1) {
			span := strings.ReplaceAll(joined[m[2]:m[3]], "\n", " ")
			if c := commandLine.FindStringSubmatch(span); c != nil && !strings.HasPrefix(strings.TrimSpace(span), "-") {
				line := paraStart + strings.Count(joined[:m[0]], "\n") + 1
				out = append(out, guideCommand{file, line, c[1]})
			}
		}
		para = nil
	}
	inBlock := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			endParagraph()
			inBlock = !inBlock
			continue
		}
		if inBlock {
			start := i
			for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
				i++
				l = strings.TrimSuffix(l, `\`) + " " + lines[i]
			}
			if m := commandLine.FindStringSubmatch(l); m != nil {
				out = append(out, guideCommand{file, start + 1, m[1]})
			}
			continue
		}
		if strings.TrimSpace(l) == "" {
			endParagraph()
			continue
		}
		if para == nil {
			paraStart = i
		}
		para = append(para, l)
	}
	endParagraph()
	return out
}

// words splits a command line as a shell would, well enough for guides:
// it stops at a comment or a shell operator, keeps quoted strings whole,
// and reads a <placeholder> or [optional] part as a word.
func words(line string) []string {
	line = placeholder.ReplaceAllString(line, "X")
	var (
		out   []string
		cur   strings.Builder
		quote rune
		inTok bool
	)
	flush := func() {
		if inTok {
			out = append(out, cur.String())
		}
		cur.Reset()
		inTok = false
	}
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inTok = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !inTok:
			flush()
			return out
		case r == '|' || r == ';' || r == '&' || r == '>' || r == '<' || r == '(' || r == ')':
			flush()
			return out
		case r == '[' || r == ']':
			// [older_than=D]: an optional parameter
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	flush()
	return out
}

// checkGuideCommand checks one command line against the command tree: it
// names a command, each key= or --key is a parameter of that command, and
// it has no other words (but for help and completion, which take names).
func checkGuideCommand(root *cobra.Command, line string) string {
	args := words(line)[1:] // after "deploy"
	cmd := root
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "help" && cmd == root {
			if _, rest, err := root.Find(args[i+1:]); err != nil || len(rest) > 0 {
				return "help for an unknown command or topic"
			}
			return ""
		}
		if a == "completion" && cmd == root { // added by cobra as it runs
			if rest := args[i+1:]; len(rest) != 1 || !strings.Contains(" bash zsh fish powershell ", " "+rest[0]+" ") {
				return "completion takes one shell: bash, zsh, fish or powershell"
			}
			return ""
		}
		sub := findSub(cmd, a)
		if sub == nil {
			break
		}
		cmd = sub
	}
	if !runs(cmd) {
		if i < len(args) && !strings.HasPrefix(args[i], "-") && !strings.Contains(args[i], "=") {
			return "unknown command " + strings.Join(append(strings.Fields(cmd.CommandPath()), args[i]), " ")
		}
		if i < len(args) || cmd == root {
			if i == len(args) && cmd == root {
				return ""
			}
			return cmd.CommandPath() + " is not a command that runs; name one of its subcommands"
		}
		return ""
	}
	rest := args[i:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "..." || a == "X" {
			continue // an elided or placeholder part
		}
		key, isFlag := strings.CutPrefix(a, "--")
		if isFlag {
			var hasValue bool
			key, _, hasValue = strings.Cut(key, "=")
			if f := lookupFlag(cmd, key); f != nil && !hasValue && f.Value.Type() != "bool" {
				j++ // --key value
			}
		} else if k, _, ok := strings.Cut(a, "="); ok && seedArg.MatchString(a) {
			key = k
		} else {
			return "unexpected word " + `"` + a + `"`
		}
		if key == "help" || key == "version" && cmd == root {
			continue
		}
		if lookupFlag(cmd, key) == nil {
			return cmd.CommandPath() + " takes no parameter " + key
		}
	}
	return ""
}

// lookupFlag returns c's flag name, its own or inherited.
func lookupFlag(c *cobra.Command, name string) *pflag.Flag {
	if f := c.Flags().Lookup(name); f != nil {
		return f
	}
	return c.InheritedFlags().Lookup(name)
}

// findSub returns the subcommand of c named (or aliased) name.
func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, sub := range c.Commands() {
		if sub.Name() == name || sub.HasAlias(name) {
			return sub
		}
	}
	return nil
}

// TestGuideCommands checks every deploy command the README and the guides
// show, in code blocks and inline code, against the real command tree: the
// command exists, and each parameter given is one it takes.
func TestGuideCommands(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../README.md"}, files...)
	root := newRoot("v0", discard)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range guideCommands(f, string(b)) {
			n++
			if testing.Verbose() {
				t.Logf("%s:%d: %s", c.file, c.line, c.text)
			}
			if problem := checkGuideCommand(root, c.text); problem != "" {
				t.Errorf("%s:%d: %s\n\t%s", strings.TrimPrefix(c.file, "../"), c.line, problem, c.text)
			}
		}
	}
	if n < 50 {
		t.Errorf("found only %d deploy command lines in the guides; is the scanner broken?", n)
	}
}

// TestGuideCommandCheck checks the checker on lines it must refuse and
// lines it must accept.
func TestGuideCommandCheck(t *testing.T) {
	root := newRoot("v0", discard)
	for line, bad := range map[string]bool{
		"deploy upload app=retailer dir=./www":              false,
		"deploy upload --app retailer --dir ./www --json":   false,
		`deploy upload app=x notes="fix checkout" # a note`: false,
		"deploy verify app=retailer device=<device id>":     false,
		"deploy prune app= keep=N [older_than=D] [grace=G]": false,
		"deploy help exit-codes":                            false,
		"deploy help upload":                                false,
		"deploy rollout pause app=retailer":                 false,
		"deploy completion bash":                            false,
		"deploy serve store=... cdn=... | tee log":          false,
		"deploy":                                   false,
		"deploy uplaod app=retailer":               true,
		"deploy upload app=retailer colour=blue":   true,
		"deploy upload --colour blue":              true,
		"deploy revoke username=x key=ed25519:abc": true,
		"deploy channel frobnicate app=x":          true,
		"deploy help nosuch":                       true,
		"deploy list app=x":                        true,
		"deploy upload app=retailer www":           true,
	} {
		if problem := checkGuideCommand(root, line); (problem != "") != bad {
			t.Errorf("%q: problem %q, want a problem: %v", line, problem, bad)
		}
	}
}

// TestReadmeRequirements checks that the README's quick start names the Go
// version of go.mod and installs, in its apt-get line, every package
// .ci/run installs for the tests.
func TestReadmeRequirements(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quick := string(readme)
	if i := strings.Index(quick, "## Quick start"); i >= 0 {
		quick = quick[i:]
	}
	if i := strings.Index(quick[1:], "\n## "); i >= 0 {
		quick = quick[:i+1]
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "Go " + string(m[1]); !strings.Contains(quick, want) {
		t.Errorf("the README's quick start does not say %q (go.mod)", want)
	}
	for _, want := range []string{"Node.js 20.19", "Chromium", "PostgreSQL", "systemd-analyze"} {
		if !strings.Contains(quick, want) {
			t.Errorf("the README's quick start does not name %s", want)
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	apt := regexp.MustCompile(`(?m)apt-get install ([a-z0-9 .+-]+)$`).FindStringSubmatch(quick)
	if apt == nil {
		t.Fatal("the README's quick start has no apt-get install line")
	}
	listed := map[string]bool{}
	for _, p := range strings.Fields(apt[1]) {
		listed[p] = true
	}
	n := 0
	for _, m := range regexp.MustCompile(`\bapt_install ([a-z0-9 .+-]+)`).FindAllStringSubmatch(string(ci), -1) {
		for _, p := range strings.Fields(m[1]) {
			n++
			if !listed[p] {
				t.Errorf(".ci/run installs %s, the README's apt-get line does not", p)
			}
		}
	}
	if n == 0 {
		t.Error("found no apt_install in .ci/run")
	}
}

// TestParameterTable checks the README's table of parameters against the
// command tree: each command a row names takes each parameter of the row
// (a command that groups others, such as channel, through one of them).
// Uses written in words ("all", "every release command") are not checked.
func TestParameterTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := string(readme)
	start := strings.Index(table, "| parameter | used by | meaning |")
	if start < 0 {
		t.Fatal("README.md has no table of parameters")
	}
	table = table[start:]
	table = table[:strings.Index(table, "\n\n")]
	root := newRoot("v0", discard)
	var takes func(c *cobra.Command, param string) bool
	takes = func(c *cobra.Command, param string) bool {
		if runs(c) {
			return lookupFlag(c, param) != nil
		}
		for _, sub := range c.Commands() {
			if takes(sub, param) {
				return true
			}
		}
		return false
	}
	checked := 0
	for _, row := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(row, " | ")
		if len(cells) < 3 {
			t.Fatalf("README.md: a row of the table of parameters has %d cells: %s", len(cells), row)
		}
		var names []string
		for _, m := range inlineCode.FindAllStringSubmatch(cells[0], -1) {
			names = append(names, m[1])
		}
		for _, part := range strings.Split(cells[1], ";") {
			if strings.ContainsAny(part, "`") || regexp.MustCompile(`\b(all|every|profiles)\b`).MatchString(part) {
				continue
			}
			for _, item := range strings.Split(part, ",") {
				item = strings.TrimSpace(regexp.MustCompile(`\(.*?\)`).ReplaceAllString(item, ""))
				cmd := root
				for _, w := range strings.Fields(item) {
					if cmd = findSub(cmd, w); cmd == nil {
						break
					}
				}
				if cmd == nil {
					t.Errorf("README.md: the table of parameters names %q, which is no command", item)
					continue
				}
				for _, name := range names {
					checked++
					if !takes(cmd, name) {
						t.Errorf("README.md: the table of parameters says %s takes %s; it does not", cmd.CommandPath(), name)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("checked only %d uses of parameters; is the table read right?", checked)
	}
}
