package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// config is the merged configuration of one command run.
type config struct {
	v       *viper.Viper
	profile string
	env     *env
}

// userConfig is ~/.config/deploy/config.yaml: named profiles, one per app
// being typical, and the one used when none is named.
type userConfig struct {
	Profiles map[string]map[string]any `yaml:"profiles"`
}

// load merges the configuration for cmd. Precedence, highest first:
//  1. arguments and flags (key=value or --key value)
//  2. DEPLOY_<NAME> environment variables
//  3. the project config: the "deploy" key of ./package.json, or ./deploy.yaml
//  4. the user profile in ~/.config/deploy/config.yaml: profile=NAME, else
//     the profile named like the app, else "default"
//  5. defaults
func (e *env) load(cmd *cobra.Command) (*config, error) {
	v := viper.New()
	v.SetEnvPrefix("DEPLOY")
	v.AutomaticEnv()
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

	project, err := projectConfig()
	if err != nil {
		return nil, err
	}
	uc, err := readUserConfig()
	if err != nil {
		return nil, err
	}
	// The profile's name may itself come from flags, environment or project.
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
			name = pick("app")
		} else {
			name = "default"
		}
	}
	prof, ok := uc.Profiles[name]
	if !ok && pick("profile") != "" && cmd.Name() != "login" {
		return nil, usageError{fmt.Errorf("no profile %q in %s; create it with `deploy login profile=%s`", name, userConfigPath(), name)}
	}
	if err := v.MergeConfigMap(prof); err != nil {
		return nil, err
	}
	if err := v.MergeConfigMap(project); err != nil {
		return nil, err
	}
	return &config{v: v, profile: name, env: e}, nil
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
			line, err := r.ReadString('\n')
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

// projectConfig reads the "deploy" object of ./package.json, or ./deploy.yaml.
func projectConfig() (map[string]any, error) {
	if data, err := os.ReadFile("package.json"); err == nil {
		var pkg struct {
			Deploy map[string]any `json:"deploy"`
		}
		if err := json.Unmarshal(data, &pkg); err != nil {
			return nil, fmt.Errorf("package.json: %w; fix the JSON or remove its \"deploy\" key", err)
		}
		if pkg.Deploy != nil {
			return stringify(pkg.Deploy), nil
		}
	}
	data, err := os.ReadFile("deploy.yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("deploy.yaml: %w", err)
	}
	return stringify(m), nil
}

// stringify turns JSON numbers and booleans into the strings flags take.
func stringify(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
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
	if err := yaml.Unmarshal(data, uc); err != nil {
		return nil, fmt.Errorf("%s: %w; fix it or run `deploy login` again", userConfigPath(), err)
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
		uc.Profiles = map[string]map[string]any{}
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
