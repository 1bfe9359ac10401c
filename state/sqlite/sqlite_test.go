package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/state/sqlite"
	"github.com/cartona/deploy/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, statetest.Backend{Fresh: func(t *testing.T) func(state.Options) state.State {
		path := filepath.Join(t.TempDir(), "state.db")
		return func(o state.Options) state.State {
			s, err := sqlite.Open(path, o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}})
}
