package materials

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cohortdev/cohort"
)

// Fetch looks up ref (the default branch if empty) of a git repository,
// stores its commit as a version unless stored already, and returns its
// description. credential is the class's token for a private repository,
// sealed for repo (Seal), or empty.
//
// A commit stored already is found by `git ls-remote` alone, without a
// fetch (docs/benchmarks.md: about 30 ms against 130 ms for a local
// repository), and only if a fetch from this repository with the same
// credential succeeded for it before (fetched): a stored version is
// never handed to a caller who cannot read the repository it came from
// (a private commit named by its hash, advertised by another server, or
// left in the clone by a fetch that failed).
//
// Only the commit is fetched (depth 1, no tags, no submodules); symlinks
// in it are left out (a repository's symlink is content, unlike an
// archive's, but cohort delivers files only). A repository that does not
// exist, needs credentials or lacks the ref is an EINVALID error naming
// the field; one that cannot be reached is EUNAVAILABLE.
func (l *Library) Fetch(ctx context.Context, repo, ref, credential string) (*cohort.Materials, error) {
	repo = strings.TrimSpace(repo)
	if err := cohort.ValidateRepo(repo, ref, l.local); err != nil {
		return nil, err
	}
	r, err := l.remote(repo, credential)
	if err != nil {
		return nil, err
	}
	bare := l.clone(repo)
	l.touch(bare) // used now: Prune leaves it a while
	described := func(m *cohort.Materials) *cohort.Materials {
		m.Repo, m.Ref, m.Private, m.Credential = repo, ref, credential != "", credential
		return m
	}
	// The lookup runs outside the repository's lock: lookups of a class's
	// sessions starting together run side by side; fetches, which write
	// the bare clone, one at a time.
	commit, ok := l.remoteCommit(ctx, r, ref)
	stored := func() (*cohort.Materials, bool) {
		if !ok || !l.fetched(ctx, bare, r, commit) {
			return nil, false
		}
		m, err := l.describe("git-" + commit)
		return m, err == nil
	}
	if m, ok := stored(); ok {
		return described(m), nil
	}
	defer l.lockClone(bare)()
	// Another start may have fetched it while this one waited.
	if m, ok := stored(); ok {
		return described(m), nil
	}
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err != nil {
		os.RemoveAll(bare)
		if _, err := l.git(ctx, "", nil, "init", "--bare", "--quiet", bare); err != nil {
			return nil, err
		}
	}
	want := ref
	if want == "" {
		want = "HEAD"
	}
	if _, err := l.git(ctx, bare, r.env, "fetch", "--quiet", "--depth=1", "--no-tags", "--no-recurse-submodules", "--", repo, want); err != nil {
		return nil, r.error(err, ref)
	}
	out, err := l.git(ctx, bare, nil, "rev-parse", "--verify", "FETCH_HEAD^{commit}")
	if err != nil {
		return nil, r.error(err, ref)
	}
	commit = strings.TrimSpace(string(out))
	m, err := l.gitVersion(ctx, bare, commit)
	if err != nil {
		return nil, err
	}
	if _, err := l.git(ctx, bare, nil, "update-ref", r.fetchedRef(commit), commit); err != nil {
		return nil, err
	}
	l.touch(bare) // made or fetched into now, by the library's clock
	return described(m), nil
}

// remoteCommit returns the commit ref names in the repository, by `git
// ls-remote`, if the answer is plain: a full commit as ref names itself
// (once the repository answered, so the caller can read it); a tag
// (peeled) is taken before a branch, as git's own lookup does; an answer
// it cannot place (a ref that does not exist, an error) is left to the
// fetch, which words it.
func (l *Library) remoteCommit(ctx context.Context, r *remote, ref string) (string, bool) {
	want := ref
	if want == "" || fullCommit.MatchString(ref) {
		want = "HEAD"
	}
	out, err := l.git(ctx, "", r.env, "ls-remote", "--", r.url, want)
	if err != nil {
		return "", false
	}
	if fullCommit.MatchString(ref) {
		return ref, true
	}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if commit, name, ok := strings.Cut(line, "\t"); ok {
			found[name] = commit
		}
	}
	for _, name := range []string{want, "refs/tags/" + ref + "^{}", "refs/tags/" + ref, "refs/heads/" + ref} {
		if c, ok := found[name]; ok && fullCommit.MatchString(c) {
			return c, true
		}
	}
	return "", false
}

// clone is the path of a repository's shallow bare clone.
func (l *Library) clone(repo string) string {
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(l.dir, "repos", hex.EncodeToString(sum[:8])+".git")
}

// fetched says whether a fetch of commit from the remote, with its
// credential, succeeded before: it left a ref in the clone. The
// objects alone would not say so: a fetch that fails (a server sending
// an incomplete pack) leaves the objects it got.
func (l *Library) fetched(ctx context.Context, bare string, r *remote, commit string) bool {
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err != nil {
		return false
	}
	_, err := l.git(ctx, bare, nil, "show-ref", "--verify", "--quiet", r.fetchedRef(commit))
	return err == nil
}

var fullCommit = regexp.MustCompile(`^[0-9a-f]{40}$`)

// gitVersion stores a fetched commit as a version, unless it is.
func (l *Library) gitVersion(ctx context.Context, bare, commit string) (*cohort.Materials, error) {
	version := "git-" + commit
	if m, err := l.describe(version); err == nil {
		return m, nil
	}
	l.writing.Lock()
	defer l.writing.Unlock()
	cmd := l.command(ctx, bare, nil, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git archive: %w", err)
	}
	files, skipped, readErr := readGitTar(out)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git archive %s: %w: %s", commit, err, lastLine(stderr.String()))
	}
	if readErr != nil {
		return nil, readErr
	}
	if skipped > 0 {
		l.log.Info("materials: symlinks left out", "commit", commit, "symlinks", skipped)
	}
	return l.write(version, files)
}

// readGitTar reads the files of git archive's tar, leaving out symlinks
// (and the pax header git adds).
func readGitTar(r io.Reader) (files []entry, skipped int, err error) {
	tr := tar.NewReader(r)
	var c counter
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, skipped, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read git archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			if h.Typeflag == tar.TypeSymlink {
				skipped++
			}
			continue
		}
		name, err := cleanName(h.Name)
		if err != nil {
			skipped++ // .cohort in a repository: not ours to deliver
			continue
		}
		if err := c.add(name, h.Size); err != nil {
			return nil, 0, err
		}
		data, err := read(tr, name, h.Size)
		if err != nil {
			return nil, 0, err
		}
		files = append(files, entry{name: name, mode: fileMode(h.Mode&0o111 != 0), data: data})
	}
}

// describe counts a stored version's files and bytes. It is a use of
// the version (Prune), recorded before it is opened: a version Prune
// removes first is not found, and made again.
func (l *Library) describe(version string) (*cohort.Materials, error) {
	l.touch(l.path(version))
	f, err := l.Open(version)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &cohort.Materials{Version: version}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		m.Files++
		m.Bytes += h.Size
	}
}

// lockClone lets one fetch at a time write a repository's clone (or
// Prune delete it).
func (l *Library) lockClone(bare string) func() {
	l.mu.Lock()
	mu, ok := l.repos[bare]
	if !ok {
		mu = &sync.Mutex{}
		l.repos[bare] = mu
	}
	l.mu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// command runs git with nothing of the machine's or a user's git
// configuration, no prompt for credentials, and only the transports the
// library admits (https; file when local); env adds a remote's
// credential.
func (l *Library) command(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	protocols := "https"
	if l.local {
		protocols = "https:file"
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = cmp.Or(dir, l.dir)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + l.dir, "LANG=C", "LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false", "GIT_ALLOW_PROTOCOL=" + protocols,
		// No repository around the data folder is git's to find.
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(l.dir),
	}
	if l.caFile != "" {
		cmd.Env = append(cmd.Env, "GIT_SSL_CAINFO="+l.caFile)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// gitFailure is a git command that failed, with what it said.
type gitFailure struct {
	err    error
	stderr string
}

func (e *gitFailure) Error() string { return fmt.Sprintf("git: %v: %s", e.err, lastLine(e.stderr)) }

func (l *Library) git(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	timeout := l.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now() // what the error says: the caller's deadline may be nearer
	cmd := l.command(ctx, dir, env, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, &gitFailure{err: ctx.Err(), stderr: "timed out after " + time.Since(began).Round(time.Second).String()}
	}
	if err != nil {
		return nil, &gitFailure{err: err, stderr: stderr.String()}
	}
	return out, nil
}

// What git says, and what it means for the instructor.
var (
	noRepo  = regexp.MustCompile(`(?i)repository .* not found|does not appear to be a git repository|not found|\b404\b`)
	noRef   = regexp.MustCompile(`(?i)couldn't find remote ref|not our ref|no such ref|unadvertised object`)
	needsID = regexp.MustCompile(`(?i)authentication failed|could not read (username|password)|terminal prompts disabled|\b(401|403)\b`)
	noProto = regexp.MustCompile(`(?i)transport '.*' not allowed`)
	noHost  = regexp.MustCompile(`(?i)could not resolve host|failed to connect|connection (refused|timed out)|timed out|network is unreachable`)
)

// error words a failed fetch from the remote for the instructor, naming
// the field at fault. What git said is redacted of the token first.
func (r *remote) error(err error, ref string) error {
	var f *gitFailure
	if !errors.As(err, &f) {
		return err
	}
	stderr := r.redact(f.stderr)
	said, repo := lastLine(stderr), r.url
	switch {
	case noRef.MatchString(stderr):
		return cohort.Invalid("materials.ref", "%s has no branch, tag or commit %q", repo, ref)
	case needsID.MatchString(stderr) && r.private:
		return cohort.Invalid("materials.token", "%s refused the token: it is wrong or expired, or cannot read this repository (it needs read access to its contents)", repo)
	case needsID.MatchString(stderr):
		return cohort.Invalid("materials.repo", "%s asks for credentials: it is private or does not exist (for a private repository, give a read-only access token)", repo)
	case noProto.MatchString(stderr):
		return cohort.Invalid("materials.repo", "this server does not fetch from %s (https only)", repo)
	case noRepo.MatchString(stderr) && r.private:
		// GitHub answers a token that cannot see a repository as if
		// there were none.
		return cohort.Invalid("materials.repo", "no git repository at %s that the token can read: check the URL, and that the token has read access to this repository", repo)
	case noRepo.MatchString(stderr):
		return cohort.Invalid("materials.repo", "no git repository at %s", repo)
	case noHost.MatchString(stderr):
		return cohort.Unavailable(errors.New(r.redact(err.Error())), fmt.Sprintf("%s cannot be reached from the server: %s", repo, said))
	}
	return cohort.Invalid("materials.repo", "git could not fetch %s: %s", repo, said)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-1]), "fatal: ")
}
