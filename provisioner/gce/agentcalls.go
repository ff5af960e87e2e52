package gce

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/jupyter"
	"github.com/cohortdev/cohort/materials"
)

// What the control plane asks of a session VM's agent on its control port
// (agent/control.go): the class's materials merged into the work disk,
// and the work as a tar, made a zip here. Whatever a VM answers is the
// participant's to shape (they control its processes): it is read as
// untrusted input, within limits.

var (
	_ cohort.Puller     = (*Driver)(nil)
	_ cohort.WorkReader = (*Driver)(nil)
)

// MaterialsOpener opens a stored version of a class's materials
// (materials.Library).
type MaterialsOpener interface {
	Open(version string) (*os.File, error)
}

// deliverTimeout bounds a delivery of materials at a session's start
// (inside the reconciler's look at it): one that takes longer is tried
// again at the next look.
const deliverTimeout = 2 * time.Minute

// agentClient calls the VMs' agents: a VM must answer within 30 s, and a
// download has no time limit but its request's (and idle's).
func agentClient() *http.Client {
	c := jupyter.NewClient(0)
	c.Transport.(*http.Transport).ResponseHeaderTimeout = 30 * time.Second
	return c
}

// agentCall calls a session VM's agent with the session's notebook token.
func (d *Driver) agentCall(ctx context.Context, ip, token, method, pathQuery string, header http.Header, body io.Reader) (*http.Response, error) {
	u := "http://" + net.JoinHostPort(ip, strconv.Itoa(d.opts.AgentPort)) + pathQuery
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := d.agent.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the session VM's agent: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		return nil, fmt.Errorf("the session VM's agent answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// merge sends a version of the class's materials (its tar) to a VM's
// agent, which merges it into the work disk; it returns what changed, in
// words.
func (d *Driver) merge(ctx context.Context, ip, token, version string, tar io.Reader) (string, error) {
	resp, err := d.agentCall(ctx, ip, token, http.MethodPut, "/cohort/materials", http.Header{"X-Cohort-Version": {version}}, tar)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var rep materials.Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep); err != nil {
		return "", fmt.Errorf("the session VM's agent: %w", err)
	}
	summary := rep.Summary()
	if len(summary) > 500 {
		summary = summary[:500] + "…"
	}
	return summary, nil
}

// deliver merges a version of the class's materials into a session's
// work, once: at its start, when its notebook first answers. A version
// this server does not have is skipped, saying so (the participant can
// pull it later); an agent that fails is asked again at the next look.
func (d *Driver) deliver(ctx context.Context, m *cohort.ShardMember, mb member, ip, token string) error {
	note := ""
	f, err := d.opts.Materials.Open(mb.Materials)
	switch {
	case cohort.ErrorCode(err) == cohort.ENOTFOUND:
		note = "the class's materials " + mb.Materials + " are not on this server: use “Get the class's updates” once it has them"
	case err != nil:
		return err
	default:
		note, err = d.merge(ctx, ip, token, mb.Materials, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	err = d.opts.Shards.EditShards(ctx, m.ClassID, func(set *cohort.ShardSet) error {
		m := set.Members[m.SessionID]
		if m == nil {
			return nil
		}
		mb, err := readMember(m)
		if err != nil {
			return err
		}
		mb.Delivered = mb.Materials
		writeMember(m, mb)
		return nil
	})
	if err == nil {
		d.progress(ctx, m.SessionID, note)
	}
	return err
}

// PullMaterials merges the class's newest materials into a running
// session's work disk, through its VM's agent.
func (d *Driver) PullMaterials(ctx context.Context, spec cohort.NotebookSpec) (string, error) {
	m, err := d.opts.Shards.ShardMember(ctx, spec.SessionID)
	if err != nil {
		return "", err
	}
	out, up := readVM(m)
	mb, err := readMember(m)
	if err != nil || !up || !m.Wanted || mb.Spec.Work == nil {
		return "", cohort.Errorf(cohort.ECONFLICT, "session %s has no running VM with a work disk", spec.SessionID)
	}
	f, err := os.Open(spec.Materials.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	summary, err := d.merge(ctx, out.InternalIP, mb.Spec.NotebookToken, spec.Materials.Version, f)
	if err != nil {
		return "", cohort.Errorf(cohort.EUNAVAILABLE, "deliver the class's materials: %v", err)
	}
	return summary, nil
}

// ZipWork adds a participant's work of a class to zw, from the work disk
// of their running session (cohort.WorkReader); with none running, from
// the copy the last one left (copies.go).
func (d *Driver) ZipWork(ctx context.Context, zw *zip.Writer, classID, userID, prefix string, patterns []string) error {
	members, err := d.opts.Shards.ListShardMembers(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		out, up := readVM(m)
		if m.ClassID != classID || !m.Wanted || m.Failed != "" || !up {
			continue
		}
		mb, err := readMember(m)
		if err != nil || mb.UserID != userID || mb.Spec.Work == nil {
			continue
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		q := url.Values{"path": patterns}
		resp, err := d.agentCall(ctx, out.InternalIP, mb.Spec.NotebookToken, http.MethodGet, "/cohort/work.tar?"+q.Encode(), nil, nil)
		if err != nil {
			// Nothing written yet: the copy the last stop kept, if any.
			d.log.Warn("read the work of a running session; trying its last copy", "session_id", m.SessionID, "error", err)
			return d.zipCopy(ctx, zw, classID, userID, prefix, patterns)
		}
		defer resp.Body.Close()
		// The VM may ignore the patterns, or stall: the patterns are
		// applied here too, and a minute without a byte ends the read.
		_, err = materials.ZipFromTar(ctx, zw, idle(resp.Body, cancel, time.Minute), prefix, materials.Matching(patterns))
		return err
	}
	return d.zipCopy(ctx, zw, classID, userID, prefix, patterns)
}

// idle reads r, calling stop once nothing arrives for a while.
func idle(r io.Reader, stop func(), after time.Duration) io.Reader {
	return &idleReader{r: r, timer: time.AfterFunc(after, stop), after: after}
}

type idleReader struct {
	r     io.Reader
	timer *time.Timer
	after time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.timer.Reset(i.after)
	}
	if err != nil {
		i.timer.Stop()
	}
	return n, err
}
