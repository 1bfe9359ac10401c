package cli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cartona/deploy/cli"
	"github.com/cartona/deploy/internal/pgtest"
	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
)

// deployMainEnv=1 makes the test binary run deploy itself, for tests that
// start deploy processes outside scripts (on a terminal in matrix_test.go,
// or several `deploy serve`).
const deployMainEnv = "DEPLOY_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(deployMainEnv) != "" {
		deployMain()
	}
	testscript.Main(pgtest.Wrap(m), map[string]func(){"deploy": deployMain})
}

// deployMain runs as cmd/deploy's main.
func deployMain() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, "v0.0.0-test", os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}

// TestScripts runs the scripts that use the embedded default store.
func TestScripts(t *testing.T) {
	testscript.Run(t, params("testdata/script", func(e *testscript.Env) string {
		return "file://" + e.WorkDir + "/store"
	}))
}

// TestStores runs the scripts under testdata/stores against both backends:
// a local folder, and a real S3 server (versitygw) on loopback.
func TestStores(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		testscript.Run(t, params("testdata/stores", func(e *testscript.Env) string {
			return "file://" + e.WorkDir + "/store"
		}))
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t).NewBucket(t)
		srv.Setenv(t) // for the commands that go around the CLI
		p := params("testdata/stores", func(e *testscript.Env) string {
			return srv.URL(filepath.Base(e.WorkDir)) // a prefix per script
		})
		setup := p.Setup
		p.Setup = func(e *testscript.Env) error {
			for _, kv := range srv.Env() {
				k, v, _ := strings.Cut(kv, "=")
				e.Setenv(k, v)
			}
			return setup(e)
		}
		testscript.Run(t, p)
	})
}

// cloudFront stands in for the CloudFront API: it records the invalidation
// paths of SigV4-signed CreateInvalidation requests.
type cloudFront struct {
	*httptest.Server
	mu    sync.Mutex
	paths map[string][]string // by distribution id
}

var fakeCloudFront = func() *cloudFront {
	cf := &cloudFront{paths: map[string][]string{}}
	cf.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/2020-05-31/distribution/")
		id, ok2 := strings.CutSuffix(id, "/invalidation")
		if !ok || !ok2 || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=TESTKEY/") {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		if id == "EMISSING" {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The specified distribution does not exist.</Message></Error></ErrorResponse>`)
			return
		}
		var body struct {
			Paths struct {
				Items []string `xml:"Items>Path"`
			} `xml:"Paths"`
		}
		if err := xml.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cf.mu.Lock()
		cf.paths[id] = append(cf.paths[id], body.Paths.Items...)
		cf.mu.Unlock()
		w.Header().Set("Location", "https://cloudfront.amazonaws.com"+r.URL.Path+"/I1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `<?xml version="1.0"?><Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>I1</Id><Status>InProgress</Status><CreateTime>2026-01-01T00:00:00Z</CreateTime></Invalidation>`)
	}))
	return cf
}()

// invalidated ID PATH... checks the paths invalidated in distribution ID.
func invalidated(ts *testscript.TestScript, neg bool, args []string) {
	fakeCloudFront.mu.Lock()
	got := strings.Join(fakeCloudFront.paths[args[0]], " ")
	fakeCloudFront.mu.Unlock()
	if want := strings.Join(args[1:], " "); (got == want) == neg {
		ts.Fatalf("distribution %s invalidated [%s], want [%s]", args[0], got, want)
	}
}

func params(dir string, store func(*testscript.Env) string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(e *testscript.Env) error {
			e.Setenv("AWS_ENDPOINT_URL_CLOUDFRONT", fakeCloudFront.URL)
			if e.Getenv("AWS_ACCESS_KEY_ID") == "" {
				e.Setenv("AWS_ACCESS_KEY_ID", "TESTKEY")
				e.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
			}
			e.Setenv("PORT", freePort())
			e.Setenv("METRICS_PORT", freePort())
			e.Setenv("HOME", e.WorkDir+"/home")
			e.Setenv("USER", "tester")
			e.Setenv("STORE", store(e))
			e.Setenv("CI", "true")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"envfile":       envFile,
			"mode":          fileMode,
			"storeget":      storeGet,
			"storeput":      storePut,
			"storedel":      storeDel,
			"storekeys":     storeKeys,
			"forge-latest":  forgeLatest,
			"forge-acl":     forgeACL,
			"jsonfield":     jsonField,
			"expand":        expand,
			"invalidated":   invalidated,
			"httpget":       httpGet,
			"status":        exitStatus,
			"storevariants": storeVariants,
			"cohortdevice":  cohortDevice,
			"offers":        offersCmd,
		},
	}
}

// envfile VAR FILE sets VAR to the trimmed content of FILE.
func envFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// httpget URL [STATUS] fetches URL, retrying for up to 10 s while nothing
// listens, checks the status (200 by default) and writes the body to stdout.
func httpGet(ts *testscript.TestScript, neg bool, args []string) {
	want := http.StatusOK
	if len(args) == 2 {
		want, _ = strconv.Atoi(args[1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(args[0])
		if err != nil {
			if time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			ts.Fatalf("GET %s: %v", args[0], err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Stdout().Write(body)
		if resp.StatusCode != want {
			ts.Fatalf("GET %s: status %d, want %d: %s", args[0], resp.StatusCode, want, body)
		}
		return
	}
}

// expand FILE replaces $VAR in FILE with the script's environment.
func expand(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.MkAbs(args[0])
	ts.Check(os.WriteFile(p, []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o644))
}

// mode FILE PERM checks a file's permission bits (octal).
func fileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// jsonfield FILE PATH WANT checks a field of a JSON file (dot-separated
// path, numbers index arrays).
func jsonField(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonfield FILE PATH WANT")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &v))
	for _, p := range strings.Split(args[1], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				ts.Fatalf("%s: no element %s", args[1], p)
			}
			v = x[i]
		default:
			ts.Fatalf("%s: cannot index %T with %s", args[1], v, p)
		}
	}
	if got := fmt.Sprint(v); (got == args[2]) == neg {
		ts.Fatalf("%s = %q, want %q", args[1], got, args[2])
	}
}

func openStore(ts *testscript.TestScript) store.Store {
	s, err := cli.OpenStore(context.Background(), ts.Getenv("STORE"))
	ts.Check(err)
	return s
}

// storeget KEY FILE copies an object out of $STORE, around the CLI.
func storeGet(ts *testscript.TestScript, neg bool, args []string) {
	rc, _, err := openStore(ts).Get(context.Background(), args[0])
	ts.Check(err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), data, 0o644))
}

// storekeys PREFIX lists the keys of $STORE under PREFIX, one a line,
// around the CLI.
func storeKeys(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: storekeys PREFIX")
	}
	infos, err := openStore(ts).List(context.Background(), args[0])
	ts.Check(err)
	for _, in := range infos {
		fmt.Fprintln(ts.Stdout(), in.Key)
	}
}

// storeput FILE KEY writes straight into $STORE, as an attacker with store
// credentials could.
func storePut(ts *testscript.TestScript, neg bool, args []string) {
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	_, err = openStore(ts).Put(context.Background(), args[1], bytes.NewReader(data), store.PutOptions{})
	ts.Check(err)
}

// storedel KEY deletes KEY from $STORE.
func storeDel(ts *testscript.TestScript, neg bool, args []string) {
	ts.Check(openStore(ts).Delete(context.Background(), args[0]))
}

// forge-latest KEYFILE APP CHANNEL signs, with KEYFILE, a latest.json for
// the channel's current build with a higher sequence, and writes it
// straight into $STORE.
func forgeLatest(ts *testscript.TestScript, neg bool, args []string) {
	key, err := manifest.LoadKey(ts.MkAbs(args[0]))
	ts.Check(err)
	s := openStore(ts)
	rc, _, err := s.Get(context.Background(), manifest.LatestKey(args[1], args[2]))
	ts.Check(err)
	data, _ := io.ReadAll(rc)
	rc.Close()
	var env manifest.Envelope
	ts.Check(json.Unmarshal(data, &env))
	var l manifest.Latest
	ts.Check(json.Unmarshal(env.Payload, &l))
	l.Sequence += 10
	l.Issued, l.Expires = time.Now().UTC(), time.Now().UTC().Add(time.Hour)
	forged, err := manifest.Sign(manifest.TypeLatest, l, ed25519.PrivateKey(key))
	ts.Check(err)
	_, err = s.Put(context.Background(), manifest.LatestKey(args[1], args[2]), bytes.NewReader(forged.Marshal()), store.PutOptions{})
}

// forge-acl KEYFILE VERSION signs, with KEYFILE, the store's ACL with its
// version set to VERSION (any integer, even one the format refuses), and
// writes it straight into $STORE.
func forgeACL(ts *testscript.TestScript, neg bool, args []string) {
	key, err := manifest.LoadKey(ts.MkAbs(args[0]))
	ts.Check(err)
	s := openStore(ts)
	rc, _, err := s.Get(context.Background(), manifest.ACLKey)
	ts.Check(err)
	data, _ := io.ReadAll(rc)
	rc.Close()
	var env manifest.Envelope
	ts.Check(json.Unmarshal(data, &env))
	var acl map[string]json.RawMessage
	ts.Check(json.Unmarshal(env.Payload, &acl))
	acl["version"] = json.RawMessage(args[1])
	payload, err := json.Marshal(acl)
	ts.Check(err)
	forged := manifest.SignPayload(manifest.TypeACL, payload, ed25519.PrivateKey(key))
	_, err = s.Put(context.Background(), manifest.ACLKey, bytes.NewReader(forged.Marshal()), store.PutOptions{})
	ts.Check(err)
}

// status N PROG ARGS... runs PROG and checks that it exits with status N.
func exitStatus(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: status N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if (got == want) == neg {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
	ts.Check(err)
}

// storevariants sets STORE_1, STORE_2 and STORE_3 to other spellings of
// $STORE (trailing, doubled and dot segments; file:/abs), and STORE_NONE to
// a store that does not exist.
func storeVariants(ts *testscript.TestScript, neg bool, args []string) {
	st := ts.Getenv("STORE")
	if dir, ok := strings.CutPrefix(st, "file://"); ok {
		parent, base := filepath.Split(dir)
		ts.Setenv("STORE_1", st+"/")
		ts.Setenv("STORE_2", "file://"+parent+"/"+base)
		ts.Setenv("STORE_3", "file:"+parent+"./"+base)
		ts.Setenv("STORE_NONE", "file://"+parent+"none")
		return
	}
	bucketPrefix, query, _ := strings.Cut(strings.TrimPrefix(st, "s3://"), "?")
	bucket, prefix, _ := strings.Cut(bucketPrefix, "/")
	ts.Setenv("STORE_1", "s3://"+bucket+"/"+prefix+"/?"+query)
	ts.Setenv("STORE_2", "s3://"+bucket+"//"+prefix+"?"+query)
	ts.Setenv("STORE_3", "s3://"+bucket+"//"+prefix+"//?"+query)
	ts.Setenv("STORE_NONE", "s3://"+bucket+"/"+prefix+"-none?"+query)
}

// cohortdevice VAR APP CHANNEL ROLLOUT LOW HIGH sets VAR to the first
// device id "device-N" whose bucket in the rollout is from LOW to below
// HIGH percent (manifest.Cohort): such a device gets a candidate at p
// percent when HIGH <= p, and not when p <= LOW.
func cohortDevice(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 6 {
		ts.Fatalf("usage: cohortdevice VAR APP CHANNEL ROLLOUT LOW HIGH")
	}
	low, err := strconv.ParseInt(args[4], 10, 64)
	ts.Check(err)
	high, err := strconv.ParseInt(args[5], 10, 64)
	ts.Check(err)
	for i := range 100000 {
		id := fmt.Sprintf("device-%d", i)
		if b := manifest.Cohort(args[1], args[2], args[3], id); b >= low*100 && b < high*100 {
			ts.Setenv(args[0], id)
			return
		}
	}
	ts.Fatalf("no device in cohort %s-%s%%", args[4], args[5])
}

// offers reports the version of the build a tracker offers a device on
// native version native, running its builtin bundle, through the seed's
// API and through the Capgo plugin's update endpoint ("" for none).
// channel "" is the default.
func offers(base, app, channel, device, native string) (seed, capgo string, err error) {
	q := url.Values{"app": {app}, "device": {device}, "native": {native}}
	if channel != "" {
		q.Set("channel", channel)
	}
	var s struct{ Build *struct{ Build string } }
	if err := call(http.MethodGet, base+"/build/latest?"+q.Encode(), nil, &s); err != nil {
		return "", "", err
	}
	if s.Build != nil {
		seed = s.Build.Build
	}
	body := map[string]any{"platform": "android", "device_id": device, "app_id": "com.cartona." + app, "version_build": native,
		"version_name": "builtin", "plugin_version": "8.51.14", "is_emulator": false, "is_prod": true, "defaultChannel": channel}
	var c struct{ Version string }
	err = call(http.MethodPost, base+"/capgo/"+app+"/updates", body, &c)
	return seed, c.Version, err
}

// call sends a request with body as JSON, if any, and decodes a 200
// answer into out.
func call(method, url string, body, out any) error {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}

// offers APP[@CHANNEL] DEVICE NATIVE VERSION checks that the tracker
// `deploy serve` runs on $PORT offers DEVICE on NATIVE the build of
// VERSION ("none" for none) through the seed's API and the Capgo plugin's
// update endpoint. It retries for up to 10 s while the tracker starts or
// its cached manifest is older than the store's.
func offersCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: offers APP[@CHANNEL] DEVICE NATIVE VERSION")
	}
	app, channel, _ := strings.Cut(args[0], "@")
	want := args[3]
	if want == "none" {
		want = ""
	}
	base := "http://127.0.0.1:" + ts.Getenv("PORT")
	var seed, capgo string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if seed, capgo, err = offers(base, app, channel, args[1], args[2]); err == nil && seed == want && capgo == want {
			return
		}
	}
	ts.Fatalf("device %s on native %s: seed API offers %q, update endpoint %q (%v); want %q", args[1], args[2], seed, capgo, err, want)
}
