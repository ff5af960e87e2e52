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
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: http.DefaultClient}
}

// Session is a session as the API returns it.
type Session struct {
	cohort.Session
	URL string `json:"url"`
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

// OpenSession returns a one-time link that opens the notebook in a browser.
func (c *Client) OpenSession(ctx context.Context, id string) (string, error) {
	var out struct{ URL string }
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/open", nil, &out)
	return out.URL, err
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
