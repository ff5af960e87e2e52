package api

import (
	"context"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// Who may do what. Every handler asks one of these before it reads the
// request body, so that a refused request learns nothing from validation.
//
//	admin                  everything
//	instructor of a class  the class, its roster, invites, audit and all its sessions
//	participant of a class the class (read), starting their session, their own sessions
//	anyone signed in       /v1/me, their tokens, joining with an invite code
//	instructor (role)      creating classes

// classAccess is the caller's standing in one class.
type classAccess struct {
	class *cohort.Class
	role  cohort.MemberRole // "" when not on the roster
	admin bool
}

func (a classAccess) teaches() bool { return a.admin || a.role == cohort.MemberInstructor }
func (a classAccess) member() bool  { return a.admin || a.role != "" }

// classFor loads a class the caller can see. A class the caller is not
// enrolled in is reported as not found, so its existence does not leak.
func (s *Server) classFor(c *gin.Context, id string) (classAccess, error) {
	ctx := c.Request.Context()
	u := currentUser(c)
	class, err := s.store.GetClass(ctx, id)
	if err != nil {
		return classAccess{}, err
	}
	role, err := s.store.MemberRole(ctx, id, u.Email)
	if err != nil {
		return classAccess{}, err
	}
	a := classAccess{class: class, role: role, admin: u.Role == cohort.RoleAdmin}
	if !a.member() {
		return classAccess{}, cohort.Errorf(cohort.ENOTFOUND, "class %s not found", id)
	}
	return a, nil
}

// classToTeach loads a class the caller teaches (or administers).
func (s *Server) classToTeach(c *gin.Context) (classAccess, error) {
	a, err := s.classFor(c, c.Param("class"))
	if err != nil {
		return a, err
	}
	if !a.teaches() {
		return a, cohort.Errorf(cohort.EFORBIDDEN, "only instructors of class %s can do this", a.class.ID)
	}
	return a, nil
}

// sessionAccess is the caller's standing towards one session.
type sessionAccess struct {
	session *cohort.Session
	owner   bool
}

// sessionFor loads a session the caller may see and act on: their own in
// a class they are on the roster of, any in a class they teach, or any for
// an admin. Others' sessions are reported as not found.
func (s *Server) sessionFor(ctx context.Context, u *cohort.User, id string) (sessionAccess, error) {
	sess, err := s.store.GetSession(ctx, id)
	if err != nil {
		return sessionAccess{}, err
	}
	owner := sess.UserID == u.ID
	if u.Role == cohort.RoleAdmin {
		return sessionAccess{session: sess, owner: owner}, nil
	}
	// The roster decides, for the session's own participant too: off the
	// roster is out of the class's notebooks, their own included.
	role, err := s.store.MemberRole(ctx, sess.ClassID, u.Email)
	if err != nil {
		return sessionAccess{}, err
	}
	if role == "" || (!owner && role != cohort.MemberInstructor) {
		return sessionAccess{}, cohort.Errorf(cohort.ENOTFOUND, "session %s not found", id)
	}
	return sessionAccess{session: sess, owner: owner}, nil
}

func requireAdmin(c *gin.Context) error {
	if currentUser(c).Role != cohort.RoleAdmin {
		return cohort.Errorf(cohort.EFORBIDDEN, "only admins can do this")
	}
	return nil
}

// entryLog remembers when someone other than a session's participant last
// entered it, so that the audit log and the participant's events record
// each visit once rather than every request.
type entryLog struct {
	mu   sync.Mutex
	seen map[[2]string]time.Time
}

const entryRecordEvery = 30 * time.Minute

// first reports whether user's entry into session should be recorded now.
func (l *entryLog) first(userID, sessionID string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[[2]string]time.Time{}
	}
	key := [2]string{userID, sessionID}
	if last, ok := l.seen[key]; ok && now.Sub(last) < entryRecordEvery {
		return false
	}
	for k, t := range l.seen {
		if now.Sub(t) >= entryRecordEvery {
			delete(l.seen, k)
		}
	}
	l.seen[key] = now
	return true
}
