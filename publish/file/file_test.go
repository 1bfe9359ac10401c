package file_test

import (
	"testing"

	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/publish/file"
	"github.com/cartona/deploy/publish/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) publish.Store {
		s, err := file.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRejectsUnsafeKeys(t *testing.T) {
	s, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a\\b", ".tmp/x", "a//b"} {
		if _, _, err := s.Get(t.Context(), key); err == nil {
			t.Errorf("Get(%q) succeeded, want an invalid key error", key)
		}
	}
}
