package manifest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/cartona/deploy/manifest"
)

// Just enough edwards25519 arithmetic, in affine coordinates with
// math/big, to make the signatures that pin the Ed25519 strictness of the
// verifiers: small-order and non-canonical R, and mixed-order keys, which
// crypto/ed25519 cannot sign. Slow, and fine for a handful of vectors.

var (
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	edL = func() *big.Int {
		l, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
		return l.Add(l, new(big.Int).Lsh(big.NewInt(1), 252))
	}()
	edD     = edMul(big.NewInt(-121665), edInv(big.NewInt(121666)))
	edSqrtM = new(big.Int).Exp(big.NewInt(2), new(big.Int).Rsh(new(big.Int).Sub(edP, big.NewInt(1)), 2), edP)
	edB     = edDecodeMust(append([]byte{0x58}, bytes.Repeat([]byte{0x66}, 31)...))
	// edT8 is a point of order 8 (the key refused as ed25519_order_8_key).
	edT8 = edDecodeMust(hexBytes("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
)

type edPoint struct{ x, y *big.Int }

func edMod(a *big.Int) *big.Int    { return a.Mod(a, edP) }
func edMul(a, b *big.Int) *big.Int { return edMod(new(big.Int).Mul(a, b)) }
func edInv(a *big.Int) *big.Int    { return new(big.Int).ModInverse(edMod(new(big.Int).Set(a)), edP) }

var edIdentity = edPoint{big.NewInt(0), big.NewInt(1)}

// add is the twisted Edwards addition law (a = -1), complete on this curve.
func (p edPoint) add(q edPoint) edPoint {
	t := edMul(edD, edMul(edMul(p.x, q.x), edMul(p.y, q.y)))
	x := edMul(edMod(new(big.Int).Add(edMul(p.x, q.y), edMul(p.y, q.x))), edInv(new(big.Int).Add(big.NewInt(1), t)))
	y := edMul(edMod(new(big.Int).Add(edMul(p.y, q.y), edMul(p.x, q.x))), edInv(new(big.Int).Sub(big.NewInt(1), t)))
	return edPoint{x, y}
}

func (p edPoint) neg() edPoint { return edPoint{edMod(new(big.Int).Neg(p.x)), p.y} }

func (p edPoint) mul(k *big.Int) edPoint {
	r := edIdentity
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = r.add(r)
		if k.Bit(i) == 1 {
			r = r.add(p)
		}
	}
	return r
}

// bytes is the canonical encoding: y little-endian, the top bit x's parity.
func (p edPoint) bytes() []byte {
	b := leBytes(p.y)
	b[31] |= byte(p.x.Bit(0)) << 7
	return b
}

func edDecodeMust(b []byte) edPoint {
	y := leInt(b)
	y.SetBit(y, 255, 0)
	u := edMod(new(big.Int).Sub(edMul(y, y), big.NewInt(1)))
	v := edMod(new(big.Int).Add(edMul(edD, edMul(y, y)), big.NewInt(1)))
	x2 := edMul(u, edInv(v))
	x := new(big.Int).Exp(x2, new(big.Int).Rsh(new(big.Int).Add(edP, big.NewInt(3)), 3), edP)
	if edMul(x, x).Cmp(x2) != 0 {
		x = edMul(x, edSqrtM)
	}
	if edMul(x, x).Cmp(x2) != 0 {
		panic("not a point")
	}
	if x.Bit(0) != uint(b[31]>>7) {
		x = edMod(new(big.Int).Neg(x))
	}
	return edPoint{x, y}
}

func leInt(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

func leBytes(n *big.Int) []byte {
	b := make([]byte, 32)
	n.FillBytes(b)
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// edScalar is the secret scalar of an Ed25519 seed (RFC 8032 5.1.5).
func edScalar(seed []byte) *big.Int {
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	return leInt(h[:32])
}

// edChallenge is k = SHA-512(R || A || msg) mod L.
func edChallenge(r, a, msg []byte) *big.Int {
	h := sha512.New()
	h.Write(r)
	h.Write(a)
	h.Write(msg)
	return new(big.Int).Mod(leInt(h.Sum(nil)), edL)
}

// edSign signs msg with scalar a under public key pub (which need not be
// [a]B) and the given R bytes and nonce r: S = r + k*a mod L.
func edSign(a, r *big.Int, rBytes, pub, msg []byte) []byte {
	k := edChallenge(rBytes, pub, msg)
	s := new(big.Int).Mod(new(big.Int).Add(r, new(big.Int).Mul(k, a)), edL)
	return append(bytes.Clone(rBytes), leBytes(s)...)
}

func TestEdwardsHelperSignsAsCryptoEd25519(t *testing.T) {
	seed := bytes.Repeat([]byte{3}, 32)
	a := edScalar(seed)
	pub := edB.mul(a).bytes()
	key := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(pub, key.Public().(ed25519.PublicKey)) {
		t.Fatal("public key differs from crypto/ed25519's")
	}
	msg := []byte("message")
	r := big.NewInt(12345)
	sig := edSign(a, r, edB.mul(r).bytes(), pub, msg)
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatal("crypto/ed25519 refuses the helper's signature")
	}
	if !edT8.mul(big.NewInt(8)).isIdentity() || edT8.mul(big.NewInt(4)).isIdentity() {
		t.Fatal("edT8 is not of order 8")
	}
}

func (p edPoint) isIdentity() bool { return p.x.Sign() == 0 && p.y.Cmp(big.NewInt(1)) == 0 }

func hexBytes(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ed25519StrictVectors pin how both verifiers check a signature beyond
// S < L: the encoding of [S]B - [k]A must equal R's bytes (cofactorless;
// R is never decoded), whatever the order of R or of the key.
func (g *gen) ed25519StrictVectors() {
	var env manifest.Envelope
	if err := json.Unmarshal([]byte(g.goodLatest), &env); err != nil {
		g.t.Fatal(err)
	}
	msg := manifest.PAE(env.PayloadType, env.Payload)
	resign := func(pub, sig []byte) string {
		e := manifest.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []manifest.Signature{{KeyID: manifest.KeyID(pub), Sig: sig}}}
		return string(e.Marshal())
	}
	alice := []byte(manifest.Public(g.alice))
	a := edScalar(bytes.Repeat([]byte{3}, 32))
	zero := new(big.Int)
	// With S = k*a, [S]B - [k]A is the identity, whatever R is.
	forR := func(name, desc, verdict string, r []byte) {
		g.add(g.base("ed25519_"+name, desc, verdict), func(v *Vector) { v.Latest = resign(alice, edSign(a, zero, r, alice, msg)) })
	}
	forR("small_order_r", "alice's key; R is a point of order 8 and S = k*a, so [S]B - [k]A is the identity, not R: refused (a cofactored check, [8]([S]B - [k]A - R) = identity, would accept)",
		"bad_signature", edT8.bytes())
	forR("identity_r", "alice's key; R is the identity's canonical encoding (01 00...00) and S = k*a: [S]B - [k]A is the identity, whose encoding is R's bytes: accepted",
		"ok", edIdentity.bytes())
	forR("non_canonical_r", "alice's key; R is the identity encoded with y = p + 1 (ee ff...ff 7f), S = k*a: [S]B - [k]A is the identity, whose canonical encoding differs from R's bytes: refused (R is never decoded)",
		"bad_signature", leBytes(new(big.Int).Add(edP, big.NewInt(1))))
	forR("negative_zero_r", "alice's key; R is the identity with the sign bit set (01 00...00 80, x = 0 written as negative), S = k*a: not the canonical encoding: refused",
		"bad_signature", append(append([]byte{1}, make([]byte, 30)...), 0x80))
	r := big.NewInt(1000003)
	g.add(g.base("ed25519_torsion_r", "alice's key; R = [r]B + T with T of order 8, S = r + k*a: [S]B - [k]A = [r]B, not R: refused (a cofactored check would accept)", "bad_signature"), func(v *Vector) {
		v.Latest = resign(alice, edSign(a, r, edB.mul(r).add(edT8).bytes(), alice, msg))
	})

	// A mixed-order key: A = [e]B + T, T of order 8. It passes the key
	// rules (its y is not that of a small-order point). An honest signature
	// R = [r]B, S = r + k*e gives [S]B - [k]A = [r]B - [k]T, which is R
	// exactly when k mod L is a multiple of 8.
	e := edScalar(bytes.Repeat([]byte{7}, 32))
	mixed := edB.mul(e).add(edT8).bytes()
	acl := g.aclPayload(2)
	acl.Users = append(acl.Users, manifest.User{Name: "eve", Keys: []string{manifest.FormatPublicKey(mixed)}, Grants: map[string]manifest.Grant{"retailer": {CanUpload: true}}})
	mixedACL := g.sign(manifest.TypeACL, acl, g.root)
	nonce := func(cancels bool) *big.Int {
		for r := int64(1); ; r++ {
			k := edChallenge(edB.mul(big.NewInt(r)).bytes(), mixed, msg)
			if (new(big.Int).Mod(k, big.NewInt(8)).Sign() == 0) == cancels {
				return big.NewInt(r)
			}
		}
	}
	for _, c := range []struct {
		name, desc, verdict string
		cancels             bool
	}{
		{"mixed_order_key", "eve's key has a component of order 8 (A = [e]B + T); R = [r]B with k = H(R, A, M) a multiple of 8 mod L, so [S]B - [k]A = R: accepted", "ok", true},
		{"mixed_order_key_torsion_left", "eve's key has a component of order 8; R = [r]B with k not a multiple of 8, so [S]B - [k]A = R - [k]T: refused (a cofactored check would accept)", "bad_signature", false},
	} {
		g.add(g.base("ed25519_"+c.name, c.desc, c.verdict), func(v *Vector) {
			r := nonce(c.cancels)
			v.ACL, v.Latest = mixedACL, resign(mixed, edSign(e, r, edB.mul(r).bytes(), mixed, msg))
		})
	}
}
