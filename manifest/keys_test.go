package manifest_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
)

func TestKeyFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "user.key")
	k, created, err := manifest.LoadOrGenerateKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrGenerateKey = %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	again, created, err := manifest.LoadOrGenerateKey(path)
	if err != nil || created || !again.Equal(k) {
		t.Fatalf("second LoadOrGenerateKey: err %v, created %v, same key %v", err, created, again.Equal(k))
	}
	if _, err := manifest.GenerateKey(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("GenerateKey over an existing key: %v, want fs.ErrExist", err)
	}
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o644)
		if _, err := manifest.LoadKey(path); !errors.Is(err, manifest.ErrKeyPermissions) {
			t.Fatalf("LoadKey of a 0644 file: %v, want ErrKeyPermissions", err)
		}
	}
	dir := t.TempDir()
	if _, err := manifest.LoadKey(dir); err == nil || !strings.Contains(err.Error(), "is a folder") || strings.Contains(err.Error(), "chmod") {
		t.Fatalf("LoadKey of a folder: %v, want one saying it is a folder, not advising chmod", err)
	}
	text := manifest.FormatPublicKey(manifest.Public(k))
	pub, err := manifest.ParsePublicKey(text)
	if err != nil || !pub.Equal(manifest.Public(k)) {
		t.Fatalf("ParsePublicKey(FormatPublicKey) = %v, %v", pub, err)
	}
	for _, bad := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:" + text[8:]} {
		if _, err := manifest.ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) succeeded", bad)
		}
	}
}

func TestPAE(t *testing.T) {
	// The example from the DSSE specification's protocol document.
	got := string(manifest.PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
}
