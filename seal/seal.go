// Package seal encrypts the secrets cohort keeps for a while (a private
// repository's token) with a key of the server's: AES-256-GCM, each
// sealed value bound to what it is for (its purpose, as additional data:
// for a token, its repository's URL), so a value taken for another
// purpose does not open.
//
// The key lives in a file beside the database, never in it: a copy of the
// database alone reveals no secret. Replicas share one key file.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// version prefixes every sealed value: another scheme can come later
// beside this one.
const version = "v1"

// Key seals and opens values.
type Key struct {
	aead cipher.AEAD
	id   string
}

// NewKeyText returns a new key as its file holds it: 32 random bytes in
// base64.
func NewKeyText() string {
	b := make([]byte, 32)
	rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}

// ParseKey reads a key written by NewKeyText.
func ParseKey(text string) (*Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(b) != 32 {
		return nil, errors.New("a secret key is 32 bytes in base64 (as cohort writes it); this is not one")
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The ID names the key in each value, so a value sealed with another
	// key (a replica reading another file) says so instead of failing
	// as if it were damaged. It reveals nothing of the key.
	sum := sha256.Sum256(append([]byte("cohort key id\x00"), b...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// ID names the key: eight hex digits, safe to log.
func (k *Key) ID() string { return k.id }

// Seal encrypts plaintext for purpose: "v1.KEYID.DATA", DATA the nonce
// and the ciphertext in base64url.
func (k *Key) Seal(plaintext []byte, purpose string) string {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, plaintext, []byte(purpose))
	return version + "." + k.id + "." + base64.RawURLEncoding.EncodeToString(out)
}

// KeyOf returns the ID of the key a value was sealed with ("" if it is
// not a sealed value).
func KeyOf(sealed string) string {
	v, rest, _ := strings.Cut(sealed, ".")
	id, _, ok := strings.Cut(rest, ".")
	if v != version || !ok {
		return ""
	}
	return id
}

// Open decrypts a value sealed for purpose with this key.
func (k *Key) Open(sealed, purpose string) ([]byte, error) {
	v, rest, _ := strings.Cut(sealed, ".")
	id, data, ok := strings.Cut(rest, ".")
	if v != version || !ok {
		return nil, errors.New("not a sealed value")
	}
	if id != k.id {
		return nil, fmt.Errorf("sealed with key %s, and this server's key is %s: every replica must read the same secret key file", id, k.id)
	}
	b, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(b) < k.aead.NonceSize() {
		return nil, errors.New("the sealed value is damaged")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:n], b[n:], []byte(purpose))
	if err != nil {
		return nil, errors.New("the sealed value does not open: damaged, or sealed for something else")
	}
	return plain, nil
}
