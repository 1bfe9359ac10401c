package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// config is the merged configuration of one command run, and where its
// values came from.
type config struct {
	v           *viper.Viper
	profile     string
	env         *env
	cmd         *cobra.Command
	project     map[string]any
	projectPath string
	prof        map[string]any
}

// userConfig is ~/.config/deploy/config.yaml: named profiles, one per app
// being typical, and the one used when none is named.
type userConfig struct {
	Profiles map[string]rawValues `yaml:"profiles"`
}

// rawValues are settings read from YAML with each value kept as written:
// 2.10 stays "2.10" (a native version), not the number 2.1, and
// 2024-01-01 stays a string. A list or a mapping is kept as []any or
// map[string]any, for checkKeys to refuse; an empty value is left out.
type rawValues map[string]any

func (r *rawValues) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into map[string]", n.Line, n.ShortTag())}}
	}
	out := rawValues{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		switch {
		case v.Kind == yaml.SequenceNode:
			out[k.Value] = []any{}
		case v.Kind == yaml.MappingNode:
			out[k.Value] = map[string]any{}
		case v.ShortTag() != "!!null":
			out[k.Value] = v.Value
		}
	}
	*r = out
	return nil
}

// load merges the configuration for cmd. Precedence, highest first:
//  1. arguments and flags (key=value or --key value)
//  2. DEPLOY_<NAME> environment variables
//  3. the project config: the "deploy" key of package.json, or deploy.yaml,
//     in the nearest folder up from the current one holding either
//  4. the user profile in ~/.config/deploy/config.yaml: profile=NAME, else
//     the profile named like the app, else "default"
//  5. defaults
//
// Unknown keys in the project config or the profile are errors.
func (e *env) load(cmd *cobra.Command) (*config, error) {
	v := viper.New()
	v.SetEnvPrefix("DEPLOY")
	v.AutomaticEnv()
	v.SetDefault("key_file", defaultKeyFile())
	v.SetDefault("root_key_file", defaultRootKeyFile())
	var bindErr error
	bind := func(f *pflag.Flag) {
		if err := v.BindPFlag(f.Name, f); err != nil {
			bindErr = err
		}
	}
	cmd.Flags().VisitAll(bind)
	cmd.InheritedFlags().VisitAll(bind)
	if bindErr != nil {
		return nil, bindErr
	}
	known := knownKeys(cmd.Root())
	warnEnvTypos(e.io.Err, known)
	project, projectPath, err := projectConfig()
	if err != nil {
		return nil, err
	}
	if err := checkKeys(project, known, projectPath); err != nil {
		return nil, err
	}
	uc, err := readUserConfig()
	if err != nil {
		return nil, err
	}
	name, err := pickProfile(v, project, uc, cmd)
	if err != nil {
		return nil, err
	}
	prof := uc.Profiles[name]
	if err := checkKeys(prof, known, fmt.Sprintf("profile %q in %s", name, userConfigPath())); err != nil {
		return nil, err
	}
	if err := v.MergeConfigMap(prof); err != nil {
		return nil, err
	}
	if err := v.MergeConfigMap(project); err != nil {
		return nil, err
	}
	e.cfg = &config{v: v, profile: name, env: e, cmd: cmd, project: project, projectPath: projectPath, prof: prof}
	if err := e.cfg.checkKeyFiles(); err != nil {
		return nil, err
	}
	if err := e.cfg.checkRootKey(); err != nil {
		return nil, err
	}
	if err := e.cfg.checkURLParams(); err != nil {
		return nil, err
	}
	for _, flags := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if err := e.cfg.checkTypes(flags); err != nil {
			return nil, err
		}
	}
	return e.cfg, nil
}

// holdsKey reports whether s holds a PEM private key, or a line of one.
func holdsKey(s string) bool {
	return strings.Contains(s, "-----BEGIN") || strings.Contains(s, "PRIVATE KEY")
}

// keyText reports whether v, the value of a key file parameter, is the
// text of a key rather than a path: a CI secret holding the key, passed
// where the path of a file holding it belongs: PEM, its base64 body
// alone, an OpenSSH key's, or a raw Ed25519 seed or key in hex or base64.
func keyText(v string) bool {
	v = strings.TrimSpace(v)
	if holdsKey(v) || strings.ContainsAny(v, "\r\n") || strings.HasPrefix(v, "b3BlbnNzaC1rZXktdjE") { // an OpenSSH key's body
		return true
	}
	if _, err := os.Stat(v); err == nil {
		return false // a file that is there is a path, whatever its name
	}
	if b, err := hex.DecodeString(v); err == nil && (len(b) == 32 || len(b) == 64) { // a seed or key in hex
		return true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(v)
		if err != nil {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(b); err == nil || len(b) == 32 || len(b) == 64 { // a PKCS#8 body, a seed or a key
			return true
		}
	}
	return false
}

// checkKeyFiles refuses a key file parameter of the command whose value
// is the text of a key. Taken as a path, it would create a new key in
// folders named after the key and print that path; so it is refused before
// anything is read or written, and the message never shows the value.
// A path starting with ~/, which shells expand only in some places (not
// after = in zsh, nor in a config file), is taken in the home folder.
func (c *config) checkKeyFiles() error {
	var err error
	c.cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || !params[f.Name].keyFile {
			return
		}
		v := c.str(f.Name)
		if keyText(v) {
			err = keyTextError(f.Name, c.source(f.Name))
			return
		}
		if rest, ok := strings.CutPrefix(v, "~/"); ok {
			if home, herr := os.UserHomeDir(); herr == nil {
				c.v.Set(f.Name, filepath.Join(home, rest))
			}
		}
	})
	return err
}

// checkRootKey refuses a root_key that is not a list of public keys
// before anything is read.
func (c *config) checkRootKey() error {
	if c.cmd.Flags().Lookup("root_key") == nil {
		return nil
	}
	_, err := c.stores().pinnedKeys()
	return err
}

// urlParams are the parameters whose value is an absolute http(s) base
// URL: what each names, and an example.
var urlParams = map[string]struct{ what, example string }{
	"cdn":        {"the public base URL that serves the store", "https://d123.cloudfront.net"},
	"tracker":    {"the tracker's URL", "https://updates.example.com"},
	"public_url": {"the URL devices reach the tracker at", "https://updates.example.com"},
}

// checkURLParams refuses a URL parameter of the command that is not an
// absolute http(s) URL without query or fragment, before anything is read
// or written.
func (c *config) checkURLParams() error {
	for _, name := range sortedKeys(urlParams) {
		if c.cmd.Flags().Lookup(name) == nil {
			continue
		}
		raw, p := c.str(name), urlParams[name]
		if raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return usageError{fmt.Errorf("%s=%s is not an absolute http(s) URL; give %s, such as %s=%s", name, raw, p.what, name, p.example)}
		}
	}
	return nil
}

// keyTextError says that the key file parameter name, whose value came
// from source, holds a key's text, and how to pass a key file instead.
func keyTextError(name, source string) error {
	from := ""
	if source != "default" {
		from = ", from " + source + ","
	}
	return usageError{withHint(
		fmt.Errorf("%s%s holds the text of a private key, not the path of a key file; nothing was read or written", name, from),
		fmt.Sprintf("write the key to a file with mode 0600 (umask 077 && printf '%%s\\n' \"$KEY\" > deploy.key) and pass its path: %s=deploy.key or DEPLOY_%s=deploy.key; docs/ci.md shows how", name, strings.ToUpper(name)))}
}

// checkTypes refuses a boolean or duration parameter whose value, from the
// environment or a config file, its flag would refuse: viper would read it
// as false or zero without a word.
func (c *config) checkTypes(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		s, ok := c.v.Get(f.Name).(string) // a value from a flag is typed already
		if !ok || err != nil {
			return
		}
		s = strings.TrimSpace(s)
		switch f.Value.Type() {
		case "bool":
			if _, perr := strconv.ParseBool(s); perr != nil {
				err = usageError{fmt.Errorf("%s=%s is not a boolean; use true or false", f.Name, quoteValue(s))}
			}
		case "duration":
			if _, perr := time.ParseDuration(s); perr != nil {
				err = usageError{fmt.Errorf("%s=%s is not a duration; use a number with a unit, such as 30s, 5m or 24h", f.Name, quoteValue(s))}
			}
		}
	})
	return err
}

// pickProfile names the profile: profile= (flags, environment or project),
// else the one named like the app, else "default".
func pickProfile(v *viper.Viper, project map[string]any, uc *userConfig, cmd *cobra.Command) (string, error) {
	pick := func(key string) string {
		if s := v.GetString(key); s != "" {
			return s
		}
		if s, ok := project[key].(string); ok {
			return s
		}
		return ""
	}
	name := pick("profile")
	if name == "" {
		if _, ok := uc.Profiles[pick("app")]; ok {
			return pick("app"), nil
		}
		return "default", nil
	}
	if _, ok := uc.Profiles[name]; !ok && cmd.Name() != "login" {
		return "", usageError{fmt.Errorf("no profile %q in %s; create it with `deploy login profile=%s`", name, userConfigPath(), name)}
	}
	return name, nil
}

// knownKeys are the parameters of every command, and aws_profile: the keys
// a project config or profile may hold.
func knownKeys(root *cobra.Command) map[string]bool {
	known := map[string]bool{"aws_profile": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		root.PersistentFlags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, sub := range c.Commands() {
			if sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(root)
	delete(known, "help")
	delete(known, "version")
	return known
}

// warnEnvTypos warns of a DEPLOY_ variable that names no setting but is a
// letter or two from one (one for a short name): DEPLOY_CHANEL would
// otherwise be ignored without a word. Others, such as another tool's
// DEPLOY_ENV, are left alone.
func warnEnvTypos(w io.Writer, known map[string]bool) {
	names := sortedKeys(known)
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		key, ok := strings.CutPrefix(name, "DEPLOY_")
		if !ok || value == "" || known[strings.ToLower(key)] {
			continue
		}
		key = strings.ToLower(key)
		if near := closest(key, names); near != "" && (len(key) >= 6 || editDistance(key, near) == 1) {
			fmt.Fprintf(w, "warning: %s is no deploy setting and is ignored; did you mean DEPLOY_%s?\n", name, strings.ToUpper(near))
		}
	}
}

// checkKeys refuses keys that no command takes, suggesting the closest.
func checkKeys(m map[string]any, known map[string]bool, where string) error {
	for _, k := range sortedKeys(m) {
		if known[k] {
			switch m[k].(type) {
			case map[string]any, []any:
				return usageError{fmt.Errorf("%s: %s must be one value (text, a number or true/false), not %s", where, k, yamlKind(m[k]))}
			}
			continue
		}
		msg := fmt.Errorf("%s: unknown key %q", where, k)
		if near := closest(k, sortedKeys(known)); near != "" {
			return usageError{withHint(msg, fmt.Sprintf("did you mean %q?", near))}
		}
		return usageError{withHint(msg, "`deploy config` lists the keys")}
	}
	return nil
}

// closest is the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (c *config) str(key string) string { return strings.TrimSpace(c.v.GetString(key)) }
func (c *config) bool(key string) bool  { return c.v.GetBool(key) }

// require makes sure every named parameter has a value. On a terminal it
// prompts for the missing ones; elsewhere it fails naming all of them and
// the ways to pass them.
func (c *config) require(names ...string) error {
	var missing []string
	for _, n := range names {
		if c.str(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if c.env.io.interactive() {
		r := bufio.NewReader(c.env.io.In)
		for _, n := range missing {
			fmt.Fprintf(c.env.io.Err, "%s: ", n)
			line, err := promptLine(c.cmd.Context(), r)
			if ctxErr := c.cmd.Context().Err(); ctxErr != nil {
				return ctxErr
			}
			line = strings.TrimSpace(line)
			if line == "" {
				if err != nil {
					return fmt.Errorf("no %s given", n)
				}
				return usageError{fmt.Errorf("%s is required", n)}
			}
			c.v.Set(n, line)
		}
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "missing %s (not running interactively, so nothing was asked); pass each as", strings.Join(missing, ", "))
	for _, n := range missing {
		fmt.Fprintf(&b, "\n  %s=<value>, --%s <value>, DEPLOY_%s=<value>, or %q in package.json's \"deploy\" object, deploy.yaml or the user profile", n, n, strings.ToUpper(n), n)
	}
	return usageError{errors.New(b.String())}
}

// promptLine reads a line typed at a prompt. Ctrl-C cancels ctx while
// the read waits, so it returns then: the command stops there, having
// saved or published nothing.
func promptLine(ctx context.Context, r *bufio.Reader) (string, error) {
	type read struct {
		line string
		err  error
	}
	got := make(chan read, 1)
	go func() {
		line, err := r.ReadString('\n')
		got <- read{line, err}
	}()
	select {
	case g := <-got:
		return g.line, g.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// projectFiles are the project config files, looked for in the current
// folder and then each parent, like npm looks for package.json.
var projectFiles = []string{"package.json", "deploy.yaml"}

// projectConfig reads the "deploy" object of package.json, or deploy.yaml,
// from the nearest folder holding either, and says which file it read.
// Both holding configuration is an error.
func projectConfig() (map[string]any, string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, "", err
	}
	for {
		pkg, pkgErr := readPackageJSON(filepath.Join(dir, "package.json"))
		yml, ymlErr := readDeployYAML(filepath.Join(dir, "deploy.yaml"))
		if err := errors.Join(pkgErr, ymlErr); err != nil {
			return nil, "", usageError{err}
		}
		switch {
		case pkg != nil && yml != nil:
			return nil, "", usageError{withHint(fmt.Errorf("both %s (its \"deploy\" key) and %s configure deploy", filepath.Join(dir, "package.json"), filepath.Join(dir, "deploy.yaml")), "keep one of them")}
		case pkg != nil:
			return pkg, filepath.Join(dir, "package.json"), nil
		case yml != nil:
			return yml, filepath.Join(dir, "deploy.yaml"), nil
		}
		if exists(filepath.Join(dir, "package.json")) {
			return map[string]any{}, "", nil // the nearest package project has no deploy config
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return map[string]any{}, "", nil
		}
		dir = parent
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readPackageJSON returns the "deploy" object of a package.json, nil if the
// file or the key is missing.
func readPackageJSON(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pkg struct {
		Deploy map[string]any `json:"deploy"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // 2.10 stays "2.10"
	if err := dec.Decode(&pkg); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%s); fix it", path, jsonProblem(err))
	}
	if pkg.Deploy == nil {
		return nil, nil
	}
	return stringify(pkg.Deploy), nil
}

// jsonProblem says what is wrong with a JSON document, without Go type
// names.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "invalid character "), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%q must be an object", te.Field)
	}
	return "unexpected end or content"
}

// readDeployYAML returns the map of a deploy.yaml, nil if it is missing.
func readDeployYAML(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m rawValues
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, usageError{fmt.Errorf("%s: %s; fix the YAML", path, yamlMessage(err))}
	}
	return m, nil
}

// stringify turns numbers and booleans into the strings flags take; lists
// and mappings are kept for checkKeys to refuse.
func stringify(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string, map[string]any, []any:
			out[k] = v
		case nil:
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// yamlKind names the kind of a decoded YAML or JSON value that is not a
// single value.
func yamlKind(v any) string {
	if _, ok := v.([]any); ok {
		return "a list"
	}
	return "a mapping of keys"
}

// yamlTypeError matches a YAML type error's line, as yaml.v3 writes it:
// "line 3: cannot unmarshal !!seq into map[string]interface {}".
var yamlTypeError = regexp.MustCompile(`^line (\d+): cannot unmarshal !!(\w+).* into (.*)$`)

// yamlUnknownField matches yaml.v3's error for a key no field takes:
// "line 3: field colour not found in type manifest.yamlUser".
var yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type `)

// yamlMessage is a YAML decoding error in the user's terms: the line and
// what it holds where key: value pairs or one value belong, without Go's
// type names.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	kinds := map[string]string{"seq": "a list", "map": "a mapping of keys", "str": "text", "int": "a number", "float": "a number", "bool": "true or false", "null": "nothing"}
	var msgs []string
	for _, e := range te.Errors {
		if m := yamlUnknownField.FindStringSubmatch(e); m != nil {
			msgs = append(msgs, fmt.Sprintf("line %s: unknown key %q", m[1], m[2]))
			continue
		}
		m := yamlTypeError.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		found, want := kinds[m[2]], "key: value pairs belong"
		if found == "" {
			found = "a " + m[2]
		}
		switch {
		case strings.HasPrefix(m[3], "[]"):
			want = "a list belongs"
		case !strings.HasPrefix(m[3], "map[") && !strings.Contains(m[3], "."):
			want = "one value belongs"
		}
		msgs = append(msgs, fmt.Sprintf("line %s holds %s where %s", m[1], found, want))
	}
	return strings.Join(msgs, "; ")
}

// configDir is where keys and the user config live: $XDG_CONFIG_HOME/deploy
// or ~/.config/deploy (%AppData%\deploy on Windows).
func configDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "deploy")
	}
	if runtime.GOOS == "windows" {
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, "deploy")
		}
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "deploy")
}

// dataDir holds the embedded default store and the tracker's database:
// $XDG_DATA_HOME/deploy or ~/.local/share/deploy (%LocalAppData%\deploy on
// Windows).
func dataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "deploy")
	}
	if runtime.GOOS == "windows" {
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "deploy")
		}
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "deploy")
}

func defaultKeyFile() string { return filepath.Join(configDir(), "user.key") }

func userConfigPath() string { return filepath.Join(configDir(), "config.yaml") }

func readUserConfig() (*userConfig, error) {
	uc := &userConfig{}
	data, err := os.ReadFile(userConfigPath())
	if errors.Is(err, fs.ErrNotExist) {
		return uc, nil
	}
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a profile written at the top, not under profiles:, is not ignored
	if err := dec.Decode(uc); err != nil && !errors.Is(err, io.EOF) {
		return nil, usageError{fmt.Errorf("%s: %s; profiles go under profiles: (fix it, or run `deploy login` again)", userConfigPath(), yamlMessage(err))}
	}
	return uc, nil
}

// saveProfile writes one profile into the user config, mode 0600.
func saveProfile(name string, values map[string]any) error {
	uc, err := readUserConfig()
	if err != nil {
		return err
	}
	if uc.Profiles == nil {
		uc.Profiles = map[string]rawValues{}
	}
	uc.Profiles[name] = values
	data, err := yaml.Marshal(uc)
	if err != nil {
		return err
	}
	return writeFileAtomic(userConfigPath(), data, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9._-]+`)

// defaultUsername is the login name, made a valid ACL user name.
func defaultUsername() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = filepath.Base(u.Username)
		}
	}
	name = strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(name), "-"), "-._")
	if name == "" {
		return "me"
	}
	return name
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
