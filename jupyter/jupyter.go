// Package jupyter knows how cohort runs and talks to a Jupyter notebook
// server: the settings it starts with, and its status API. The local driver
// and the session agent on GCE both use it, so notebooks are served the
// same way on both paths.
package jupyter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Settings are what cohort decides about a notebook server.
type Settings struct {
	// Port is the loopback (or VM-internal) port to listen on.
	Port int
	// IP is the address to bind; "127.0.0.1" for the local driver.
	IP string
	// BasePath is the path Jupyter serves everything under: "/", since
	// each session has an origin of its own.
	BasePath string
	// Token authenticates cohort's proxy to the notebook.
	Token string
	// NotebookDir is where the participant's files live.
	NotebookDir string
	// ConfigDir receives the generated configuration (holding the token).
	ConfigDir string
}

// WriteConfig writes the notebook configuration into s.ConfigDir. The token
// goes into a file readable only by its owner, not onto the command line
// where every local user could read it in the process list.
func WriteConfig(s Settings) error {
	if err := os.MkdirAll(s.ConfigDir, 0o700); err != nil {
		return err
	}
	cfg := map[string]any{"NotebookApp": map[string]any{
		"token":    s.Token,
		"password": "",
		"base_url": s.BasePath,
		"ip":       s.IP,
		"port":     s.Port,
		// A taken port is an error to report, not a reason to wander off
		// to another port the proxy does not know about.
		"port_retries":          0,
		"open_browser":          false,
		"notebook_dir":          s.NotebookDir,
		"allow_root":            true,
		"quit_button":           false,
		"allow_password_change": false,
		// Requests arrive through cohort's proxy with the public Host
		// header, which Jupyter would otherwise refuse on a loopback bind.
		"allow_remote_access": true,
	}}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.ConfigDir, "jupyter_notebook_config.json"), b, 0o600)
}

// Env returns the environment variables that point Jupyter at the
// configuration of WriteConfig and keep its state out of shared places.
func Env(s Settings) []string {
	return []string{
		"JUPYTER_CONFIG_DIR=" + s.ConfigDir,
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(s.ConfigDir, "runtime"),
	}
}

// Args returns the command-line arguments for the notebook server beyond
// its configuration file (none carry secrets).
func Args(s Settings) []string {
	return []string{"--no-browser", "--port=" + strconv.Itoa(s.Port), "--ip=" + s.IP}
}

// Status is Jupyter's /api/status answer.
type Status struct {
	Started      time.Time `json:"started"`
	LastActivity time.Time `json:"last_activity"`
	Connections  int       `json:"connections"`
	Kernels      int       `json:"kernels"`
}

// GetStatus asks the notebook at address (see BaseURL) under
// basePath for its status. It answers only when the server is ready.
func GetStatus(ctx context.Context, client *http.Client, address, basePath, token string) (*Status, error) {
	base, err := BaseURL(address)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+basePath+"api/status", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %sapi/status: %s", basePath, resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode api/status: %w", err)
	}
	return &st, nil
}

// Kernel is one entry of Jupyter's /api/kernels.
type Kernel struct {
	ID             string    `json:"id"`
	LastActivity   time.Time `json:"last_activity"`
	ExecutionState string    `json:"execution_state"`
	Connections    int       `json:"connections"`
}

// Activity is what the kernels say about use: the latest kernel message
// and whether a kernel is running code now.
type Activity struct {
	LastActivity time.Time
	Busy         bool
}

// GetActivity reads kernel activity from /api/kernels. It uses the
// kernels' own last_activity, which only kernel messages move: Jupyter
// counts the /api/kernels request itself as API activity, so the
// last_activity of /api/status would see this poll as use.
func GetActivity(ctx context.Context, client *http.Client, address, basePath, token string) (Activity, error) {
	base, err := BaseURL(address)
	if err != nil {
		return Activity{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+basePath+"api/kernels", nil)
	if err != nil {
		return Activity{}, err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := client.Do(req)
	if err != nil {
		return Activity{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Activity{}, fmt.Errorf("GET %sapi/kernels: %s", basePath, resp.Status)
	}
	var kernels []Kernel
	if err := json.NewDecoder(resp.Body).Decode(&kernels); err != nil {
		return Activity{}, fmt.Errorf("decode api/kernels: %w", err)
	}
	var a Activity
	for _, k := range kernels {
		if k.LastActivity.After(a.LastActivity) {
			a.LastActivity = k.LastActivity
		}
		a.Busy = a.Busy || k.ExecutionState == "busy"
	}
	return a, nil
}
