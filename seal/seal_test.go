package seal

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestSealAndOpen(t *testing.T) {
	t.Parallel()
	k, err := ParseKey(NewKeyText())
	if err != nil {
		t.Fatal(err)
	}
	const purpose = "materials https://git.example.org/a.git"
	a, b := k.Seal([]byte("ghp_secret"), purpose), k.Seal([]byte("ghp_secret"), purpose)
	if a == b {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	if strings.Contains(a, "ghp_secret") || !strings.HasPrefix(a, "v1."+k.ID()+".") {
		t.Errorf("sealed = %q", a)
	}
	if KeyOf(a) != k.ID() || KeyOf("ghp_plain") != "" {
		t.Errorf("KeyOf = %q, %q", KeyOf(a), KeyOf("ghp_plain"))
	}
	got, err := k.Open(a, purpose)
	if err != nil || string(got) != "ghp_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}

	other, _ := ParseKey(NewKeyText())
	// A bit flipped in the ciphertext, re-encoded: the value is well
	// formed, and must not open.
	head := a[:strings.LastIndex(a, ".")+1]
	data, err := base64.RawURLEncoding.DecodeString(a[len(head):])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	flipped := head + base64.RawURLEncoding.EncodeToString(data)
	for _, c := range []struct {
		name, sealed, purpose, want string
		key                         *Key
	}{
		{"another purpose", a, "materials https://evil.example.org/a.git", "sealed for something else", k},
		{"another key", a, purpose, "sealed with key " + k.ID() + ", and this server's key is " + other.ID(), other},
		{"damaged", flipped, purpose, "does not open", k},
		{"not sealed", "ghp_secret", purpose, "not a sealed value", k},
		{"cut", a[:12], purpose, "damaged", k},
	} {
		if _, err := c.key.Open(c.sealed, c.purpose); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open = %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "short", "aGVsbG8=", strings.Repeat("A", 44)[:43]} {
		if _, err := ParseKey(bad); err == nil || !strings.Contains(err.Error(), "32 bytes in base64") {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
	text := NewKeyText()
	a, _ := ParseKey(text)
	b, err := ParseKey(text + "\n")
	if err != nil || a.ID() != b.ID() {
		t.Errorf("one key read twice: %v, ids %s %s", err, a.ID(), b.ID())
	}
}
