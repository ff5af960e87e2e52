package cohort

import (
	"net/url"
	"strings"
	"time"
)

// Materials are the files every participant of a class starts from: a
// git repository at a ref, or an uploaded archive. Each session merges
// the newest version into its participant's work (never over a file the
// participant changed; package materials).
type Materials struct {
	// Repo is a git repository's https URL; Ref a branch, tag or commit
	// of it (its default branch if empty).
	Repo string `json:"repo,omitempty"`
	Ref  string `json:"ref,omitempty"`
	// Private says the class keeps a token for Repo: the repository is
	// fetched with it.
	Private bool `json:"private,omitempty"`
	// Credential is that token, sealed for Repo with the server's key
	// (package seal). It is stored apart from the rest of the materials
	// and never answered.
	Credential string `json:"-"`
	// Archive is the name of the uploaded archive, when the materials
	// are one.
	Archive string `json:"archive,omitempty"`
	// Version is the copy sessions get: "git-" and the commit, or
	// "archive-" and the archive's SHA-256. A branch's newest commit is
	// looked up at each session's start.
	Version string `json:"version"`
	// Files and Bytes describe that copy.
	Files     int       `json:"files"`
	Bytes     int64     `json:"bytes"`
	UpdatedAt time.Time `json:"updated_at"`
	// Problem is why the last session's lookup of the repository failed
	// (a token expired, the host down): sessions then get Version, the
	// one last fetched. Empty once a lookup succeeds again.
	Problem string `json:"problem,omitempty"`
}

// MaterialsView is a class's materials and how long its participants'
// work is kept: what the API answers.
type MaterialsView struct {
	Materials *Materials `json:"materials"`
	// KeepWork is how long participants' work is kept after the class
	// ends; WorkExpires when that is, if the class has an end.
	KeepWork    Duration   `json:"keep_work"`
	WorkExpires *time.Time `json:"work_expires,omitempty"`
}

// Short is the version as people read it: a commit's first 7
// characters, or "archive-" and the first 7 of an archive's SHA-256.
func (m *Materials) Short() string {
	kind, id, ok := strings.Cut(m.Version, "-")
	if !ok {
		return m.Version
	}
	id = id[:min(7, len(id))]
	if kind == "git" {
		return id
	}
	return kind + "-" + id
}

// Snapshot is one version of a class's materials, ready for a driver to
// merge: Path is a tar file of regular files and directories only, with
// clean relative names (package materials writes it).
type Snapshot struct {
	Version string
	Path    string
}

// DefaultKeepWork is how long a participant's work is kept after their
// class ends, unless the class says otherwise.
const DefaultKeepWork = 30 * 24 * time.Hour

// MaxKeepWork bounds Policy.KeepWork: more is a typo.
const MaxKeepWork = 3 * 365 * 24 * time.Hour

// KeepWorkFor returns how long work is kept after the class ends.
func (p Policy) KeepWorkFor() time.Duration {
	if p.KeepWork == 0 {
		return DefaultKeepWork
	}
	return p.KeepWork.D()
}

// WorkExpires returns when the class's participants' work is deleted,
// and false for a class with no end (its work is kept until the class is
// deleted).
func (p Policy) WorkExpires() (time.Time, bool) {
	if p.EndsAt == nil {
		return time.Time{}, false
	}
	return p.EndsAt.Add(p.KeepWorkFor()), true
}

// RepoInput names a git repository and ref for a class's materials, and
// for a private one its access token (what the API takes). Token left
// out (nil) keeps the class's token if the repository is the same (a new
// ref), and means none otherwise: a token never follows materials to
// another URL. An empty Token drops the class's token.
type RepoInput struct {
	Repo      string  `json:"repo"`
	Ref       string  `json:"ref,omitempty"`
	Token     *string `json:"token,omitempty"`
	TokenUser string  `json:"token_user,omitempty"`
}

// RepoToken is what a private repository is fetched with over https:
// an access token and the user name sent with it (GitHub's fine-grained
// tokens take any user; a GitLab deploy token names its own).
type RepoToken struct {
	User  string `json:"user"`
	Token string `json:"token"`
}

// DefaultTokenUser is the user sent with a token when none is given:
// GitHub's, which GitLab and Gitea accept with their access tokens too.
const DefaultTokenUser = "x-access-token"

// Validate checks a token before it is sealed or sent: it goes into an
// HTTP header, so a control character or a space would write another
// header, and a colon in the user would move where the token starts.
func (t RepoToken) Validate() error {
	switch {
	case t.Token == "":
		return Invalid("materials.token", "token is empty")
	case len(t.Token) > 4096:
		return Invalid("materials.token", "token is longer than 4096 characters: is it a token?")
	case !printable(t.Token, ""):
		return Invalid("materials.token", "token holds a space or a character that is not printable ASCII: paste the token alone")
	case len(t.User) > 256 || !printable(t.User, ":"):
		return Invalid("materials.token_user", "token_user must be printable ASCII without spaces or colons, at most 256 characters")
	}
	return nil
}

func printable(s, not string) bool {
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(not, c) {
			return false
		}
	}
	return true
}

// ValidateRepo checks a materials repository and ref before anything is
// fetched, naming the field at fault. local admits file:// URLs and
// absolute paths (single-machine use and tests).
func ValidateRepo(repo, ref string, local bool) error {
	repo = strings.TrimSpace(repo)
	u, err := url.Parse(repo)
	switch {
	case repo == "":
		return Invalid("materials.repo", "repo is required: a git repository's https URL")
	case err != nil:
		return Invalid("materials.repo", "repo %q is not a URL: %v", repo, err)
	case u.User != nil:
		return Invalid("materials.repo", "repo must not carry credentials in its URL: give a private repository's token apart (token), which cohort keeps sealed")
	case u.Scheme == "https" && u.Host != "":
	case local && (u.Scheme == "file" || u.Scheme == "" && strings.HasPrefix(repo, "/")):
	case local:
		return Invalid("materials.repo", "repo must be an https:// URL, a file:// URL or an absolute path, not %q", repo)
	default:
		return Invalid("materials.repo", "repo must be an https:// URL, not %q", repo)
	}
	if ref == "" {
		return nil
	}
	bad := strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") || strings.HasSuffix(ref, ".lock") ||
		strings.HasSuffix(ref, "/") || strings.HasPrefix(ref, "/") || len(ref) > 200
	for _, c := range ref {
		bad = bad || c <= ' ' || c == 0x7f || strings.ContainsRune("~^:?*[\\", c)
	}
	if bad {
		return Invalid("materials.ref", "ref %q is not a branch, tag or commit name", ref)
	}
	return nil
}
