// Package storetest is the conformance suite every cohort.Store passes.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

// Clock is a settable clock for the store under test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// NewStore returns an empty store whose time comes from now.
type NewStore func(t *testing.T, now func() time.Time) cohort.Store

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := map[string]func(*testing.T, cohort.Store, *Clock){
		"Users":                  testUsers,
		"Tokens":                 testTokens,
		"LoginCodes":             testLoginCodes,
		"BrowserSessions":        testBrowserSessions,
		"Classes":                testClasses,
		"DeleteClass":            testDeleteClass,
		"StartSession":           testStartSession,
		"StartSessionSeats":      testStartSessionSeats,
		"StartSessionConcurrent": testStartSessionConcurrent,
		"UpdateSession":          testUpdateSession,
		"ListSessions":           testListSessions,
		"Events":                 testEvents,
		"Timeouts":               testTimeouts,
		"RevokeCredentials":      testRevokeCredentials,
		"LoginAttempts":          testLoginAttempts,
		"DeviceCodes":            testDeviceCodes,
		"Members":                testMembers,
		"Invites":                testInvites,
		"Audit":                  testAudit,
		"Spend":                  testSpend,
		"BudgetStop":             testBudgetStop,
		"Settings":               testSettings,
		"Keys":                   testKeys,
		"Shards":                 testShards,
		"WarmSeats":              testWarmSeats,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := &Clock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
			defer func() {
				if r := recover(); r != nil {
					f, ok := r.(failure)
					if !ok {
						panic(r)
					}
					t.Fatalf("unexpected error: %v", f.err)
				}
			}()
			fn(t, newStore(t, clock.Now), clock)
		})
	}
}

// failure carries an unexpected error from must to Run, which fails the
// test with it; it keeps the cases free of error plumbing.
type failure struct{ err error }

func must[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := cohort.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func newClass(t *testing.T, s cohort.Store, owner *cohort.User) *cohort.Class {
	t.Helper()
	c := cohort.DefaultClass()
	c.Name, c.OwnerID = "NLP with spaCy", owner.ID
	if err := s.CreateClass(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func newSession(classID, userID string) *cohort.Session {
	return &cohort.Session{
		ID: cohort.NewID("ses"), ClassID: classID, UserID: userID,
		State: cohort.StateRequested, Driver: "local", NotebookToken: cohort.NewSecret(""),
	}
}

func testUsers(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "Ada@Example.com", cohort.RoleInstructor))
	if u.Email != "ada@example.com" || u.Role != cohort.RoleInstructor || u.ID == "" {
		t.Fatalf("EnsureUser = %+v", u)
	}
	again := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	if again.ID != u.ID || again.Role != cohort.RoleInstructor {
		t.Fatalf("EnsureUser of an existing email = %+v, want the same user unchanged", again)
	}
	if err := s.SetUserRole(ctx, u.ID, cohort.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetUser(ctx, u.ID)); got.Role != cohort.RoleAdmin {
		t.Fatalf("role after SetUserRole = %s", got.Role)
	}
	if got := must(s.GetUserByEmail(ctx, "ADA@example.com")); got.ID != u.ID {
		t.Fatalf("GetUserByEmail = %+v", got)
	}
	if err := s.SetUserHostedDomain(ctx, u.ID, "example.com"); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetUser(ctx, u.ID)); got.HostedDomain != "example.com" {
		t.Fatalf("hosted domain = %q", got.HostedDomain)
	}
	must(s.EnsureUser(ctx, "bob@example.com", cohort.RoleParticipant))
	if list := must(s.ListUsers(ctx)); len(list) != 2 || list[0].Email != "ada@example.com" {
		t.Fatalf("ListUsers = %+v", list)
	}
	_, err := s.GetUser(ctx, "usr_missing")
	wantCode(t, err, cohort.ENOTFOUND)
	_, err = s.EnsureUser(ctx, "not an email", cohort.RoleParticipant)
	wantCode(t, err, cohort.EINVALID)
	_, err = s.EnsureUser(ctx, "bob@example.com", "root")
	wantCode(t, err, cohort.EINVALID)
	wantCode(t, s.SetUserRole(ctx, "usr_missing", cohort.RoleAdmin), cohort.ENOTFOUND)
}

func testTokens(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	secret := cohort.NewSecret(cohort.TokenPrefix)
	tok := &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: "laptop"}
	if err := s.CreateToken(ctx, tok, cohort.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	if got := must(s.UserByTokenHash(ctx, cohort.HashSecret(secret))); got.ID != u.ID {
		t.Fatalf("UserByTokenHash = %+v", got)
	}
	_, err := s.UserByTokenHash(ctx, cohort.HashSecret(secret+"x"))
	wantCode(t, err, cohort.EUNAUTHORIZED)
	// The store must never match on the secret itself.
	_, err = s.UserByTokenHash(ctx, secret)
	wantCode(t, err, cohort.EUNAUTHORIZED)
}

func testLoginCodes(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	cookieEnd := clock.Now().Add(3 * time.Hour).UTC().Truncate(time.Microsecond)
	if err := s.CreateLoginCode(ctx, "h1", &cohort.LoginCode{UserID: u.ID, SessionID: sess.ID, ExpiresAt: clock.Now().Add(time.Minute),
		CookieExpiresAt: cookieEnd}); err != nil {
		t.Fatal(err)
	}
	// Reading a code does not use it: a code shown at a session that is
	// not ready yet still works once it is.
	for range 2 {
		lc, err := s.LoginCode(ctx, "h1")
		if err != nil || lc.UserID != u.ID || lc.SessionID != sess.ID || !lc.CookieExpiresAt.Equal(cookieEnd) {
			t.Fatalf("LoginCode = %+v, %v", lc, err)
		}
	}
	if err := s.UseLoginCode(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.UseLoginCode(ctx, "h1"), cohort.EUNAUTHORIZED) // single use
	_, err := s.LoginCode(ctx, "h1")
	wantCode(t, err, cohort.EUNAUTHORIZED)
	wantCode(t, s.UseLoginCode(ctx, "unknown"), cohort.EUNAUTHORIZED)

	if err := s.CreateLoginCode(ctx, "h2", &cohort.LoginCode{UserID: u.ID, SessionID: sess.ID, ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err = s.LoginCode(ctx, "h2")
	wantCode(t, err, cohort.EUNAUTHORIZED) // expired
	wantCode(t, s.UseLoginCode(ctx, "h2"), cohort.EUNAUTHORIZED)
}

func testBrowserSessions(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	if err := s.CreateBrowserSession(ctx, "c1", &cohort.BrowserSession{User: u, CSRFToken: "csrf1", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetBrowserSession(ctx, "c1")); got.User.ID != u.ID || got.CSRFToken != "csrf1" || got.SessionID != "" {
		t.Fatalf("GetBrowserSession = %+v", got)
	}
	if err := s.RevokeBrowserSession(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetBrowserSession(ctx, "c1")
	wantCode(t, err, cohort.EUNAUTHORIZED)

	// A notebook origin's cookie names its one session.
	if err := s.CreateBrowserSession(ctx, "nb", &cohort.BrowserSession{User: u, SessionID: "ses_x", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetBrowserSession(ctx, "nb")); got.SessionID != "ses_x" || got.User.ID != u.ID {
		t.Fatalf("notebook cookie = %+v", got)
	}
	// Signing out ends the notebook cookies, not the other sign-ins.
	if err := s.CreateBrowserSession(ctx, "app", &cohort.BrowserSession{User: u, CSRFToken: "c", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeNotebookCookies(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetBrowserSession(ctx, "nb")
	wantCode(t, err, cohort.EUNAUTHORIZED)
	must(s.GetBrowserSession(ctx, "app"))

	if err := s.CreateBrowserSession(ctx, "c2", &cohort.BrowserSession{User: u, CSRFToken: "csrf2", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	_, err = s.GetBrowserSession(ctx, "c2")
	wantCode(t, err, cohort.EUNAUTHORIZED)
}

func testRevokeCredentials(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	other := must(s.EnsureUser(ctx, "bob@example.com", cohort.RoleParticipant))
	for i, owner := range []*cohort.User{u, u, other} {
		tok := &cohort.Token{ID: cohort.NewID("tok"), UserID: owner.ID, Name: "t"}
		if err := s.CreateToken(ctx, tok, cohort.HashSecret(string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBrowserSession(ctx, "c1", &cohort.BrowserSession{User: u, CSRFToken: "x", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tokens := must(s.ListTokens(ctx, u.ID))
	if len(tokens) != 2 {
		t.Fatalf("ListTokens = %d, want 2", len(tokens))
	}
	if err := s.RevokeToken(ctx, tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetToken(ctx, tokens[0].ID)); got.RevokedAt == nil {
		t.Fatal("revoked token has no revoked_at")
	}
	wantCode(t, s.RevokeToken(ctx, "tok_missing"), cohort.ENOTFOUND)
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	if err := s.CreateLoginCode(ctx, "link", &cohort.LoginCode{UserID: u.ID, SessionID: sess.ID, ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDeviceCode(ctx, "dev", &cohort.DeviceCode{UserCode: "ABCD-EFGH", ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveDeviceCode(ctx, "ABCD-EFGH", u.ID); err != nil {
		t.Fatal(err)
	}
	if n := must(s.RevokeUserCredentials(ctx, u.ID)); n != 2 {
		t.Fatalf("RevokeUserCredentials revoked %d, want 2 (one live token, one browser session)", n)
	}
	_, err := s.UserByTokenHash(ctx, cohort.HashSecret("b"))
	wantCode(t, err, cohort.EUNAUTHORIZED)
	_, err = s.GetBrowserSession(ctx, "c1")
	wantCode(t, err, cohort.EUNAUTHORIZED)
	wantCode(t, s.UseLoginCode(ctx, "link"), cohort.EUNAUTHORIZED)
	_, err = s.ClaimDeviceCode(ctx, "dev")
	wantCode(t, err, cohort.EUNAUTHORIZED) // approved before the revoke: no token from it after
	if got := must(s.UserByTokenHash(ctx, cohort.HashSecret("c"))); got.ID != other.ID {
		t.Fatal("another user's token was revoked too")
	}
}

func testLoginAttempts(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	a := &cohort.LoginAttempt{StateHash: "st", Nonce: "n", Verifier: "v", Next: "/x", ExpiresAt: clock.Now().Add(time.Minute)}
	if err := s.CreateLoginAttempt(ctx, a); err != nil {
		t.Fatal(err)
	}
	got := must(s.TakeLoginAttempt(ctx, "st"))
	if got.Nonce != "n" || got.Verifier != "v" || got.Next != "/x" {
		t.Fatalf("TakeLoginAttempt = %+v", got)
	}
	_, err := s.TakeLoginAttempt(ctx, "st")
	wantCode(t, err, cohort.EUNAUTHORIZED) // replayed state
	a.StateHash = "st2"
	if err := s.CreateLoginAttempt(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err = s.TakeLoginAttempt(ctx, "st2")
	wantCode(t, err, cohort.EUNAUTHORIZED) // too late
}

func testDeviceCodes(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleParticipant))
	d := &cohort.DeviceCode{UserCode: "ABCD-EFGH", ClientName: "cohort login on laptop", ClientAddr: "192.0.2.7",
		ExpiresAt: clock.Now().Add(10 * time.Minute)}
	if err := s.CreateDeviceCode(ctx, "dev", d); err != nil {
		t.Fatal(err)
	}
	got := must(s.DeviceCode(ctx, "ABCD-EFGH"))
	if got.ClientName != d.ClientName || got.ClientAddr != d.ClientAddr || !got.CreatedAt.Equal(clock.Now().UTC().Truncate(time.Microsecond)) {
		t.Fatalf("DeviceCode = %+v, want what was stored at %s", got, clock.Now())
	}
	_, err := s.DeviceCode(ctx, "WRONG-CODE")
	wantCode(t, err, cohort.EFORBIDDEN)
	_, err = s.ClaimDeviceCode(ctx, "dev")
	wantCode(t, err, cohort.ECONFLICT) // pending
	wantCode(t, s.ApproveDeviceCode(ctx, "WRONG-CODE", u.ID), cohort.EFORBIDDEN)
	if err := s.ApproveDeviceCode(ctx, "ABCD-EFGH", u.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.ApproveDeviceCode(ctx, "ABCD-EFGH", u.ID), cohort.EFORBIDDEN) // once
	_, err = s.DeviceCode(ctx, "ABCD-EFGH")
	wantCode(t, err, cohort.EFORBIDDEN) // approved: nothing left to describe
	if got := must(s.ClaimDeviceCode(ctx, "dev")); got != u.ID {
		t.Fatalf("ClaimDeviceCode = %q", got)
	}
	_, err = s.ClaimDeviceCode(ctx, "dev")
	wantCode(t, err, cohort.EUNAUTHORIZED) // claimed once
	if err := s.CreateDeviceCode(ctx, "dev2", &cohort.DeviceCode{UserCode: "IJKL-MNOP", ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err = s.DeviceCode(ctx, "IJKL-MNOP")
	wantCode(t, err, cohort.EFORBIDDEN)
	wantCode(t, s.ApproveDeviceCode(ctx, "IJKL-MNOP", u.ID), cohort.EFORBIDDEN)
	_, err = s.ClaimDeviceCode(ctx, "dev2")
	wantCode(t, err, cohort.EUNAUTHORIZED)
}

func testAudit(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	for i, classID := range []string{"cls_a", "cls_b", "cls_a", ""} {
		e := &cohort.AuditEvent{Action: cohort.AuditMembersAdded, ClassID: classID, ActorEmail: "t@example.com", Detail: string(rune('0' + i)),
			ClientAddr: "192.0.2." + string(rune('0'+i))}
		if err := s.AppendAudit(ctx, e); err != nil || e.ID == 0 {
			t.Fatalf("AppendAudit = %v, id %d", err, e.ID)
		}
	}
	all := must(s.ListAudit(ctx, cohort.AuditFilter{}))
	if len(all) != 4 || all[0].Detail != "3" || all[0].ClientAddr != "192.0.2.3" {
		t.Fatalf("ListAudit = %d events, first %+v; want 4, newest first, with their client addresses", len(all), all[0])
	}
	a := must(s.ListAudit(ctx, cohort.AuditFilter{ClassID: "cls_a"}))
	if len(a) != 2 || a[0].Detail != "2" {
		t.Fatalf("class audit = %+v", a)
	}
	page := must(s.ListAudit(ctx, cohort.AuditFilter{Before: all[1].ID, Limit: 1}))
	if len(page) != 1 || page[0].ID != all[2].ID {
		t.Fatalf("paged audit = %+v", page)
	}
}

func testClasses(t *testing.T, s cohort.Store, clock *Clock) {
	ctx := context.Background()
	owner := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor))
	c := newClass(t, s, owner)
	got := must(s.GetClass(ctx, c.ID))
	if got.Name != c.Name || got.OwnerID != owner.ID || got.Runtime.GPUType != "nvidia-tesla-t4" ||
		got.Policy.IdleTimeout != c.Policy.IdleTimeout || len(got.Runtime.Zones) != 4 || !got.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("GetClass = %+v, want %+v", got, c)
	}
	clock.Advance(time.Minute)
	ends := clock.Now().Add(3 * time.Hour)
	got.Name, got.Policy.Seats, got.Policy.EndsAt = "Renamed", 12, &ends
	if err := s.UpdateClass(ctx, got); err != nil {
		t.Fatal(err)
	}
	upd := must(s.GetClass(ctx, c.ID))
	if upd.Name != "Renamed" || upd.Policy.Seats != 12 || upd.Policy.EndsAt == nil || !upd.Policy.EndsAt.Equal(ends) || !upd.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("after UpdateClass = %+v", upd)
	}
	second := newClass(t, s, owner)
	list := must(s.ListClasses(ctx))
	if len(list) != 2 || list[0].ID != second.ID {
		t.Fatalf("ListClasses = %d classes, first %s; want 2, newest (%s) first", len(list), list[0].ID, second.ID)
	}
	_, err := s.GetClass(ctx, "cls_missing")
	wantCode(t, err, cohort.ENOTFOUND)
	wantCode(t, s.UpdateClass(ctx, &cohort.Class{ID: "cls_missing"}), cohort.ENOTFOUND)

	// Materials are written apart: an update of the class keeps them.
	m := &cohort.Materials{Repo: "https://example.org/w.git", Ref: "main", Private: true, Credential: "v1.sealed",
		Version: "git-0123abcd", Files: 3, Bytes: 99, UpdatedAt: clock.Now()}
	if err := s.SetMaterials(ctx, c.ID, m); err != nil {
		t.Fatal(err)
	}
	upd.Name = "Renamed again"
	if err := s.UpdateClass(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetClass(ctx, c.ID)); got.Materials == nil || *got.Materials != *m || got.Name != "Renamed again" {
		t.Fatalf("materials after SetMaterials and UpdateClass = %+v, want %+v", got.Materials, m)
	}
	// A session records a branch's newer commit only over what it read.
	read := must(s.GetClass(ctx, c.ID)).Materials
	newer := *read
	newer.Version, newer.Credential = "git-4567cdef", ""
	if err := s.SwapMaterials(ctx, c.ID, read, &newer); err != nil {
		t.Fatalf("swap over the materials read: %v", err)
	}
	wantCode(t, s.SwapMaterials(ctx, c.ID, read, &newer), cohort.ECONFLICT)
	if got := must(s.GetClass(ctx, c.ID)).Materials; got.Version != "git-4567cdef" || got.Credential != "v1.sealed" {
		t.Fatalf("after the swap, version %s, credential %q (a swap keeps the credential)", got.Version, got.Credential)
	}
	// Set without a credential, the materials have none.
	public := *m
	public.Private, public.Credential = false, ""
	if err := s.SetMaterials(ctx, c.ID, &public); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetClass(ctx, c.ID)).Materials; got.Credential != "" {
		t.Fatalf("credential after public materials = %q", got.Credential)
	}
	if err := s.SetMaterials(ctx, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := must(s.GetClass(ctx, c.ID)); got.Materials != nil {
		t.Fatalf("materials after removing them = %+v", got.Materials)
	}
	wantCode(t, s.SetMaterials(ctx, "cls_missing", m), cohort.ENOTFOUND)
}

func testDeleteClass(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	u := must(s.EnsureUser(ctx, "ada@example.com", cohort.RoleInstructor))
	c := newClass(t, s, u)
	sess, _ := must2(s.StartSession(ctx, newSession(c.ID, u.ID), 10))
	wantCode(t, s.DeleteClass(ctx, c.ID), cohort.ECONFLICT)
	sess.State = cohort.StateStopped
	if err := s.UpdateSession(ctx, sess, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClass(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetClass(ctx, c.ID)
	wantCode(t, err, cohort.ENOTFOUND)
	_, err = s.GetSession(ctx, sess.ID)
	wantCode(t, err, cohort.ENOTFOUND)
	wantCode(t, s.DeleteClass(ctx, c.ID), cohort.ENOTFOUND)
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(failure{err})
	}
	return a, b
}

func testKeys(t *testing.T, s cohort.Store, _ *Clock) {
	ctx := context.Background()
	if got := must(s.RecordKey(ctx, "secret-key", "aaaa1111", false)); got != "aaaa1111" {
		t.Fatalf("the first key recorded = %s", got)
	}
	if got := must(s.RecordKey(ctx, "secret-key", "bbbb2222", false)); got != "aaaa1111" {
		t.Fatalf("another key = %s, want the first one's ID kept", got)
	}
	if got := must(s.RecordKey(ctx, "pulumi", "cccc3333", false)); got != "cccc3333" {
		t.Fatalf("a key of another name = %s", got)
	}
	if got := must(s.RecordKey(ctx, "secret-key", "bbbb2222", true)); got != "bbbb2222" {
		t.Fatalf("replaced = %s", got)
	}
}
