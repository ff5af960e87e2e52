// Package jupyter knows how cohort runs and talks to a Jupyter notebook
// server: the settings it starts with, and its status API. The local driver
// and the session agent on GCE both use it, so notebooks are served the
// same way on both paths.
package jupyter

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Settings are what cohort decides about a notebook server.
type Settings struct {
	// Port is the loopback (or VM-internal) port to listen on, with IP the
	// address to bind: the session agent on a GCE VM listens on TCP.
	Port int
	IP   string
	// Socket, if set, is the unix socket to listen on instead of TCP
	// (Port and IP are then unused): the local driver's notebooks, which
	// only the session's user and cohort may reach. Jupyter creates it
	// with mode 0600; its directory must be private as well.
	Socket string
	// BasePath is the URL prefix Jupyter serves everything under, "/"
	// when the notebook has an origin of its own.
	BasePath string
	// Token authenticates cohort's proxy to the notebook.
	Token string
	// NotebookDir is where the participant's files live.
	NotebookDir string
	// ConfigDir receives the generated configuration (holding the token).
	ConfigDir string
	// RuntimeDir holds Jupyter's runtime files: the kernels' connection
	// files (with their keys) and, on IPC transport, their sockets. Empty
	// means ConfigDir/runtime.
	RuntimeDir string
	// KernelTransport is how the server talks to its kernels: "tcp"
	// (Jupyter's default, when empty) or "ipc", unix sockets beside the
	// connection files, so that no other local user can connect to a
	// kernel's ports.
	KernelTransport string
}

// runtimeDir is where Jupyter keeps its runtime files.
func (s Settings) runtimeDir() string {
	if s.RuntimeDir != "" {
		return s.RuntimeDir
	}
	return filepath.Join(s.ConfigDir, "runtime")
}

// Config returns the notebook configuration files, by name in
// ConfigDir, which hold the token: they belong in files readable only by
// their owner, not on the command line where every local user could read
// them in the process list. There are two, one for each kind of server,
// which each reads its own: Notebook 6 (NotebookApp, Debian's, the local
// driver's) reads ConfigFile; Jupyter Server (ServerApp: Notebook 7,
// JupyterLab 4, the runtime image's) reads ServerConfigFile.
func Config(s Settings) (map[string][]byte, error) {
	app := map[string]any{
		"token":                 s.Token,
		"password":              "",
		"base_url":              s.BasePath,
		"open_browser":          false,
		"allow_root":            true,
		"quit_button":           false,
		"allow_password_change": false,
		// Requests arrive through cohort's proxy with the public Host
		// header, which Jupyter would otherwise refuse on a loopback bind.
		"allow_remote_access": true,
	}
	if s.Socket != "" {
		app["sock"], app["sock_mode"] = s.Socket, "0600"
	} else {
		app["ip"], app["port"] = s.IP, s.Port
		// A taken port is an error to report, not a reason to wander off
		// to another port the proxy does not know about.
		app["port_retries"] = 0
	}
	notebook, server := maps.Clone(app), maps.Clone(app)
	// The folder, and cohort's extension (Claim), from ExtensionFile in
	// ConfigDir, each under its server's name for them.
	notebook["notebook_dir"] = s.NotebookDir
	notebook["nbserver_extensions"] = map[string]bool{extensionModule: true}
	server["root_dir"] = s.NotebookDir
	server["jpserver_extensions"] = map[string]bool{extensionModule: true}
	files := map[string][]byte{}
	for name, cfg := range map[string]map[string]any{
		ConfigFile: {"NotebookApp": notebook},
		// Jupyter Server 2 reads the token from its identity provider
		// (ServerApp.token is its deprecated alias); 1.x has none, and
		// ignores the section.
		ServerConfigFile: {"ServerApp": server, "IdentityProvider": map[string]any{"token": s.Token}},
	} {
		if s.KernelTransport != "" {
			// jupyter_client (7.4) derives an IPC kernel's socket paths
			// from its connection file, which the server puts in the
			// runtime dir.
			cfg["KernelManager"] = map[string]any{"transport": s.KernelTransport}
		}
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode notebook config: %w", err)
		}
		files[name] = b
	}
	return files, nil
}

// ConfigFile and ServerConfigFile are the configuration files in
// ConfigDir: Notebook 6's and Jupyter Server's.
const (
	ConfigFile       = "jupyter_notebook_config.json"
	ServerConfigFile = "jupyter_server_config.json"
)

// Extension is cohort's notebook server extension, which lets Claim
// replace the token of a running server. It belongs in ExtensionFile.
//
//go:embed cohort_token.py
var Extension []byte

const extensionModule = "cohort_token"

// ExtensionFile is where Extension goes, relative to ConfigDir (Env puts
// its directory on the server's Python path).
var ExtensionFile = filepath.Join("python", extensionModule+".py")

// WriteConfig writes the notebook configuration (see Config) and the
// extension into s.ConfigDir, readable by its owner only.
func WriteConfig(s Settings) error {
	files, err := Config(s)
	if err != nil {
		return err
	}
	files[ExtensionFile] = Extension
	if err := os.MkdirAll(filepath.Join(s.ConfigDir, filepath.Dir(ExtensionFile)), 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.ConfigDir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Env returns the environment variables that point Jupyter at the
// configuration of WriteConfig and keep its state out of shared places.
func Env(s Settings) []string {
	return []string{
		"JUPYTER_CONFIG_DIR=" + s.ConfigDir,
		"JUPYTER_RUNTIME_DIR=" + s.runtimeDir(),
		"PYTHONPATH=" + filepath.Join(s.ConfigDir, filepath.Dir(ExtensionFile)),
	}
}

// Claim replaces the token of the running notebook at address: after it,
// only token opens it, and the login cookies it set before are void. A
// warm seat's claim calls it, so that nothing that could reach the seat
// before its participant took it can reach it after.
func Claim(ctx context.Context, client *http.Client, address, basePath, old, token string) error {
	base, err := BaseURL(address)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+basePath+"cohort/token", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+old)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("PUT %scohort/token: %s", basePath, resp.Status)
	}
	return nil
}

// Args returns the command-line arguments for the notebook server beyond
// its configuration file (none carry secrets).
func Args(s Settings) []string {
	if s.Socket != "" {
		// Jupyter refuses --port together with a socket.
		return []string{"--no-browser"}
	}
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
