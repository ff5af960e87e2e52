package agent

import (
	"archive/tar"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/materials"
)

// The agent's control port (infra.AgentPort), which only cohort's control
// plane reaches (the firewall): it takes the class's materials into the
// participant's work, and gives the work out as a zip. Every call carries
// the session's notebook token, as Jupyter's own calls do: the one in the
// metadata, or the one Jupyter takes now (a claimed warm seat's, before
// its metadata catches up).
//
//	GET /cohort/materials   the version last delivered: {"version": V}
//	PUT /cohort/materials   a version (cohort's tar; X-Cohort-Version) merged in: materials.Report
//	GET /cohort/work.tar    the work folder, or the files matching ?path= patterns (materials.Tar)

// MaxMaterials bounds a version's tar as the agent takes it (the
// library's own limit on what it unpacks, with the tar's headers).
const MaxMaterials = 300 << 20

func (a *Agent) control(s jupyter.Settings) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cohort/materials", func(w http.ResponseWriter, r *http.Request) {
		root, err := os.OpenRoot(s.NotebookDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer root.Close()
		writeJSON(w, map[string]string{"version": materials.Delivered(root)})
	})
	mux.HandleFunc("PUT /cohort/materials", func(w http.ResponseWriter, r *http.Request) {
		rep, err := a.merge(s.NotebookDir, r.Header.Get("X-Cohort-Version"), http.MaxBytesReader(w, r.Body, MaxMaterials))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.log.Info("materials merged", "version", rep.Version, "summary", rep.Summary())
		writeJSON(w, rep)
	})
	mux.HandleFunc("GET /cohort/work.tar", func(w http.ResponseWriter, r *http.Request) {
		root, err := os.OpenRoot(s.NotebookDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer root.Close()
		w.Header().Set("Content-Type", "application/x-tar")
		tw := tar.NewWriter(w)
		if _, err := materials.Tar(r.Context(), tw, root, materials.Matching(r.URL.Query()["path"])); err != nil {
			a.log.Warn("work tar cut short", "error", err)
			panic(http.ErrAbortHandler) // a cut tar, never a short one that looks whole
		}
		tw.Close()
	})
	return a.authorized(s, a.mounted(mux))
}

// mounted holds the calls back while a work disk the metadata announces
// is not mounted yet (a claimed warm seat's is attached after the claim):
// they would reach the folder the disk is about to hide.
func (a *Agent) mounted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.WorkReady != "" && !exists(a.opts.WorkReady) {
			if dev, err := a.metadata(r.Context(), infra.MetaWorkDevice); err == nil && dev != "" {
				http.Error(w, "the work disk is not mounted yet", http.StatusServiceUnavailable)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// merge takes a version's tar into the work folder.
func (a *Agent) merge(dir, version string, body io.Reader) (*materials.Report, error) {
	if version == "" {
		return nil, fmt.Errorf("X-Cohort-Version is missing")
	}
	tmp, err := os.CreateTemp("", "cohort-materials-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, body); err != nil {
		return nil, fmt.Errorf("read materials %s: %w", version, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return materials.Merge(root, &cohort.Snapshot{Version: version, Path: tmp.Name()})
}

// authorized lets through the calls that carry the session's notebook
// token.
func (a *Agent) authorized(s jupyter.Settings, next http.Handler) http.Handler {
	jupyterAddr := "http://127.0.0.1:" + strconv.Itoa(s.Port)
	if s.IP != "0.0.0.0" {
		jupyterAddr = "http://" + net.JoinHostPort(s.IP, strconv.Itoa(s.Port))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := cutToken(r.Header.Get("Authorization"))
		if ok {
			meta, err := a.metadata(r.Context(), infra.MetaToken)
			ok = err == nil && subtle.ConstantTimeCompare([]byte(meta), []byte(token)) == 1
		}
		if !ok && token != "" {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			_, err := jupyter.GetStatus(ctx, a.http, jupyterAddr, s.BasePath, token)
			cancel()
			ok = err == nil
		}
		if !ok {
			http.Error(w, "cohort agent: the session's notebook token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cutToken(h string) (string, bool) {
	if len(h) > 6 && (h[:6] == "token " || h[:6] == "Token ") {
		return h[6:], true
	}
	return "", false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
