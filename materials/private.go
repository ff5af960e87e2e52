package materials

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cohortdev/cohort"
)

// A private repository is fetched with its class's token, which cohort
// keeps sealed with the server's key (package seal), bound to the
// repository's URL: the token opens for that URL only, so materials
// pointed elsewhere (by a co-instructor, or in the database) never send
// it to another server.
//
// git gets the token as an HTTP header in its environment, for that URL
// only (http.<url>.extraHeader through GIT_CONFIG_COUNT): never in its
// arguments (which any local user can list), its configuration files,
// the clone's FETCH_HEAD, or a log. Redirects are not followed with a
// token. Whatever git says is redacted of it before it is shown.

// noKey is why a server without a secret key refuses tokens, unless
// RefuseTokens said another reason.
const noKey = "it keeps no secret key to seal them with: its operator must give every replica the same --secret-key-file (docs/operations.md)"

// RefuseTokens makes the library take no private repository's token,
// saying why (the key would not be safe where the server runs). Called
// before the library serves.
func (l *Library) RefuseTokens(why string) {
	l.key, l.noKey = nil, why
}

// KeyID is the ID of the key that seals tokens ("" if tokens are refused).
func (l *Library) KeyID() string {
	if l.key == nil {
		return ""
	}
	return l.key.ID()
}

func (l *Library) errNoKey() error {
	return cohort.Errorf(cohort.EUNAVAILABLE, "this server takes no private repository's token: %s", cmp.Or(l.noKey, noKey))
}

func purpose(repo string) string { return "cohort materials token\x00" + repo }

// Seal validates a private repository's token and seals it for repo: the
// credential that Fetch and the class's materials take. The seal binds
// it to repo alone: it opens for no other URL.
func (l *Library) Seal(repo string, t cohort.RepoToken) (string, error) {
	if t.User == "" {
		t.User = cohort.DefaultTokenUser
	}
	if err := t.Validate(); err != nil {
		return "", err
	}
	if l.key == nil {
		return "", l.errNoKey()
	}
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	return l.key.Seal(b, purpose(strings.TrimSpace(repo))), nil
}

// remote is a repository as git is asked to reach it: its URL and, for a
// private one, the environment that carries its token.
type remote struct {
	url     string
	private bool
	env     []string
	secrets []string // what redact takes out of git's words
	// who names the credential in the clone's refs: "public", or a hash
	// of the token, so a commit fetched with one token is not taken as
	// readable with another (a repository's URL that changed hands).
	who string
}

// fetchedRef is the ref that records a fetch of commit with the
// remote's credential.
func (r *remote) fetchedRef(commit string) string {
	return "refs/cohort/" + r.who + "/" + commit
}

func (l *Library) remote(repo, credential string) (*remote, error) {
	r := &remote{url: repo, who: "public"}
	if credential == "" {
		return r, nil
	}
	if l.key == nil {
		return nil, l.errNoKey()
	}
	b, err := l.key.Open(credential, purpose(repo))
	if err != nil {
		return nil, cohort.Invalid("materials.token", "the class's token for %s cannot be read (%v): set the token again", repo, err)
	}
	var t cohort.RepoToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("the class's token for %s: %w", repo, err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(t.User + ":" + t.Token))
	r.private = true
	r.env = []string{"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=http." + repo + ".extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic " + basic,
		"GIT_CONFIG_KEY_1=http.followRedirects", "GIT_CONFIG_VALUE_1=false"}
	r.secrets = []string{t.Token, basic}
	who := sha256.Sum256([]byte("cohort fetched with\x00" + t.User + ":" + t.Token))
	r.who = hex.EncodeToString(who[:8])
	return r, nil
}

// redact takes the remote's token out of s.
func (r *remote) redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "[token]")
	}
	return s
}
