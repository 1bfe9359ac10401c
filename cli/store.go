package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/s3"
)

// storeFlags adds the parameters that locate the store and the keys.
func storeFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("store", "", "store URL: file:///path (default "+defaultStoreURL()+") or s3://bucket/prefix?region=...")
	f.String("root_key", "", "pinned root public key(s), ed25519:..., comma-separated (default: the public half of root_key_file)")
	f.String("root_key_file", defaultRootKeyFile(), "the administrator's root private key")
	f.String("key_file", filepath.Join(configDir(), "user.key"), "your signing key file (private, mode 0600)")
}

func defaultStoreURL() string { return "file://" + filepath.ToSlash(filepath.Join(dataDir(), "store")) }

func (c *config) storeURL() string {
	if s := c.str("store"); s != "" {
		return s
	}
	return defaultStoreURL()
}

func (c *config) openStore(ctx context.Context) (store.Store, error) {
	return OpenStore(ctx, c.storeURL())
}

// OpenStore opens the store at raw: file:///path, a bare path (a local
// folder), or s3://bucket/prefix?region=...&endpoint=...&path_style=true.
func OpenStore(ctx context.Context, raw string) (store.Store, error) {
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return nil, err
		}
		return file.Open(abs)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("store %q is not a URL: %v; use file:///path or s3://bucket/prefix", raw, err)}
	}
	switch u.Scheme {
	case "file":
		p := filepath.FromSlash(u.Path)
		if u.Host != "" && u.Host != "localhost" { // file://./store, relative
			p = filepath.FromSlash(u.Host + u.Path)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return file.Open(abs)
	case "s3":
		return s3.Open(ctx, u)
	default:
		return nil, usageError{fmt.Errorf("unknown store scheme %q in %q; use file:///path or s3://bucket/prefix", u.Scheme, raw)}
	}
}

// isLocal reports whether the store is a local folder.
func (c *config) isLocal() bool {
	raw := c.storeURL()
	return strings.HasPrefix(raw, "file:") || !strings.Contains(raw, "://")
}

// userKey loads the user's signing key, creating it if missing when create
// is set; it says on stderr when it made one.
func (c *config) userKey(create bool) (ed25519.PrivateKey, error) {
	path := c.str("key_file")
	if !create {
		k, err := manifest.LoadKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no signing key at %s; create one with `deploy keys generate`", path)
		}
		return k, err
	}
	k, created, err := manifest.LoadOrGenerateKey(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if created {
		fmt.Fprintf(c.env.io.Err, "created your signing key at %s (mode 0600); your public key is %s\n", path, manifest.FormatPublicKey(manifest.Public(k)))
	}
	return k, nil
}

// rootKey loads the administrator's root private key.
func (c *config) rootKey() (ed25519.PrivateKey, error) {
	path := c.str("root_key_file")
	k, err := manifest.LoadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no root key at %s; pass root_key_file=<path> (the administrator's key from `deploy init`)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	return k, nil
}

// trust returns the pinned root keys: root_key if set, else the public half
// of the local root key file.
func (c *config) trust() (manifest.Trust, error) {
	if s := c.str("root_key"); s != "" {
		keys, err := manifest.ParsePublicKeys(s)
		if err != nil {
			return manifest.Trust{}, usageError{fmt.Errorf("root_key: %w", err)}
		}
		return manifest.Trust{Roots: keys}, nil
	}
	path := c.str("root_key_file")
	if _, err := os.Stat(path); err == nil {
		k, err := c.rootKey()
		if err != nil {
			return manifest.Trust{}, err
		}
		return manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(k)}}, nil
	}
	return manifest.Trust{}, usageError{errors.New("no root key pinned; pass root_key=<the administrator's root public key, ed25519:...> or save it with `deploy login`")}
}
