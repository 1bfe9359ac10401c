package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/s3"
)

// storeOptions are the parameters that locate the store and the keys.
type storeOptions struct {
	Store       string `param:"store"`
	RootKey     string `param:"root_key"`
	RootKeyFile string `param:"root_key_file"`
	KeyFile     string `param:"key_file"`
	AWSProfile  string `param:"aws_profile"`
}

func (o *storeOptions) stores() *storeOptions { return o }

// storeFlags adds the parameters that locate the store and the keys.
func storeFlags(c *cobra.Command) { declare(c, &storeOptions{}) }

func defaultStoreURL() string { return "file://" + filepath.ToSlash(filepath.Join(dataDir(), "store")) }

// URL is the store URL, the default one if none is set.
func (o *storeOptions) URL() string {
	if o.Store != "" {
		return o.Store
	}
	return defaultStoreURL()
}

// isLocal reports whether the store is a local folder.
func (o *storeOptions) isLocal() bool {
	loc, err := parseStore(o.URL())
	return err == nil && loc.dir != ""
}

// location is a parsed store URL: a local folder or an S3 URL.
type location struct {
	dir string   // absolute and clean, for a local folder
	s3  *url.URL // for S3
}

// scheme matches a URL scheme; one letter is a Windows drive, not a scheme.
var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]+:`)

// parseStore reads a store URL: file:///path, file:/path, file://./rel, a
// bare path (a local folder), or s3://bucket/prefix?region=...
func parseStore(raw string) (location, error) {
	if !scheme.MatchString(raw) {
		return localStore(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return location{}, usageError{fmt.Errorf("store %q is not a URL: %v; use file:///path or s3://bucket/prefix", raw, err)}
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		p := u.Path
		switch {
		case u.Opaque != "": // file:relative/path
			p = u.Opaque
		case u.Host != "" && u.Host != "localhost": // file://relative/path names a host
			p = u.Host + u.Path
		default:
			return localStore(filepath.FromSlash(p))
		}
		abs, _ := filepath.Abs(filepath.FromSlash(p))
		return location{}, usageError{withHint(fmt.Errorf("store %q is not an absolute file URL", raw),
			"write a local folder with its absolute path, as store=file://"+filepath.ToSlash(abs))}
	case "s3":
		return location{s3: u}, nil
	default:
		return location{}, usageError{fmt.Errorf("unknown store scheme %q in %q; use file:///path or s3://bucket/prefix", u.Scheme, raw)}
	}
}

// parseStoreParam reads store= as users give it: a URL. A bare path is
// refused, with the file:// URL it may mean.
func parseStoreParam(raw string) (location, error) {
	if !scheme.MatchString(raw) {
		abs, _ := filepath.Abs(raw)
		return location{}, usageError{withHint(fmt.Errorf("store %q is not a URL", raw),
			"write a local folder as store=file://"+filepath.ToSlash(abs)+", or an S3 bucket as store=s3://bucket/prefix?region=REGION")}
	}
	return parseStore(raw)
}

func localStore(p string) (location, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return location{}, err
	}
	return location{dir: abs}, nil
}

// open opens the store; unless create is set, a local folder must exist.
func (l location) open(ctx context.Context, create bool) (store.Store, error) {
	if l.s3 != nil {
		st, err := s3.Open(ctx, l.s3)
		if err != nil {
			return nil, usageError{err}
		}
		return st, nil
	}
	if create {
		st, err := file.Open(l.dir)
		if errors.Is(err, file.ErrNotFolder) { // as a store that does not exist
			return nil, unavailableError{err}
		}
		return st, err
	}
	if fi, err := os.Stat(l.dir); err == nil && !fi.IsDir() {
		return nil, unavailableError{fmt.Errorf("no store at %s: it is a file, not a folder; check store=", l.dir)}
	} else if err != nil {
		return nil, unavailableError{fmt.Errorf("no store at %s: the folder does not exist; check store=, or create the store with `deploy init` (or a first `deploy upload` to a local store)", l.dir)}
	}
	return &file.Store{Root: l.dir}, nil
}

// exists checks that the store l names, opened as st, is there, for the
// commands that never create one (with needACL, initialised too). open checked a local folder already. An
// S3 store has no folder: it is there when its bucket is and `deploy init`
// wrote acl.json under its prefix, so a typo in either is reported here,
// naming the store, as a missing folder is. Any other failure is left to
// the command: a store that cannot be reached right now may well exist.
func (l location) exists(ctx context.Context, st store.Store, needACL bool) error {
	if l.s3 == nil {
		return nil
	}
	where := strings.TrimSuffix(st.Location(""), "/")
	switch _, err := st.Stat(ctx, manifest.ACLKey); {
	case errors.Is(err, store.ErrNoBucket):
		return unavailableError{fmt.Errorf("no store at %s: the bucket %s does not exist; check the bucket in store=, or create the bucket", where, l.s3.Host)}
	case errors.Is(err, fs.ErrNotExist) && needACL:
		return unavailableError{fmt.Errorf("no store at %s: it has no %s; check the bucket and prefix in store=, or create the store with `deploy init`", where, manifest.ACLKey)}
	}
	return nil
}

// identity names the store the same however its URL is spelled: a local
// folder by its clean absolute path (symbolic links resolved), S3 by its
// endpoint, bucket and clean prefix.
func (l location) identity() string {
	if l.s3 == nil {
		dir := l.dir
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		return "file://" + filepath.ToSlash(dir)
	}
	prefix := strings.Trim(path.Clean("/"+l.s3.Path), "/")
	id := "s3://" + strings.ToLower(l.s3.Host) + "/" + prefix
	if ep := strings.TrimRight(l.s3.Query().Get("endpoint"), "/"); ep != "" {
		id += " at " + strings.ToLower(ep)
	}
	return id
}

// OpenStore opens the store at raw, creating a local folder if needed:
// file:///path, file:/path, a bare path, or
// s3://bucket/prefix?region=...&endpoint=...&path_style=true.
func OpenStore(ctx context.Context, raw string) (store.Store, error) {
	loc, err := parseStore(raw)
	if err != nil {
		return nil, err
	}
	return loc.open(ctx, true)
}

// userKey loads the user's signing key. When create is set it makes a
// missing key, saying so on w, but only at the default path: a key_file
// the user named that does not exist is a typo more often than a wish for
// a new key, which `deploy keys generate` makes.
func (o *storeOptions) userKey(create bool, w io.Writer) (ed25519.PrivateKey, error) {
	named := o.KeyFile != defaultKeyFile()
	if !create || named {
		k, err := manifest.LoadKey(o.KeyFile)
		if errors.Is(err, fs.ErrNotExist) && named {
			return nil, usageError{fmt.Errorf("no signing key at %s (key_file); check the path, or create a key there with `deploy keys generate key_file=%s`", o.KeyFile, o.KeyFile)}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no signing key at %s; create one with `deploy keys generate`", o.KeyFile)
		}
		return k, err
	}
	return o.keyOrNew(w)
}

// keyOrNew loads the signing key at key_file, creating it if missing and
// saying so on w.
func (o *storeOptions) keyOrNew(w io.Writer) (ed25519.PrivateKey, error) {
	k, created, err := manifest.LoadOrGenerateKey(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", o.KeyFile, err)
	}
	if created {
		fmt.Fprintf(w, "created your signing key at %s (mode 0600); your public key is %s\n", o.KeyFile, manifest.FormatPublicKey(manifest.Public(k)))
	}
	return k, nil
}

// rootKey loads the administrator's root private key.
func (o *storeOptions) rootKey() (ed25519.PrivateKey, error) {
	k, err := manifest.LoadKey(o.RootKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{fmt.Errorf("no root key at %s; pass root_key_file=<path> (the administrator's key from `deploy init`)", o.RootKeyFile)}
	}
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	return k, nil
}

// pinnedKeys parses root_key, if given, refusing one that does not parse
// or names no key.
func (o *storeOptions) pinnedKeys() ([]ed25519.PublicKey, error) {
	if o.RootKey == "" {
		return nil, nil
	}
	keys, err := manifest.ParsePublicKeys(o.RootKey)
	if err != nil {
		return nil, usageError{fmt.Errorf("root_key: %w", err)}
	}
	if len(keys) == 0 {
		return nil, usageError{fmt.Errorf("root_key %q names no key; pass the administrator's root public key, ed25519:...", o.RootKey)}
	}
	return keys, nil
}

// rootTrust returns the pinned root keys: root_key if set, else the public
// half of the local root key file.
func (o *storeOptions) rootTrust() (manifest.Trust, error) {
	if o.RootKey != "" {
		keys, err := o.pinnedKeys()
		return manifest.Trust{Roots: keys}, err
	}
	if _, err := os.Stat(o.RootKeyFile); err == nil {
		k, err := o.rootKey()
		if err != nil {
			return manifest.Trust{}, err
		}
		return manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(k)}}, nil
	}
	return manifest.Trust{}, usageError{errors.New("no root key pinned; pass root_key=<the administrator's root public key, ed25519:...> or save it with `deploy login`")}
}

// The store and key parameters as `deploy login` (login.go) reads them.

func (c *config) stores() *storeOptions {
	return &storeOptions{Store: c.str("store"), RootKey: c.str("root_key"), RootKeyFile: c.str("root_key_file"), KeyFile: c.str("key_file")}
}

func (c *config) storeURL() string { return c.stores().URL() }

// openStore opens the store, which must exist.
func (c *config) openStore(ctx context.Context) (store.Store, error) {
	loc, err := parseStoreParam(c.storeURL())
	if err != nil {
		return nil, err
	}
	return loc.open(ctx, false)
}

func (c *config) userKey(create bool) (ed25519.PrivateKey, error) {
	return c.stores().userKey(create, c.env.io.Err)
}
