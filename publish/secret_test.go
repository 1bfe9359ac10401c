package publish_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store/file"
)

const pemKey = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGg8vVHa3F2ryJ2fK1ywS7jNRx7ycCZO3xv6Vd9Fv3Bx\n-----END PRIVATE KEY-----\n"

// A file that is a PEM private key is refused by name, wherever it is in
// the build and however large it is; text that only mentions one is not.
func TestZipRefusesPrivateKeys(t *testing.T) {
	big := strings.Repeat("A", 2<<20) // past the sizes the zip keeps in memory
	refused := map[string]string{
		"PKCS#8":              pemKey,
		"RSA":                 "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
		"OpenSSH":             "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
		"encrypted":           "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n",
		"EC, CRLF":            "-----BEGIN EC PRIVATE KEY-----\r\nMHcC\r\n",
		"after whitespace":    " \t\r\n\n  " + pemKey,
		"no newline":          "-----BEGIN PRIVATE KEY-----",
		"large":               pemKey + big,
		"large, after spaces": strings.Repeat(" ", 40<<10) + pemKey + big,
		"on the second line":  "keys:\n-----BEGIN PRIVATE KEY-----\n",
		"byte order mark":     "\ufeff" + pemKey,
		"openssl pkcs12":      "Bag Attributes\n    localKeyID: 01 00 00 00\nKey Attributes: <No Attributes>\n" + pemKey,
		"after a certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" + pemKey,
	}
	for name, content := range refused {
		t.Run(name, func(t *testing.T) {
			d := writeTree(t, map[string]string{"index.html": "x", "main.js": "notifyAppReady()", ".secrets/user.key": content})
			_, err := publish.Zip(d, t.TempDir(), nil)
			if !errors.Is(err, publish.ErrBadBuild) || !strings.Contains(err.Error(), ".secrets/user.key is a private key") || !strings.Contains(err.Error(), "move it out of the web build folder") {
				t.Fatalf("err = %v, want a bad build naming .secrets/user.key as a private key", err)
			}
		})
	}
	kept := map[string]string{
		"public key":           "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
		"certificate":          "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"mentioned in code":    "const header = '-----BEGIN PRIVATE KEY-----';\n",
		"label on line two":    "-----BEGIN\nPRIVATE KEY-----\n",
		"empty":                "",
		"only whitespace":      " \n\t",
		"large, not a key":     big + pemKey,
		"BEGIN without dashes": "BEGIN PRIVATE KEY\n",
	}
	for name, content := range kept {
		t.Run(name, func(t *testing.T) {
			d := writeTree(t, map[string]string{"index.html": "x", "a.txt": content})
			if b := zipDir(t, d); b.Files != 2 {
				t.Fatalf("Files = %d, want 2", b.Files)
			}
		})
	}
}

// An upload whose build holds the signing key itself (key_file inside
// dir=) is refused before anything reaches the store, staged or not.
func TestUploadRefusesTheSigningKeyInTheBuild(t *testing.T) {
	root := t.TempDir()
	st, err := file.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"index.html": "<html>", "main.js": "notifyAppReady()"}
	for i := range 200 { // small files, staged while zipping
		files[fmt.Sprintf("assets/%03d.js", i)] = strings.Repeat("x", i+1)
	}
	www := writeTree(t, files)
	keyFile := filepath.Join(www, ".secrets", "user.key")
	key, err := manifest.GenerateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := manifest.GenerateKey(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	users := []manifest.User{{Name: "ahmed", Keys: []string{manifest.FormatPublicKey(manifest.Public(key))}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}}}
	if _, err := publish.InitACL(context.Background(), st, rootKey, users); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, root: rootKey, user: key, trust: manifest.Trust{Roots: []ed25519.PublicKey{manifest.Public(rootKey)}}}
	before := f.keys(t)
	_, err = f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Dir: www})
	if !errors.Is(err, publish.ErrBadBuild) || !strings.Contains(err.Error(), ".secrets/user.key is a private key") {
		t.Fatalf("err = %v, want a bad build naming .secrets/user.key", err)
	}
	if after := f.keys(t); len(diffKeys(before, after)) != 0 {
		t.Fatalf("a refused upload wrote %v", diffKeys(before, after))
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, data) {
				t.Errorf("the key is in the store at %s", p)
			}
		}
		return nil
	})
}
