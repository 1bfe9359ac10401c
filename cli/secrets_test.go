package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/manifest"
)

// privateKeyText is the PEM text of a new private key, as a CI secret holds it,
// and its base64 body, which no output may show.
func privateKeyText(t *testing.T) (pem, body string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	if _, err := manifest.GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pem = strings.TrimSpace(string(b))
	return pem, strings.Split(pem, "\n")[1]
}

// listing is what dir holds, folders and files, at any depth.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil && p != dir {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A private key's text where the path of a key file belongs (a CI secret
// in DEPLOY_KEY_FILE rather than DEPLOY_SIGNING_KEY) is refused before
// anything is read or written, and never printed: taken as a path, it
// named a new key after the old one and printed it in the CI log.
func TestKeyTextIsNoKeyFile(t *testing.T) {
	pem, body := privateKeyText(t)
	// store and rootKeyFile stand for the parameters of each case's own folder.
	const store, rootKeyFile = "<store>", "<root_key_file>"
	// refused runs args with env and the project file deploy.yaml (if
	// any) in a folder of its own, and checks that deploy refused them,
	// printed no key, wrote nothing and, if advise, said what to do.
	refused := func(t *testing.T, env map[string]string, project string, args []string, advise bool) {
		dir, where := userSetup(t)
		args = slices.Clone(args)
		for i, a := range args {
			args[i] = strings.NewReplacer(store, where[0], rootKeyFile, where[2]).Replace(a)
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		if project != "" {
			if err := os.WriteFile("deploy.yaml", []byte(project), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := listing(t, dir)
		status, out, errOut := run(t, args)
		home := os.Getenv("HOME") // run's own
		if status != exitUsage {
			t.Errorf("exit %d, want %d (usage)\nstdout %q\nstderr %q", status, exitUsage, out, errOut)
		}
		for _, o := range []string{out, errOut} {
			if strings.Contains(o, body) || strings.Contains(o, "-----") {
				t.Errorf("printed the key:\n%s", o)
			}
		}
		if msg := out + errOut; advise && (!strings.Contains(msg, "0600") || !strings.Contains(msg, "docs/ci.md")) {
			t.Errorf("the message does not say what to do:\nstdout %q\nstderr %q", out, errOut)
		}
		if after := listing(t, dir); !slices.Equal(before, after) {
			t.Errorf("wrote in the working folder: before %v, after %v", before, after)
		}
		if made := listing(t, home); len(made) > 0 {
			t.Errorf("wrote %v in the home folder", made)
		}
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		project string // deploy.yaml
		args    []string
	}{
		{"upload, DEPLOY_KEY_FILE", map[string]string{"DEPLOY_KEY_FILE": pem}, "", []string{"upload", "app=demo", "dir=www", store, rootKeyFile}},
		{"keys show, DEPLOY_KEY_FILE", map[string]string{"DEPLOY_KEY_FILE": pem}, "", []string{"keys", "show"}},
		{"keys show, key_file=", nil, "", []string{"keys", "show", "key_file=" + pem}},
		{"keys show, --key_file", nil, "", []string{"keys", "show", "--key_file", pem}},
		{"keys generate, key_file=", nil, "", []string{"keys", "generate", "key_file=" + pem}},
		{"keys show root=1, one line of it", nil, "", []string{"keys", "show", "root=1", "root_key_file=-----BEGIN PRIVATE KEY-----"}},
		{"init, DEPLOY_ROOT_KEY_FILE", map[string]string{"DEPLOY_ROOT_KEY_FILE": pem}, "", []string{"init", store}},
		{"upload, --json", map[string]string{"DEPLOY_ROOT_KEY_FILE": pem}, "", []string{"upload", "app=demo", "dir=www", store, "--json"}},
		{"serve, halt_key_file=", nil, "", []string{"serve", "addr=127.0.0.1:0", store, "halt_key_file=" + pem}},
		{"acl resign, new_root_key_file=", nil, "", []string{"acl", "resign", store, rootKeyFile, "new_root_key_file=" + pem}},
		{"login, DEPLOY_KEY_FILE", map[string]string{"DEPLOY_KEY_FILE": pem}, "", []string{"login", "profile=ci", store}},
		{"upload, DEPLOY_KEY_FILE, the base64 only", map[string]string{"DEPLOY_KEY_FILE": body}, "", []string{"upload", "app=demo", "dir=www", store, rootKeyFile}},
		{"keys show, key_file=, the base64 only", nil, "", []string{"keys", "show", "key_file=" + body}},
		{"keys show, key_file=, a seed in hex", nil, "", []string{"keys", "show", "key_file=" + strings.Repeat("ab", 32)}},
		{"keys show, key_file=, a seed in base64", nil, "", []string{"keys", "show", "key_file=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}},
		{"keys show, key_file=, a key in URL-safe base64", nil, "", []string{"keys", "show", "key_file=" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 64))}},
		{"keys show, key_file=, an OpenSSH body", nil, "", []string{"keys", "show", "key_file=b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"}},
		{"upload, deploy.yaml", nil, "key_file: |\n  " + strings.ReplaceAll(pem, "\n", "\n  ") + "\n", []string{"upload", "app=demo", "dir=www", store, rootKeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) { refused(t, tc.env, tc.project, tc.args, true) })
	}
	// Nor is a key echoed in the message about a stray argument.
	for name, args := range map[string][]string{
		"a stray argument":         {"keys", "show", pem},
		"a misspelt parameter":     {"keys", "show", "key-file=" + pem},
		"a command after the key":  {"rollout", "app=demo", "key_file=" + pem, "pause"},
		"a command before the key": {"rollout", "app=demo", "pause", "key " + pem},
		"a boolean":                {"upload", "--dry_run=" + pem},
	} {
		t.Run(name, func(t *testing.T) { refused(t, nil, "", args, false) })
	}

	// deploy config shows where such a value comes from, not the value.
	isolate(t)
	t.Setenv("DEPLOY_KEY_FILE", pem)
	t.Setenv("DEPLOY_ROOT_KEY_FILE", pem)
	t.Setenv("DEPLOY_HALT_KEY_FILE", pem)
	t.Setenv("DEPLOY_ROOT_KEY", pem)
	status, out, errOut := run(t, []string{"config"})
	if status != exitOK || strings.Contains(out+errOut, body) || strings.Contains(out+errOut, "-----") {
		t.Fatalf("deploy config: exit %d\n%s%s", status, out, errOut)
	}
	for _, k := range []string{"key_file", "root_key_file", "halt_key_file", "root_key"} {
		if !strings.Contains(out, "environment DEPLOY_"+strings.ToUpper(k)) {
			t.Errorf("deploy config does not say where %s comes from:\n%s", k, out)
		}
	}
	status, out, _ = run(t, []string{"config", "--json"})
	var doc struct{ Values map[string]configEntry }
	if err := json.Unmarshal([]byte(out), &doc); status != exitOK || err != nil {
		t.Fatalf("deploy config --json: exit %d, %v\n%s", status, err, out)
	}
	if v := doc.Values["key_file"]; strings.Contains(out, body) || v.Value == "" || v.Source != "environment DEPLOY_KEY_FILE" {
		t.Errorf("deploy config --json: key_file = %+v\n%s", v, out)
	}
}

// A key's text typed at deploy login's key_file prompt is refused too,
// before anything is saved.
func TestKeyTextTypedAtAPrompt(t *testing.T) {
	dir, _ := userSetup(t)
	t.Setenv("CI", "")
	home := filepath.Join(dir, "home")
	out, err := onTerminal(t, []string{"HOME=" + home}, func(tty io.Writer) {
		time.Sleep(300 * time.Millisecond) // the first prompt is up
		io.WriteString(tty, strings.Repeat("\n", len(loginFields)-1)+"-----BEGIN PRIVATE KEY-----\n")
	}, "login", "profile=ci")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(out, "key_file holds the text of a private key") {
		t.Errorf("deploy login, key text at the key_file prompt: %v\n%s", err, out)
	}
	if made := listing(t, home); len(made) > 0 {
		t.Errorf("deploy login wrote %v", made)
	}
}

// A database password, in a postgres:// URL's user info or its password
// parameter, or in a key=value string, is shown masked wherever the db
// value is, as stats_token is.
func TestDBPasswordIsMasked(t *testing.T) {
	_, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	secret := regexp.MustCompile(`SECRET|P%40SS|P@SS`)
	for _, db := range []string{
		"postgres://u:USERSECRET@h/d?password=QUERYSECRET&sslmode=disable",
		"postgresql://u:P%40SS@h/d",
		"postgres://u@h/d?sslmode=disable&password=P%40SS",
		"host=h user=u password=KVSECRET dbname=d",
		"host=h user=u password='KV SECRET' dbname=d",
	} {
		t.Setenv("DEPLOY_DB", db)
		for _, args := range [][]string{{"config"}, {"config", "--json"}} {
			status, out, errOut := run(t, args)
			if status != exitOK || secret.MatchString(out+errOut) || !strings.Contains(out, "xxxxx") {
				t.Errorf("DEPLOY_DB=%s deploy %q: exit %d\n%s%s", db, args, status, out, errOut)
			}
		}
	}
	t.Setenv("DEPLOY_DB", "")
	for _, db := range []string{
		"postgres://u@127.0.0.1:1/d?password=SECRET",
		"postgres://u:SECRET@127.0.0.1:1/d?sslmode=bogus",
		"postgres://u@127.0.0.1:1/d?password=SECRET&sslmode=bogus",
		"postgres://u@127.0.0.1:1/d?sslmode=bogus&password=P%40SS",
		"postgres://u:SECRET@127.0.0.1:1/d%zz",
		"mysql://u:SECRET@127.0.0.1:1/d?password=SECRET",
	} {
		for _, json := range []string{"--json=0", "--json"} {
			args := with(where, "serve", "addr=127.0.0.1:0", "db="+db, json)
			status, out, errOut := run(t, args)
			if status == exitOK || secret.MatchString(out+errOut) || !strings.Contains(out+errOut, "db") {
				t.Errorf("deploy serve db=%s %s: exit %d\n%s%s", db, json, status, out, errOut)
			}
		}
	}
}

// redactDB masks every password a db value can hold, and changes
// nothing else; an error quoting one shows it masked.
func TestRedactDB(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://u:pw@h:5432/d?sslmode=disable":        "postgres://u:xxxxx@h:5432/d?sslmode=disable",
		"postgres://u@h/d?sslmode=disable&password=p%40s": "postgres://u@h/d?sslmode=disable&password=xxxxx",
		"postgres://u@h/d":                     "postgres://u@h/d",
		"postgres://u:p@h/d%zz?password=q&x=1": "postgres://u:xxxxx@h/d%zz?password=xxxxx&x=1",
		"host=h password=pw user=u":            "host=h password=xxxxx user=u",
		`host=h password = 'p w\' x' user=u`:   "host=h password = xxxxx user=u",
		"sqlite:///var/lib/my state/events.db": "sqlite:///var/lib/my state/events.db",
		"/var/lib/deploy/events.db":            "/var/lib/deploy/events.db",
		// Passwords that break parsing, or parse into the host.
		"postgres://deploy:s3cr#t@db.example.com/deploy": "postgres://deploy:xxxxx@db.example.com/deploy",
		"postgres://deploy:s3cr/t@db.example.com/deploy": "postgres://deploy:xxxxx@db.example.com/deploy",
		"postgres://deploy:s3cr?t@db.example.com/deploy": "postgres://deploy:xxxxx@db.example.com/deploy",
		"postgres://deploy:12#34@db.example.com/deploy":  "postgres://deploy:xxxxx@db.example.com/deploy",
	} {
		if got := redactDB(raw); got != want {
			t.Errorf("redactDB(%q) = %q, want %q", raw, got, want)
		}
	}
	raw := "postgres://u:p%40ss@h/d?password=q%26r"
	u, _ := url.Parse(raw)
	err := redactedError{fmt.Errorf("cannot parse %s: user u, password p@ss or q&r", raw), passwords(raw, u)}
	if got := err.Error(); regexp.MustCompile(`p@ss|p%40ss|q&r|q%26r`).MatchString(got) {
		t.Errorf("redactedError = %q", got)
	}
}

// A libpq key=value connection string is refused, naming the URL form,
// where it was taken as the path of an SQLite file to create.
func TestDBKeyValueIsRefused(t *testing.T) {
	dir, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	before := listing(t, dir)
	for _, db := range []string{
		"host=127.0.0.1 port=1 user=u password=KVSECRET dbname=d",
		"dbname=d",
	} {
		for _, args := range [][]string{with(where, "serve", "addr=127.0.0.1:0", "db="+db), with(where, "serve", "addr=127.0.0.1:0", "db="+db, "--json")} {
			status, out, errOut := run(t, args)
			if status != exitUsage || strings.Contains(out+errOut, "KVSECRET") || !strings.Contains(out+errOut, "db=postgres://") {
				t.Errorf("deploy %q: exit %d, want %d (usage) and the URL form\n%s%s", args, status, exitUsage, out, errOut)
			}
		}
	}
	if after := listing(t, dir); !slices.Equal(before, after) {
		t.Errorf("wrote in the working folder: before %v, after %v", before, after)
	}
}

// A database that refuses the user or password exits 3 (not_granted),
// saying what to check, without the password.
func TestDBRefusedIsNotGranted(t *testing.T) {
	_, where := userSetup(t)
	if status, _, errOut := run(t, with(where, "upload", "app=demo", "dir=www")); status != exitOK {
		t.Fatalf("upload: exit %d\n%s", status, errOut)
	}
	url := pgtest.Database(t)
	db := strings.Replace(url, "postgres://postgres@", "postgres://nosuchrole:SECRET@", 1)
	status, _, errOut := run(t, with(where, "serve", "addr=127.0.0.1:0", "db="+db))
	if status != exitNotGranted || !strings.Contains(errOut, "the database refused the user or password") ||
		!strings.Contains(errOut, "check the user and password in db=") || strings.Contains(errOut, "SECRET") {
		t.Fatalf("serve with a role that does not exist: exit %d\n%s", status, errOut)
	}
	// A database that does not exist is named, in one line.
	db = strings.Replace(url[:strings.LastIndexByte(url, '/')], "postgres://postgres@", "postgres://postgres:SECRET@", 1) + "/nosuchdb?sslmode=disable"
	status, _, errOut = run(t, with(where, "serve", "addr=127.0.0.1:0", "db="+db))
	if status != exitUnavailable || !strings.Contains(errOut, `the database does not exist: database "nosuchdb" does not exist; create it (createdb nosuchdb)`) ||
		strings.Contains(errOut, "SECRET") || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
		t.Fatalf("serve with a database that does not exist: exit %d\n%s", status, errOut)
	}
}
