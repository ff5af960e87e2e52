package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// credentials are the API tokens `cohort login` obtained, by server URL,
// in a file only its owner can read.
type credentials struct {
	Servers map[string]credential `json:"servers"`
}

type credential struct {
	Token   string `json:"token"`
	TokenID string `json:"token_id"`
	Email   string `json:"email"`
}

// credentialsPath is where `cohort login` keeps its token: readable by
// the user alone (0600 in ~/.config/cohort; in %AppData%\cohort on
// Windows, which is the user's own).
func credentialsPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" && runtime.GOOS == "windows" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "cohort", "credentials.json"), nil
}

func loadCredentials() (*credentials, error) {
	c := &credentials{Servers: map[string]credential{}}
	path, err := credentialsPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return c, errors.New(path + " is damaged; delete it and run `cohort login` again")
	}
	if c.Servers == nil {
		c.Servers = map[string]credential{}
	}
	return c, nil
}

func (c *credentials) save() error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serverKey(url string) string { return strings.TrimRight(url, "/") }
