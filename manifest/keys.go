package manifest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// PublicKeyPrefix starts the text form of a public key: "ed25519:" followed
// by the 32 raw key bytes in standard base64.
const PublicKeyPrefix = "ed25519:"

// KeyID is the lowercase hex SHA-256 of the raw public key, the keyid
// of its DSSE signatures.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// FormatPublicKey returns the text form of pub, as the ACL and the
// configuration of trackers and apps take it.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads the text form made by [FormatPublicKey].
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key %q does not start with %q; print the root key with `deploy keys show root=1`, a user's with `deploy keys show`", abbreviate(s), PublicKeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize || strings.ContainsAny(rest, "\r\n") {
		return nil, fmt.Errorf("public key %q is not 32 bytes of base64 after %q", abbreviate(s), PublicKeyPrefix)
	}
	if weakKey(b) {
		return nil, fmt.Errorf("public key %q is not a canonical encoding of a point of large order; generate a new key with `deploy keys`", abbreviate(s))
	}
	return ed25519.PublicKey(b), nil
}

// smallOrderY are the y coordinates (little-endian) of the 8 points of
// small order: 0, 1, p-1, and the two of order 8.
var smallOrderY = [][]byte{
	make([]byte, 32),
	append([]byte{1}, make([]byte, 31)...),
	mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
	mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
}

// weakKey reports whether a 32-byte public key is refused (docs/format.md,
// "Keys"): its y coordinate (the sign bit cleared) is not below
// p = 2^255-19, or is that of a point of small order.
func weakKey(b []byte) bool {
	y := bytes.Clone(b)
	y[31] &= 0x7f
	if y[31] == 0x7f && bytes.Count(y[1:31], []byte{0xff}) == 30 && y[0] >= 0xed {
		return true
	}
	for _, s := range smallOrderY {
		if bytes.Equal(y, s) {
			return true
		}
	}
	return false
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ParsePublicKeys reads a comma- or space-separated list of public keys.
func ParsePublicKeys(s string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		k, err := ParsePublicKey(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func abbreviate(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

// ErrKeyPermissions reports a private key file that others can read.
var ErrKeyPermissions = errors.New("private key file is readable by other users")

// GenerateKey creates a new Ed25519 key and saves it at path as a PKCS#8 PEM
// file with mode 0600. It never overwrites: an existing file is fs.ErrExist.
func GenerateKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Written whole to a temporary file, then linked into place: a reader
	// never sees a half-written key, and an existing key is never replaced.
	f, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(0o600)
	if err == nil || runtime.GOOS == "windows" {
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if err != nil {
		return nil, err
	}
	return priv, nil
}

// LoadKey reads a private key saved by [GenerateKey]. On Unix it refuses a
// file that group or others can read, wrapping [ErrKeyPermissions].
func LoadKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not a key file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w; run `chmod 600 %s`", path, fi.Mode().Perm(), ErrKeyPermissions, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadOrGenerateKey loads the key at path, creating it first if it does not
// exist. created reports whether it was made now.
func LoadOrGenerateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = LoadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = GenerateKey(path)
		if errors.Is(err, fs.ErrExist) { // made meanwhile by another process
			key, err = LoadKey(path)
			return key, false, err
		}
		return key, err == nil, err
	}
	return key, false, err
}

// Public returns the public half of k.
func Public(k ed25519.PrivateKey) ed25519.PublicKey {
	return k.Public().(ed25519.PublicKey)
}
