// Package client is a Go client of cohort's JSON API, used by the CLI and
// the end-to-end tests.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
)

// Client talks to one cohort server with one API token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client for the server at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: HTTPClient()}
}

// Session is a session as the API returns it.
type Session struct {
	cohort.Session
	URL       string          `json:"url"`
	StopsAt   *time.Time      `json:"stops_at"`
	StopCause cohort.EndCause `json:"stop_cause"`
	Warning   cohort.EndCause `json:"warning"`
}

// do sends a JSON request and decodes a JSON answer into out. An error
// answer becomes a *cohort.Error with the server's code and message.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach cohort at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

func (c *Client) authorize(req *http.Request) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

func decodeError(resp *http.Response) error {
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return fmt.Errorf("cohort answered %s", resp.Status)
	}
	return &cohort.Error{Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
}

// Me returns the user the token belongs to.
func (c *Client) Me(ctx context.Context) (*cohort.User, error) {
	var u cohort.User
	_, err := c.do(ctx, http.MethodGet, "/v1/me", nil, &u)
	return &u, err
}

// CreateClass creates a class from a JSON-able input (fields of the API's
// ClassInput); omitted fields take the server's defaults.
func (c *Client) CreateClass(ctx context.Context, in any) (*cohort.Class, error) {
	var cl cohort.Class
	_, err := c.do(ctx, http.MethodPost, "/v1/classes", in, &cl)
	return &cl, err
}

// UpdateClass changes the given fields of a class.
func (c *Client) UpdateClass(ctx context.Context, id string, in any) (*cohort.Class, error) {
	var cl cohort.Class
	_, err := c.do(ctx, http.MethodPatch, "/v1/classes/"+url.PathEscape(id), in, &cl)
	return &cl, err
}

// GetClass returns a class.
func (c *Client) GetClass(ctx context.Context, id string) (*cohort.Class, error) {
	var cl cohort.Class
	_, err := c.do(ctx, http.MethodGet, "/v1/classes/"+url.PathEscape(id), nil, &cl)
	return &cl, err
}

// ClassCost returns what a class has cost and can cost.
func (c *Client) ClassCost(ctx context.Context, id string) (*cohort.ClassCost, error) {
	var out cohort.ClassCost
	_, err := c.do(ctx, http.MethodGet, "/v1/classes/"+url.PathEscape(id)+"/cost", nil, &out)
	return &out, err
}

// MonthSpend returns what the installation spent in a month ("2026-12";
// this month if empty), by class (admins).
func (c *Client) MonthSpend(ctx context.Context, month string) (*cohort.MonthSpend, error) {
	var out cohort.MonthSpend
	path := "/v1/spend"
	if month != "" {
		path += "?month=" + url.QueryEscape(month)
	}
	_, err := c.do(ctx, http.MethodGet, path, nil, &out)
	return &out, err
}

// SetSettings replaces the installation's settings (admins).
func (c *Client) SetSettings(ctx context.Context, s cohort.Settings) (*cohort.Settings, error) {
	var out cohort.Settings
	_, err := c.do(ctx, http.MethodPut, "/v1/settings", s, &out)
	return &out, err
}

// ListClasses returns the classes.
func (c *Client) ListClasses(ctx context.Context) ([]cohort.Class, error) {
	var out struct{ Classes []cohort.Class }
	_, err := c.do(ctx, http.MethodGet, "/v1/classes", nil, &out)
	return out.Classes, err
}

// DeleteClass deletes a class with no active session.
func (c *Client) DeleteClass(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/classes/"+url.PathEscape(id), nil, nil)
	return err
}

// StartSession starts (created) or reconnects to the caller's session.
func (c *Client) StartSession(ctx context.Context, classID string) (s *Session, created bool, err error) {
	s = &Session{}
	status, err := c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/sessions", nil, s)
	return s, status == http.StatusCreated, err
}

// StartAllResult is what starting every seat of a class did.
type StartAllResult struct {
	Started    int `json:"started"`
	Running    int `json:"running"`
	NoSeat     int `json:"no_seat"`
	OverBudget int `json:"over_budget"`
}

// StartAll starts a session for every participant of a class who has
// none (instructors).
func (c *Client) StartAll(ctx context.Context, classID string) (StartAllResult, error) {
	var r StartAllResult
	_, err := c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/start-all", nil, &r)
	return r, err
}

// StopAll asks every active session of a class to stop and says how many
// it asked (instructors).
func (c *Client) StopAll(ctx context.Context, classID string) (int, error) {
	var r struct{ Stopped int }
	_, err := c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/stop-all", nil, &r)
	return r.Stopped, err
}

// WarmPool returns a class's warm seats (instructors).
func (c *Client) WarmPool(ctx context.Context, classID string) (*cohort.WarmPool, error) {
	var p cohort.WarmPool
	_, err := c.do(ctx, http.MethodGet, "/v1/classes/"+url.PathEscape(classID)+"/warm", nil, &p)
	return &p, err
}

// WarmNow keeps seats of a class warm from now until until (zero: the
// class's end): seats of them, or with roster one per participant yet to
// start (instructors).
func (c *Client) WarmNow(ctx context.Context, classID string, seats int, roster bool, until time.Time) (*cohort.WarmPool, error) {
	in := map[string]any{"seats": seats, "roster": roster}
	if !until.IsZero() {
		in["until"] = until
	}
	var p cohort.WarmPool
	_, err := c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/warm", in, &p)
	return &p, err
}

// Drain stops a class's unclaimed warm seats and its warm schedule.
func (c *Client) Drain(ctx context.Context, classID string) (*cohort.WarmPool, error) {
	var p cohort.WarmPool
	_, err := c.do(ctx, http.MethodDelete, "/v1/classes/"+url.PathEscape(classID)+"/warm", nil, &p)
	return &p, err
}

// GetSession returns a session.
func (c *Client) GetSession(ctx context.Context, id string) (*Session, error) {
	var s Session
	_, err := c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil, &s)
	return &s, err
}

// ListSessions returns the caller's sessions, optionally of one class.
func (c *Client) ListSessions(ctx context.Context, classID string) ([]Session, error) {
	var out struct{ Sessions []Session }
	q := ""
	if classID != "" {
		q = "?class_id=" + url.QueryEscape(classID)
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/sessions"+q, nil, &out)
	return out.Sessions, err
}

// StopSession asks for a session to stop.
func (c *Client) StopSession(ctx context.Context, id string) (*Session, error) {
	var s Session
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/stop", nil, &s)
	return &s, err
}

// KeepAlive counts as use of the session now.
func (c *Client) KeepAlive(ctx context.Context, id string) (*Session, error) {
	var s Session
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/keepalive", nil, &s)
	return &s, err
}

// Extend moves a session's maximum lifetime later (instructors).
func (c *Client) Extend(ctx context.Context, id string, by time.Duration) (*Session, error) {
	var s Session
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/extend", map[string]string{"by": by.String()}, &s)
	return &s, err
}

// OpenSession returns a one-time link that opens the notebook in a browser.
func (c *Client) OpenSession(ctx context.Context, id string) (string, error) {
	var out struct{ URL string }
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/open", nil, &out)
	return out.URL, err
}

// ListEvents returns a session's progress so far.
func (c *Client) ListEvents(ctx context.Context, id string) ([]cohort.Event, error) {
	var out struct{ Events []cohort.Event }
	_, err := c.do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id)+"/events", nil, &out)
	return out.Events, err
}

// FollowEvents streams a session's events after the given ID to fn until
// the session ends, fn returns false, or ctx ends.
func (c *Client) FollowEvents(ctx context.Context, id string, after int64, fn func(cohort.Event) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.BaseURL+"/v1/sessions/"+url.PathEscape(id)+"/events?after="+strconv.FormatInt(after, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach cohort at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if name == "end" {
				return nil
			}
			var e cohort.Event
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			if !fn(e) {
				return nil
			}
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return ctx.Err()
}

// AddMembers puts emails on a class's roster as participants or instructors.
func (c *Client) AddMembers(ctx context.Context, classID string, emails []string, role cohort.MemberRole) (added int, err error) {
	var out struct{ Added int }
	_, err = c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/members", map[string]any{"emails": emails, "role": role}, &out)
	return out.Added, err
}

// AddMembersCSV uploads a CSV roster (a column headed "email", or emails
// in the first column).
func (c *Client) AddMembersCSV(ctx context.Context, classID string, csv io.Reader) (added int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/classes/"+url.PathEscape(classID)+"/members", csv)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/csv")
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach cohort at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	var out struct{ Added int }
	return out.Added, json.NewDecoder(resp.Body).Decode(&out)
}

// ListMembers returns a class's roster.
func (c *Client) ListMembers(ctx context.Context, classID string) ([]cohort.Member, error) {
	var out struct{ Members []cohort.Member }
	_, err := c.do(ctx, http.MethodGet, "/v1/classes/"+url.PathEscape(classID)+"/members", nil, &out)
	return out.Members, err
}

// Invite is a new invite link with its one-time-shown code.
type Invite struct {
	Invite cohort.Invite
	Code   string
	URL    string
}

// CreateInvite makes an invite link for a class.
func (c *Client) CreateInvite(ctx context.Context, classID string, expiresIn time.Duration, domain string) (*Invite, error) {
	var out Invite
	in := map[string]any{"domain": domain}
	if expiresIn > 0 {
		in["expires_in"] = expiresIn.String()
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/classes/"+url.PathEscape(classID)+"/invites", in, &out)
	return &out, err
}

// Join enrolls the caller with an invite code.
func (c *Client) Join(ctx context.Context, code string) (*cohort.Class, error) {
	var cl cohort.Class
	_, err := c.do(ctx, http.MethodPost, "/v1/join", map[string]string{"code": code}, &cl)
	return &cl, err
}

// ListTokens returns the caller's API tokens.
func (c *Client) ListTokens(ctx context.Context) ([]cohort.Token, error) {
	var out struct{ Tokens []cohort.Token }
	_, err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
	return out.Tokens, err
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil)
	return err
}

// ListAudit returns audit events, of one class or (admins) all.
func (c *Client) ListAudit(ctx context.Context, classID string, limit int) ([]cohort.AuditEvent, error) {
	path := "/v1/audit"
	if classID != "" {
		path = "/v1/classes/" + url.PathEscape(classID) + "/audit"
	}
	var out struct{ Events []cohort.AuditEvent }
	_, err := c.do(ctx, http.MethodGet, path+"?limit="+strconv.Itoa(limit), nil, &out)
	return out.Events, err
}

// DeviceLogin is a CLI sign-in in progress: the person types UserCode at
// VerificationURI in a signed-in browser.
type DeviceLogin struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
}

// StartLogin begins a CLI sign-in; no token is needed. clientName is
// shown to the person who approves it (e.g. "cohort login on ada-laptop").
func (c *Client) StartLogin(ctx context.Context, clientName string) (*DeviceLogin, error) {
	var d DeviceLogin
	_, err := c.do(ctx, http.MethodPost, "/v1/auth/device", map[string]string{"client_name": clientName}, &d)
	return &d, err
}

// FinishLogin polls until the sign-in is approved (returning a new API
// token and its ID), refused, expired, or ctx ends. Told to slow down, it
// polls 5 seconds slower from then on (RFC 8628).
func (c *Client) FinishLogin(ctx context.Context, d *DeviceLogin, tokenName string) (token, id string, err error) {
	interval := time.Duration(max(d.Interval, 1)) * time.Second
	for {
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(interval):
		}
		var out struct{ Token, ID string }
		_, err := c.do(ctx, http.MethodPost, "/v1/auth/device/token", map[string]string{"device_code": d.DeviceCode, "name": tokenName}, &out)
		switch cohort.ErrorCode(err) {
		case cohort.ECONFLICT: // not approved yet
		case "slow_down":
			interval += 5 * time.Second
		default:
			return out.Token, out.ID, err
		}
	}
}
