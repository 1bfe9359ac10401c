package cli

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/postgres"
	"github.com/cartona/deploy/state/sqlite"
)

func defaultStateURL() string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(dataDir(), "events.db"))
}

// OpenState opens the tracker state at raw: sqlite:///path, a bare path
// (an SQLite file, as older settings name it) or postgres://...
func OpenState(ctx context.Context, raw string, opts state.Options) (state.State, error) {
	if !strings.Contains(raw, "://") {
		return sqlite.Open(raw, opts)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("db %q is not a URL: %v; use sqlite:///path or postgres://user@host/database", raw, err)}
	}
	switch u.Scheme {
	case "sqlite":
		p := filepath.FromSlash(u.Path)
		if u.Host != "" && u.Host != "localhost" { // sqlite://./events.db, relative
			p = filepath.FromSlash(u.Host + u.Path)
		}
		return sqlite.Open(p, opts)
	case "postgres", "postgresql":
		db, err := postgres.Open(ctx, raw, opts)
		if err != nil {
			return nil, fmt.Errorf("db %s: %w", redact(u), err)
		}
		return db, nil
	default:
		return nil, usageError{fmt.Errorf("unknown db scheme %q in %q; use sqlite:///path or postgres://user@host/database", u.Scheme, redact(u))}
	}
}

// redact hides a password in a database URL.
func redact(u *url.URL) string {
	if _, ok := u.User.Password(); ok {
		return u.Redacted()
	}
	return u.String()
}
