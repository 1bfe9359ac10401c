package file_test

import (
	"testing"

	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/file"
	"github.com/cartona/deploy/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := file.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
