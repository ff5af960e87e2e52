package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortdev/cohort"
)

func TestRoster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("teacher", "POST", "/v1/classes", `{"name": "NLP"}`)
	var c cohort.Class
	r.json(t, &c)
	// Alice is not enrolled: the class does not exist for her.
	if r := e.do("alice", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusNotFound {
		t.Fatalf("unenrolled GET = %d", r.status)
	}
	if _, status := e.startSession("alice", c.ID); status != http.StatusNotFound {
		t.Fatalf("unenrolled start = %d", status)
	}
	bad := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["alice@example.com", "not-an-email"]}`)
	if code, field, msg := bad.errorCode(); bad.status != 400 || code != "invalid" || field != "emails" || !strings.Contains(msg, "entry 2") {
		t.Fatalf("roster with a bad email = %d %s", bad.status, bad.body)
	}
	if list, _ := e.store.ListMembers(context.Background(), c.ID); len(list) != 1 {
		t.Fatalf("a refused roster added %d members (want only the owner)", len(list)-1)
	}
	csv := "Name,Email\nAlice,ALICE@example.com\nBob, bob@example.com\n,\n"
	req, _ := http.NewRequest("POST", e.http.URL+"/v1/classes/"+c.ID+"/members", strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+e.tokens["teacher"])
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var added struct{ Added, Total int }
	json.NewDecoder(resp.Body).Decode(&added)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || added.Added != 2 || added.Total != 2 {
		t.Fatalf("CSV roster = %d %+v", resp.StatusCode, added)
	}
	if r := e.do("alice", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusOK {
		t.Fatalf("enrolled GET = %d", r.status)
	}
	var mine struct{ Classes []cohort.Class }
	e.do("alice", "GET", "/v1/classes", "").json(t, &mine)
	if len(mine.Classes) != 1 {
		t.Fatalf("alice sees %d classes", len(mine.Classes))
	}
	// Co-instructor: teacher2 joins as instructor and may manage the roster.
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/members", `{"emails": ["teacher2@example.com"], "role": "instructor"}`); r.status != 200 {
		t.Fatalf("add co-instructor = %d %s", r.status, r.body)
	}
	if r := e.do("teacher2", "DELETE", "/v1/classes/"+c.ID+"/members/bob@example.com", ""); r.status != http.StatusNoContent {
		t.Fatalf("co-instructor removing bob = %d %s", r.status, r.body)
	}
	if r := e.do("bob", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusNotFound {
		t.Fatalf("removed member GET = %d", r.status)
	}
	if r := e.do("teacher", "DELETE", "/v1/classes/"+c.ID+"/members/teacher@example.com", ""); r.status != http.StatusBadRequest {
		t.Fatalf("instructor removing themselves = %d", r.status)
	}
	var audit struct{ Events []cohort.AuditEvent }
	e.do("teacher", "GET", "/v1/classes/"+c.ID+"/audit", "").json(t, &audit)
	actions := []string{}
	for _, ev := range audit.Events {
		actions = append(actions, ev.Action)
	}
	if strings.Join(actions, ",") != "member_removed,members_added,members_added" {
		t.Fatalf("class audit = %v", actions)
	}
}

func TestInvites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clock := time.Now()
	e.db.Now = func() time.Time { return clock }
	var c cohort.Class
	e.do("teacher", "POST", "/v1/classes", `{"name": "NLP"}`).json(t, &c)
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/invites", `{"expires_in": "3000h"}`); r.status != 400 {
		t.Fatalf("invite for 3000h = %d", r.status)
	}
	if r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/invites", `{"domain": "not a domain"}`); r.status != 400 {
		t.Fatalf("invite with a bad domain = %d", r.status)
	}
	var inv struct {
		Invite cohort.Invite
		Code   string
		URL    string
	}
	r := e.do("teacher", "POST", "/v1/classes/"+c.ID+"/invites", `{"expires_in": "2h"}`)
	r.json(t, &inv)
	if r.status != http.StatusCreated || inv.Code == "" || !strings.HasSuffix(inv.URL, "/join/"+inv.Code) {
		t.Fatalf("create invite = %d %s", r.status, r.body)
	}
	if r := e.do("teacher", "GET", "/v1/classes/"+c.ID+"/invites", ""); strings.Contains(string(r.body), inv.Code) {
		t.Fatal("listing invites shows their codes")
	}
	if r := e.do("alice", "POST", "/v1/join", `{"code": "`+inv.Code+`"}`); r.status != http.StatusOK {
		t.Fatalf("join = %d %s", r.status, r.body)
	}
	if _, status := e.startSession("alice", c.ID); status != http.StatusCreated {
		t.Fatalf("start after joining = %d", status)
	}
	clock = clock.Add(3 * time.Hour)
	r = e.do("bob", "POST", "/v1/join", `{"code": "`+inv.Code+`"}`)
	if _, _, msg := r.errorCode(); r.status != http.StatusForbidden || !strings.Contains(msg, "expired") {
		t.Fatalf("join with an expired code = %d %s", r.status, r.body)
	}
	var school struct {
		Invite cohort.Invite
		Code   string
	}
	e.do("teacher", "POST", "/v1/classes/"+c.ID+"/invites", `{"domain": "uni.edu"}`).json(t, &school)
	r = e.do("bob", "POST", "/v1/join", `{"code": "`+school.Code+`"}`)
	if _, _, msg := r.errorCode(); r.status != http.StatusForbidden || !strings.Contains(msg, "accounts of uni.edu") {
		t.Fatalf("join a domain invite from a personal account = %d %s", r.status, r.body)
	}
	if r := e.do("teacher", "DELETE", "/v1/classes/"+c.ID+"/invites/"+school.Invite.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke = %d", r.status)
	}
	r = e.do("bob", "POST", "/v1/join", `{"code": "`+school.Code+`"}`)
	if _, _, msg := r.errorCode(); r.status != http.StatusForbidden || !strings.Contains(msg, "revoked") {
		t.Fatalf("join with a revoked code = %d %s", r.status, r.body)
	}
	if r := e.do("bob", "GET", "/v1/classes/"+c.ID, ""); r.status != http.StatusNotFound {
		t.Fatal("refused joins enrolled bob")
	}
	var audit struct{ Events []cohort.AuditEvent }
	e.do("admin", "GET", "/v1/audit", "").json(t, &audit)
	refused := 0
	for _, ev := range audit.Events {
		if ev.Action == cohort.AuditInviteRefused && ev.ActorEmail == "bob@example.com" {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d refused joins audited, want 3", refused)
	}
}

func TestJoinPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var c cohort.Class
	e.do("teacher", "POST", "/v1/classes", `{"name": "NLP"}`).json(t, &c)
	var inv struct{ Code string }
	e.do("teacher", "POST", "/v1/classes/"+c.ID+"/invites", `{}`).json(t, &inv)
	b := newBrowser(t)
	// Not signed in: the join page sends the browser to sign in and back.
	resp, page := signIn(t, e, b, "carol@example.com", "/join/"+inv.Code)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/join/"+inv.Code || !strings.Contains(page, "Join") {
		t.Fatalf("join page after sign-in = %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if resp, _ := b.postForm(e.http.URL+"/join/"+inv.Code, url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("join without CSRF token = %d", resp.StatusCode)
	}
	csrf := csrfOf(t, e, b)
	resp, page = b.postForm(e.http.URL+"/join/"+inv.Code, url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "NLP") {
		t.Fatalf("after joining = %d %s", resp.StatusCode, page)
	}
}

// csrfOf reads the browser session's CSRF token from /v1/me.
func csrfOf(t *testing.T, e *env, b *browser) string {
	t.Helper()
	_, body := b.get(e.http.URL + "/v1/me")
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &me)
	if me.CSRFToken == "" {
		t.Fatalf("no CSRF token in %s", body)
	}
	return me.CSRFToken
}

func TestDeviceSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var dev struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
	}
	r := e.do("", "POST", "/v1/auth/device", `{"client_name": "cohort login on ada-laptop\u0007"}`)
	r.json(t, &dev)
	if r.status != http.StatusCreated || len(dev.UserCode) != 9 || dev.DeviceCode == "" {
		t.Fatalf("device = %d %s", r.status, r.body)
	}
	// No link with the code in it: whoever approves types what their own
	// terminal shows.
	if dev.VerificationURIComplete != "" || strings.Contains(dev.VerificationURI, dev.UserCode) {
		t.Fatalf("the device answer pre-fills the code: %s", r.body)
	}
	poll := func() response {
		return e.do("", "POST", "/v1/auth/device/token", `{"device_code": "`+dev.DeviceCode+`"}`)
	}
	if r := poll(); r.status != http.StatusConflict {
		t.Fatalf("poll before approval = %d %s", r.status, r.body)
	}
	// Polling again at once is too fast: slow_down, as RFC 8628 says.
	if r := poll(); r.status != http.StatusTooManyRequests {
		t.Fatalf("poll without waiting = %d %s, want 429", r.status, r.body)
	} else if code, _, _ := r.errorCode(); code != "slow_down" {
		t.Fatalf("poll without waiting: code %q, want slow_down", code)
	}
	b := newBrowser(t)
	resp, page := signIn(t, e, b, "ada@example.com", "/auth/device?code="+dev.UserCode)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, dev.UserCode) {
		t.Fatalf("device page = %d, must not show a code from its link: %s", resp.StatusCode, page)
	}
	csrf := csrfOf(t, e, b)
	if resp, page := b.postForm(e.http.URL+"/auth/device", url.Values{"code": {"BBBB-CCCC"}, "csrf_token": {csrf}}); resp.StatusCode != 400 || !strings.Contains(page, "unknown, expired") {
		t.Fatalf("approving a wrong code = %d", resp.StatusCode)
	}
	// The typed code first shows who asks: the client as it names itself
	// (printable characters only), its address, and when.
	resp, page = b.postForm(e.http.URL+"/auth/device", url.Values{"code": {strings.ToLower(dev.UserCode)}, "csrf_token": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "<dd>cohort login on ada-laptop <span") || !strings.Contains(page, "127.0.0.1") ||
		!strings.Contains(page, "Asked at") || strings.Contains(page, "now signed in") {
		t.Fatalf("the code's first step = %d %s", resp.StatusCode, page)
	}
	time.Sleep(2 * time.Second) // the CLI's interval
	if r := poll(); r.status != http.StatusConflict {
		t.Fatalf("a code only looked at is approved: poll = %d %s", r.status, r.body)
	}
	resp, page = b.postForm(e.http.URL+"/auth/device", url.Values{"code": {dev.UserCode}, "confirm": {"yes"}, "csrf_token": {csrf}})
	if resp.StatusCode != 200 || !strings.Contains(page, "now signed in") {
		t.Fatalf("approve = %d %s", resp.StatusCode, page)
	}
	time.Sleep(2 * time.Second)
	r = poll()
	var got struct{ Token string }
	r.json(t, &got)
	if r.status != http.StatusCreated || !strings.HasPrefix(got.Token, cohort.TokenPrefix) {
		t.Fatalf("poll after approval = %d %s", r.status, r.body)
	}
	time.Sleep(2 * time.Second)
	if r := poll(); r.status != http.StatusUnauthorized {
		t.Fatalf("second claim = %d, want 401", r.status)
	}
	e.tokens["cli"] = got.Token
	var me cohort.User
	e.do("cli", "GET", "/v1/me", "").json(t, &me)
	if me.Email != "ada@example.com" {
		t.Fatalf("the CLI token belongs to %q", me.Email)
	}
	audit, _ := e.store.ListAudit(context.Background(), cohort.AuditFilter{})
	if !slices.ContainsFunc(audit, func(a *cohort.AuditEvent) bool {
		return a.Action == cohort.AuditDeviceApproved && a.Subject == "cohort login on ada-laptop" && a.ClientAddr == "127.0.0.1"
	}) {
		t.Fatalf("the approval is not in the audit log with the client and address: %+v", audit)
	}
}

// TestDeviceSignInIsRateLimited: one address cannot start sign-ins or try
// codes without bound.
func TestDeviceSignInIsRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	limited := false
	for range 12 {
		if r := e.do("", "POST", "/v1/auth/device", ""); r.status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("12 sign-ins started from one address in a row were all accepted")
	}
	b := newBrowser(t)
	signIn(t, e, b, "ada@example.com", "/")
	csrf := csrfOf(t, e, b)
	limited = false
	for range 12 {
		resp, _ := b.postForm(e.http.URL+"/auth/device", url.Values{"code": {"BBBB-CCCC"}, "csrf_token": {csrf}})
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("12 codes tried from one address in a row were all looked up")
	}
}

func TestInstructorEntryIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := newBackend(t)
	s := readySession(t, e, b)
	for range 3 { // three requests, one visit
		if r := e.do("teacher", "GET", e.nb(s.ID, "/tree"), ""); r.status != http.StatusOK {
			t.Fatalf("instructor through the proxy = %d", r.status)
		}
	}
	if r := e.do("alice", "GET", e.nb(s.ID, "/tree"), ""); r.status != http.StatusOK {
		t.Fatalf("participant through the proxy = %d", r.status)
	}
	var events struct{ Events []cohort.Event }
	e.do("alice", "GET", "/v1/sessions/"+s.ID+"/events", "").json(t, &events)
	entered := 0
	for _, ev := range events.Events {
		if strings.Contains(ev.Message, "instructor teacher@example.com opened this notebook") {
			entered++
		}
	}
	if entered != 1 {
		t.Fatalf("participant sees %d entry events, want 1: %+v", entered, events.Events)
	}
	var audit struct{ Events []cohort.AuditEvent }
	e.do("teacher", "GET", "/v1/classes/"+s.ClassID+"/audit", "").json(t, &audit)
	if len(audit.Events) == 0 || audit.Events[0].Action != cohort.AuditSessionEntered || audit.Events[0].SessionID != s.ID {
		t.Fatalf("class audit = %+v", audit.Events)
	}
	// Stopping someone else's session is recorded too.
	if r := e.do("teacher", "POST", "/v1/sessions/"+s.ID+"/stop", ""); r.status != http.StatusAccepted {
		t.Fatalf("instructor stop = %d", r.status)
	}
	var sessions struct{ Sessions []cohort.Session }
	e.do("teacher", "GET", "/v1/sessions?class_id="+s.ClassID, "").json(t, &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].Reason != "stopped by instructor teacher@example.com" {
		t.Fatalf("instructor's class sessions = %+v", sessions.Sessions)
	}
	e.do("bob", "GET", "/v1/sessions?class_id="+s.ClassID, "").json(t, &sessions)
	if len(sessions.Sessions) != 0 {
		t.Fatal("a participant lists other participants' sessions of the class")
	}
}

func TestAdminManagesUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.users["alice"]
	r := e.do("admin", "PUT", "/v1/users/"+alice.ID+"/role", `{"role": "instructor"}`)
	if r.status != http.StatusOK {
		t.Fatalf("set role = %d %s", r.status, r.body)
	}
	if r := e.do("alice", "POST", "/v1/classes", `{"name": "Mine"}`); r.status != http.StatusCreated {
		t.Fatalf("new instructor creating a class = %d", r.status)
	}
	if r := e.do("admin", "PUT", "/v1/users/"+alice.ID+"/role", `{"role": "god"}`); r.status != 400 {
		t.Fatalf("bad role = %d", r.status)
	}
	if r := e.do("admin", "PUT", "/v1/users/"+e.users["admin"].ID+"/role", `{"role": "participant"}`); r.status != 400 {
		t.Fatalf("admin demoting themselves = %d", r.status)
	}
	if r := e.do("admin", "POST", "/v1/users/"+alice.ID+"/revoke", ""); r.status != http.StatusOK {
		t.Fatalf("revoke = %d", r.status)
	}
	if r := e.do("alice", "GET", "/v1/me", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked token = %d", r.status)
	}
	var audit struct{ Events []cohort.AuditEvent }
	e.do("admin", "GET", "/v1/audit?limit=2", "").json(t, &audit)
	if len(audit.Events) != 2 || audit.Events[0].Action != cohort.AuditCredentialsRevoked || audit.Events[1].Action != "role_changed" && audit.Events[1].Action != cohort.AuditTokenCreated {
		t.Fatalf("audit = %+v", audit.Events)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var created struct{ Token, ID string }
	r := e.do("alice", "POST", "/v1/tokens", `{"name": "laptop"}`)
	r.json(t, &created)
	if r.status != http.StatusCreated || created.Token == "" {
		t.Fatalf("create token = %d %s", r.status, r.body)
	}
	if r := e.do("alice", "POST", "/v1/tokens", `{"name": ""}`); r.status != 400 {
		t.Fatalf("token without a name = %d", r.status)
	}
	var list struct{ Tokens []cohort.Token }
	r = e.do("alice", "GET", "/v1/tokens", "")
	r.json(t, &list)
	if len(list.Tokens) != 2 || strings.Contains(string(r.body), created.Token) {
		t.Fatalf("token list = %s", r.body)
	}
	if r := e.do("bob", "DELETE", "/v1/tokens/"+created.ID, ""); r.status != http.StatusNotFound {
		t.Fatalf("bob revoking alice's token = %d", r.status)
	}
	if r := e.do("alice", "DELETE", "/v1/tokens/"+created.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke own token = %d", r.status)
	}
	e.tokens["laptop"] = created.Token
	if r := e.do("laptop", "GET", "/v1/me", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked token = %d", r.status)
	}
}
