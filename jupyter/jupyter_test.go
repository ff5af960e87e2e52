package jupyter_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/cohortdev/cohort/jupyter"
)

// TestConfig: a notebook listens either on TCP (the session agent on a
// VM) or on a unix socket (the local driver), never on both: Jupyter
// refuses a port given with a socket.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		s         jupyter.Settings
		want      map[string]any
		absent    []string
		args      []string
		transport any
	}{
		{
			name:   "tcp",
			s:      jupyter.Settings{IP: "127.0.0.1", Port: 8888, BasePath: "/s/ses_a/", Token: "tok", ConfigDir: "/c"},
			want:   map[string]any{"ip": "127.0.0.1", "port": 8888.0, "port_retries": 0.0, "base_url": "/s/ses_a/", "token": "tok"},
			absent: []string{"sock", "sock_mode"},
			args:   []string{"--no-browser", "--port=8888", "--ip=127.0.0.1"},
		},
		{
			name: "socket",
			s: jupyter.Settings{Socket: "/run/s/notebook.sock", BasePath: "/", Token: "tok", ConfigDir: "/c",
				RuntimeDir: "/run/s", KernelTransport: "ipc"},
			want:      map[string]any{"sock": "/run/s/notebook.sock", "sock_mode": "0600", "base_url": "/"},
			absent:    []string{"ip", "port", "port_retries"},
			args:      []string{"--no-browser"},
			transport: "ipc",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			files, err := jupyter.Config(c.s)
			if err != nil {
				t.Fatal(err)
			}
			// Notebook 6 and Jupyter Server each read their own file, with
			// the same settings under their own names.
			for file, section := range map[string]string{jupyter.ConfigFile: "NotebookApp", jupyter.ServerConfigFile: "ServerApp"} {
				var cfg map[string]map[string]any
				if err := json.Unmarshal(files[file], &cfg); err != nil {
					t.Fatal(err)
				}
				app := cfg[section]
				for k, v := range c.want {
					if app[k] != v {
						t.Errorf("%s.%s = %v, want %v", section, k, app[k], v)
					}
				}
				for _, k := range c.absent {
					if v, ok := app[k]; ok {
						t.Errorf("%s.%s = %v, want it unset", section, k, v)
					}
				}
				if got := cfg["KernelManager"]["transport"]; got != c.transport {
					t.Errorf("%s: KernelManager.transport = %v, want %v", file, got, c.transport)
				}
			}
			if got := jupyter.Args(c.s); !slices.Equal(got, c.args) {
				t.Errorf("Args = %v, want %v", got, c.args)
			}
			runtime := "JUPYTER_RUNTIME_DIR=" + c.s.RuntimeDir
			if c.s.RuntimeDir == "" {
				runtime = "JUPYTER_RUNTIME_DIR=/c/runtime"
			}
			if env := jupyter.Env(c.s); !slices.Contains(env, runtime) {
				t.Errorf("Env = %v, want %s", env, runtime)
			}
		})
	}
}
