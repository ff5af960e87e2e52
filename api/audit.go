package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// audit records an event, with the address the request came from. A
// failure to record is logged, not shown: the action itself has happened.
// Rows of anonymous requests (failed sign-ins, refused invites) are
// limited per address, so that nobody can fill the log from outside.
func (s *Server) audit(ctx context.Context, actor *cohort.User, e cohort.AuditEvent) {
	e.ClientAddr = clientAddrOf(ctx)
	if actor != nil {
		e.ActorID, e.ActorEmail = actor.ID, actor.Email
	} else if !s.auditLimit.allow(e.ClientAddr, s.now()) {
		s.log.Warn("audit: too many anonymous events from one address; not recorded", "action", e.Action, "client_addr", e.ClientAddr)
		return
	}
	e.Time = s.now().UTC()
	if err := s.store.AppendAudit(context.WithoutCancel(ctx), &e); err != nil {
		s.log.Error("record audit event", "action", e.Action, "error", err)
	}
}

func (s *Server) listAudit(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	s.writeAudit(c, "")
}

func (s *Server) classAudit(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeAudit(c, a.class.ID)
}

func (s *Server) writeAudit(c *gin.Context, classID string) {
	f := cohort.AuditFilter{ClassID: classID}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(c, cohort.Invalid("before", "before must be an event ID, not %q", v))
			return
		}
		f.Before = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(c, cohort.Invalid("limit", "limit must be between 1 and 1000, not %q", v))
			return
		}
		f.Limit = n
	}
	events, err := s.store.ListAudit(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": nonNil(events)})
}
