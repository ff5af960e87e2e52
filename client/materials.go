package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/cohortdev/cohort"
)

// Materials returns a class's materials and how long its work is kept.
func (c *Client) Materials(ctx context.Context, classID string) (*cohort.MaterialsView, error) {
	var v cohort.MaterialsView
	_, err := c.do(ctx, http.MethodGet, materialsPath(classID), nil, &v)
	return &v, err
}

// SetMaterialsRepo sets a class's materials to a git repository's ref
// (the default branch if empty), with a private one's token, which the
// server fetches at once.
func (c *Client) SetMaterialsRepo(ctx context.Context, classID string, in cohort.RepoInput) (*cohort.MaterialsView, error) {
	var v cohort.MaterialsView
	_, err := c.do(ctx, http.MethodPut, materialsPath(classID), in, &v)
	return &v, err
}

// UploadMaterials sets a class's materials to an archive (zip, tar or
// tar.gz) named name.
func (c *Client) UploadMaterials(ctx context.Context, classID, name string, archive io.Reader) (*cohort.MaterialsView, error) {
	resp, err := c.stream(ctx, http.MethodPut, materialsPath(classID)+"/archive?name="+url.QueryEscape(name), archive)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v cohort.MaterialsView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("decode the answer: %w", err)
	}
	return &v, nil
}

// RemoveMaterials leaves a class without materials.
func (c *Client) RemoveMaterials(ctx context.Context, classID string) (*cohort.MaterialsView, error) {
	var v cohort.MaterialsView
	_, err := c.do(ctx, http.MethodDelete, materialsPath(classID), nil, &v)
	return &v, err
}

// PullMaterials merges the class's newest materials into a running
// session's work, and says what changed.
func (c *Client) PullMaterials(ctx context.Context, sessionID string) (string, error) {
	var out struct{ Summary string }
	_, err := c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/materials", nil, &out)
	return out.Summary, err
}

// DownloadWork writes the caller's work of a class, as a zip, to w.
func (c *Client) DownloadWork(ctx context.Context, classID string, w io.Writer) (int64, error) {
	return c.download(ctx, "/v1/classes/"+url.PathEscape(classID)+"/work", w)
}

// Collect writes every participant's copy of the files matching paths
// (names or patterns such as *.ipynb), as one zip of EMAIL/PATH, to w.
func (c *Client) Collect(ctx context.Context, classID string, paths []string, w io.Writer) (int64, error) {
	q := url.Values{"path": paths}
	return c.download(ctx, "/v1/classes/"+url.PathEscape(classID)+"/collect?"+q.Encode(), w)
}

func materialsPath(classID string) string {
	return "/v1/classes/" + url.PathEscape(classID) + "/materials"
}

// stream sends a body as it is and returns the answer, or the API's
// error.
func (c *Client) stream(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	c.authorize(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach cohort at %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

func (c *Client) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := c.stream(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download cut short after %d bytes: %w", n, err)
	}
	return n, nil
}
