package api_test

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/store/sqlite"
)

// TestOversizedAndMistypedInput: an email longer than mail allows is
// refused (a million characters were enrolled once; the body limit is 1 MiB), with an answer that
// does not echo it back whole; a JSON body sent as another type is refused
// with 415, naming the type to send.
func TestOversizedAndMistypedInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.createClass("teacher", `{"name": "Limits"}`)
	for _, email := range []string{strings.Repeat("a", 1<<19) + "@example.org", strings.Repeat("a", 250) + "@x.org"} {
		r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["ok@example.org", "`+email+`"]}`)
		code, field, msg := r.errorCode()
		if r.status != http.StatusBadRequest || code != "invalid" || field != "emails" || !strings.Contains(msg, "entry 2") || !strings.Contains(msg, "longer than 254 characters") {
			t.Fatalf("an email of %d characters: %d %.300s", len(email), r.status, r.body)
		}
		if len(r.body) > 400 {
			t.Fatalf("the refusal of an email of %d characters is %d bytes long: it echoes the input", len(email), len(r.body))
		}
	}
	if members, _ := e.store.ListMembers(t.Context(), c.ID); len(members) != 3 { // the teacher, alice, bob
		t.Fatalf("a refused roster changed the class: %d members", len(members))
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/classes", strings.NewReader(`{"name": "Sneaky"}`))
		req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("JSON sent as %q: %d, want 415", ct, resp.StatusCode)
		}
	}
}

// TestBusyDatabaseIs503: a write that waited out the database's lock is
// answered 503 with Retry-After and a message, not 500 "Internal error."
func TestBusyDatabaseIs503(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other, err := sql.Open("sqlite", sqlite.DSN(e.dbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin() // BEGIN IMMEDIATE: the write lock, held
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE users SET role = role`); err != nil {
		t.Fatal(err)
	}
	if r := e.do("teacher", "GET", "/v1/classes", ""); r.status != http.StatusOK {
		t.Fatalf("a read while the database is locked: %d %s", r.status, r.body)
	}
	r := e.do("teacher", "POST", "/v1/classes", `{"name": "Blocked"}`)
	code, _, msg := r.errorCode()
	if r.status != http.StatusServiceUnavailable || code != "unavailable" || !strings.Contains(msg, "database is busy") || r.header.Get("Retry-After") == "" {
		t.Fatalf("a write while the database is locked: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
}
