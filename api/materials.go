package api

import (
	"archive/zip"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// A class's materials and its participants' work (docs/materials.md).
//
//	GET    /v1/classes/:class/materials          instructors: what they are, which version
//	PUT    /v1/classes/:class/materials          instructors: a git repository and ref
//	PUT    /v1/classes/:class/materials/archive  instructors: an uploaded archive (the body)
//	DELETE /v1/classes/:class/materials          instructors: none
//	GET    /v1/classes/:class/work               members: their own work, as a zip
//	GET    /v1/classes/:class/collect?path=P     instructors: every participant's P, as a zip
//	POST   /v1/sessions/:session/materials       the session's participant (and instructors): the newest materials, now

// archivePath is the upload's route: its body may be large and slow.
const archivePath = "/v1/classes/:class/materials/archive"

func (s *Server) materialsView(class *cohort.Class) cohort.MaterialsView {
	v := cohort.MaterialsView{Materials: class.Materials, KeepWork: cohort.Duration(class.Policy.KeepWorkFor())}
	if at, ok := class.Policy.WorkExpires(); ok {
		v.WorkExpires = &at
	}
	return v
}

func (s *Server) getMaterials(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.materialsView(a.class))
}

// setMaterials fetches a repository's ref now, so that a repository that
// does not exist, needs credentials or lacks the ref is refused at once,
// naming the field; the class keeps its materials then.
func (s *Server) setMaterials(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in cohort.RepoInput
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	current := a.class.Materials
	m, err := s.fetchMaterials(c.Request.Context(), in, current)
	if err != nil {
		s.fail(c, err)
		return
	}
	detail := fmt.Sprintf("git %s %s: %s", m.Repo, cmpRef(m.Ref), m.Version)
	switch {
	case in.Token == nil && m.Private:
		// Written only over the materials the token was kept from: an
		// instructor who dropped or replaced it meanwhile is not undone.
		detail += " (private: its token kept)"
		s.putMaterials(c, a.class, m, current, detail)
		return
	case m.Private:
		detail += " (private: a new token)"
	}
	s.putMaterials(c, a.class, m, nil, detail)
}

// fetchMaterials fetches a repository's ref as the version a class's
// materials are set to, with the token the input gives or the one the
// class's current materials keep for the same repository.
func (s *Server) fetchMaterials(ctx context.Context, in cohort.RepoInput, current *cohort.Materials) (*cohort.Materials, error) {
	if err := s.deliversMaterials(); err != nil {
		return nil, err
	}
	repo := strings.TrimSpace(in.Repo)
	var credential string
	switch {
	case in.TokenUser != "" && (in.Token == nil || *in.Token == ""):
		return nil, cohort.Invalid("materials.token_user", "token_user goes with a token")
	case in.Token != nil && *in.Token != "":
		sealed, err := s.materials.Seal(repo, cohort.RepoToken{User: strings.TrimSpace(in.TokenUser), Token: strings.TrimSpace(*in.Token)})
		if err != nil {
			return nil, err
		}
		credential = sealed
	case in.Token == nil && current != nil && current.Repo == repo:
		credential = current.Credential
	}
	m, err := s.materials.Fetch(ctx, repo, strings.TrimSpace(in.Ref), credential)
	if err != nil {
		return nil, err
	}
	m.UpdatedAt = s.now().UTC()
	return m, nil
}

func cmpRef(ref string) string {
	if ref == "" {
		return "(default branch)"
	}
	return ref
}

// uploadMaterials takes an archive (zip, tar or tar.gz) as the body; its
// file name comes in ?name=.
func (s *Server) uploadMaterials(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.deliversMaterials(); err != nil {
		s.fail(c, err)
		return
	}
	name := cmp.Or(c.Query("name"), "materials")
	m, err := s.materials.AddArchive(name, c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.putMaterials(c, a.class, m, nil, fmt.Sprintf("archive %s: %s", m.Archive, m.Version))
}

// putMaterials records a class's new materials, over old only if old is
// given (a kept token: SwapMaterials leaves it as it is).
func (s *Server) putMaterials(c *gin.Context, class *cohort.Class, m, old *cohort.Materials, detail string) {
	ctx := c.Request.Context()
	m.UpdatedAt = s.now().UTC()
	var err error
	if old != nil {
		err = s.store.SwapMaterials(ctx, class.ID, old, m)
	} else {
		err = s.store.SetMaterials(ctx, class.ID, m)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	class.Materials = m
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditMaterialsChanged, ClassID: class.ID, Detail: detail})
	c.JSON(http.StatusOK, s.materialsView(class))
}

// removeMaterials leaves the class without materials: later sessions get
// none (participants' work keeps what was delivered).
func (s *Server) removeMaterials(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.store.SetMaterials(ctx, a.class.ID, nil); err != nil {
		s.fail(c, err)
		return
	}
	a.class.Materials = nil
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditMaterialsChanged, ClassID: a.class.ID, Detail: "removed"})
	c.JSON(http.StatusOK, s.materialsView(a.class))
}

// snapshot returns the version of a class's materials that a claimed
// warm seat gets: the class's, without a look at its repository, which
// the participant would wait for under the class's lock (nil if none can
// be had: the seat is the participant's all the same, with their work).
func (s *Server) snapshot(class *cohort.Class) *cohort.Snapshot {
	if s.materials == nil || class.Materials == nil {
		return nil
	}
	snap, err := s.materials.Stored(class.Materials)
	if err != nil {
		s.log.Warn("class materials for a claimed seat", "class_id", class.ID, "error", err)
	}
	return snap
}

// pullMaterials merges the class's newest materials into a running
// session's work, for a participant who wants an update mid-session.
func (s *Server) pullMaterials(c *gin.Context) {
	a, err := s.session(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	sess := a.session
	class, err := s.store.GetClass(ctx, sess.ClassID)
	if err != nil {
		s.fail(c, err)
		return
	}
	puller, ok := s.work.(cohort.Puller)
	switch {
	case class.Materials == nil:
		s.fail(c, cohort.Invalid("materials", "class %s has no materials", class.ID))
		return
	case !ok || s.materials == nil:
		s.fail(c, cohort.Errorf(cohort.EUNAVAILABLE, "the %s driver cannot update a running session's materials", s.driver))
		return
	case sess.State != cohort.StateReady || sess.Warm():
		s.fail(c, cohort.Errorf(cohort.ECONFLICT, "session %s is %s: only a participant's ready session takes updates", sess.ID, sess.State))
		return
	}
	snap, _, err := s.materials.Snapshot(ctx, class.Materials)
	if snap == nil {
		s.fail(c, cohort.Unavailable(err, "the class's materials cannot be had now"))
		return
	}
	summary, err := puller.PullMaterials(ctx, cohort.NotebookSpec{SessionID: sess.ID, ClassID: sess.ClassID, UserID: sess.UserID, Materials: snap})
	if err != nil {
		s.fail(c, err)
		return
	}
	if summary == "" {
		summary = "class materials: nothing new"
	}
	s.sessionEvent(ctx, sess, summary+" (asked by "+currentUser(c).Email+")")
	c.JSON(http.StatusOK, gin.H{"version": snap.Version, "summary": summary})
}

// workReader is the driver's, if it gives out participants' work.
func (s *Server) workReader() (cohort.WorkReader, error) {
	r, ok := s.work.(cohort.WorkReader)
	if !ok {
		return nil, cohort.Errorf(cohort.EUNAVAILABLE, "the %s driver does not give out participants' work (docs/materials.md)", s.driver)
	}
	return r, nil
}

// deliversMaterials says why materials cannot be set here, if they
// cannot: they go into participants' kept work, which only a driver that
// keeps it and can merge into it has (docs/materials.md).
func (s *Server) deliversMaterials() error {
	_, pulls := s.work.(cohort.Puller)
	switch {
	case s.materials == nil:
		return cohort.Errorf(cohort.EUNAVAILABLE, "this server keeps no class materials")
	case !pulls:
		return cohort.Errorf(cohort.EUNAVAILABLE, "the %s driver does not deliver class materials (docs/materials.md)", s.driver)
	}
	return nil
}

// downloadWork answers with the caller's own work of the class as a zip,
// whether a session runs or not.
func (s *Server) downloadWork(c *gin.Context) {
	a, err := s.classFor(c, c.Param("class"))
	if err != nil {
		s.fail(c, err)
		return
	}
	work, err := s.workReader()
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	s.sendZip(c, "work-"+a.class.ID+".zip", func(zw *zip.Writer) error {
		return work.ZipWork(c.Request.Context(), zw, a.class.ID, u.ID, "", nil)
	})
}

// maxCollectPaths bounds the files one collection asks for.
const maxCollectPaths = 50

// collectWork answers with every participant's copy of the files named
// in ?path= as one zip: EMAIL/PATH for each participant who has one. A
// path may be a pattern of path.Match ("*.ipynb", "notebooks/*").
func (s *Server) collectWork(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	patterns := c.QueryArray("path")
	if len(patterns) == 0 || len(patterns) > maxCollectPaths {
		s.fail(c, cohort.Invalid("path", "name 1 to %d files to collect (path=train.ipynb; patterns such as *.ipynb work)", maxCollectPaths))
		return
	}
	for i, p := range patterns {
		p = strings.TrimPrefix(strings.TrimSpace(p), "./")
		if _, err := path.Match(p, ""); err != nil || !validPattern(p) {
			s.fail(c, cohort.Invalid("path", "%q is not a relative file name or pattern", patterns[i]))
			return
		}
		patterns[i] = p
	}
	work, err := s.workReader()
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	members, err := s.store.ListMembers(ctx, a.class.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditWorkCollected, ClassID: a.class.ID, Detail: strings.Join(patterns, " ")})
	s.sendZip(c, "collected-"+a.class.ID+".zip", func(zw *zip.Writer) error {
		for _, m := range members {
			if m.Role != cohort.MemberParticipant {
				continue
			}
			u, err := s.store.GetUserByEmail(ctx, m.Email)
			if cohort.ErrorCode(err) == cohort.ENOTFOUND {
				continue // never signed in: no work
			}
			if err != nil {
				return err
			}
			err = work.ZipWork(ctx, zw, a.class.ID, u.ID, m.Email+"/", patterns)
			if cohort.ErrorCode(err) == cohort.ENOTFOUND {
				continue
			}
			if err != nil && ctx.Err() == nil {
				// One participant's folder (past the limits; on GCE, a VM
				// that fails or misbehaves) does not cut the others' out:
				// what was read of it stays, the rest is left out.
				s.log.Warn("collect: a participant's work could not be read whole; the rest of it is left out", "class_id", a.class.ID, "email", m.Email, "error", err)
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// validPattern keeps a collected path inside a work directory.
func validPattern(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || part == ".cohort" {
			return false
		}
	}
	return true
}

// sendZip streams a zip. Once the first byte is out, an error can only
// cut the answer short (logged): the client sees a broken zip, not a
// wrong one.
//
// The answer begins with the zip's first byte: an error before it (no
// work: ENOTFOUND) is answered as any other.
func (s *Server) sendZip(c *gin.Context, name string, fill func(*zip.Writer) error) {
	release, err := s.zips.take(currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer release()
	w := &zipAnswer{c: c, name: name}
	zw := zip.NewWriter(w)
	err = fill(zw)
	if err != nil && !w.started {
		s.fail(c, err)
		return
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		s.log.Error("zip answer cut short", "path", c.Request.URL.Path, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// zipAnswer writes a zip answer's headers before its first byte.
type zipAnswer struct {
	c       *gin.Context
	name    string
	started bool
}

func (w *zipAnswer) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		w.c.Header("Content-Type", "application/zip")
		w.c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", w.name))
		w.c.Header("Cache-Control", "no-store")
		w.c.Status(http.StatusOK)
	}
	return w.c.Writer.Write(p)
}

// Zips of work take the server's time, and memory for their names: at
// most maxZips are made at once, maxUserZips for one user.
const maxZips, maxUserZips = 8, 2

type zipSlots struct {
	mu     sync.Mutex
	total  int
	byUser map[string]int
}

func (z *zipSlots) take(userID string) (func(), error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	switch {
	case z.byUser[userID] >= maxUserZips:
		return nil, cohort.Errorf(cohort.EUNAVAILABLE, "you have %d zips being made already: wait for them", maxUserZips)
	case z.total >= maxZips:
		return nil, cohort.Errorf(cohort.EUNAVAILABLE, "cohort is making %d zips of work already: try again in a minute", maxZips)
	}
	if z.byUser == nil {
		z.byUser = map[string]int{}
	}
	z.total++
	z.byUser[userID]++
	return func() {
		z.mu.Lock()
		defer z.mu.Unlock()
		z.total--
		if z.byUser[userID]--; z.byUser[userID] == 0 {
			delete(z.byUser, userID)
		}
	}, nil
}
