package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

func (s *Server) listMembers(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	members, err := s.store.ListMembers(c.Request.Context(), a.class.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"members": nonNil(members)})
}

// addMembers takes JSON {"emails": [...], "role": "participant"} or a CSV
// file (Content-Type text/csv) whose column "email" (or first column)
// holds the addresses, as exported from a spreadsheet.
func (s *Server) addMembers(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	in := struct {
		Emails []string          `json:"emails"`
		Role   cohort.MemberRole `json:"role"`
	}{Role: cohort.MemberParticipant}
	if strings.HasPrefix(c.ContentType(), "text/csv") {
		in.Emails, err = csvEmails(c.Request.Body)
	} else {
		err = decode(c, &in)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if in.Role != cohort.MemberParticipant && in.Role != cohort.MemberInstructor {
		s.fail(c, cohort.Invalid("role", "role must be participant or instructor, not %q", in.Role))
		return
	}
	emails, err := cohort.NormalizeEmails("emails", in.Emails)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	me := currentUser(c)
	added, err := s.store.AddMembers(ctx, a.class.ID, emails, in.Role, me.Email)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, me, cohort.AuditEvent{Action: cohort.AuditMembersAdded, ClassID: a.class.ID,
		Subject: summarize(emails), Detail: fmt.Sprintf("%d as %s, %d new", len(emails), in.Role, added)})
	c.JSON(http.StatusOK, gin.H{"added": added, "total": len(emails)})
}

// summarize names a few emails for the audit log.
func summarize(emails []string) string {
	if len(emails) <= 3 {
		return strings.Join(emails, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(emails[:3], ", "), len(emails)-3)
}

// csvEmails reads the email column of a CSV roster: the column headed
// "email" (any case), or the first column when there is no such header.
func csvEmails(r io.Reader) ([]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	rows, err := cr.ReadAll()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, cohort.Invalid("", "the CSV is larger than %d bytes", tooBig.Limit)
	case err != nil:
		return nil, cohort.Invalid("", "the CSV cannot be read: %s", err)
	case len(rows) == 0:
		return nil, cohort.Invalid("emails", "the CSV is empty")
	}
	col := 0
	for i, h := range rows[0] {
		if strings.EqualFold(strings.TrimSpace(h), "email") || strings.EqualFold(strings.TrimSpace(h), "e-mail") {
			col, rows = i, rows[1:]
			break
		}
	}
	var emails []string
	for _, row := range rows {
		if col < len(row) && strings.TrimSpace(row[col]) != "" {
			emails = append(emails, row[col])
		}
	}
	return emails, nil
}

func (s *Server) removeMember(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	email := strings.ToLower(c.Param("email"))
	if email == strings.ToLower(currentUser(c).Email) && a.role == cohort.MemberInstructor {
		s.fail(c, cohort.Invalid("email", "you cannot remove yourself from a class you teach; ask another instructor or an admin"))
		return
	}
	if !a.admin {
		if owner, err := s.store.GetUser(ctx, a.class.OwnerID); err == nil && owner.Email == email {
			s.fail(c, cohort.Errorf(cohort.EFORBIDDEN, "%s created this class; only an admin can remove them", email))
			return
		}
	}
	if err := s.store.RemoveMember(ctx, a.class.ID, email); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditMemberRemoved, ClassID: a.class.ID, Subject: email})
	// Off the roster means out of the class's notebooks: their own session
	// stops (a co-instructor's access to others' ends with the roster row).
	if err := s.stopMembersSessions(ctx, currentUser(c), a.class.ID, email); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// stopMembersSessions stops the active sessions of email in a class.
func (s *Server) stopMembersSessions(ctx context.Context, by *cohort.User, classID, email string) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if cohort.ErrorCode(err) == cohort.ENOTFOUND {
		return nil // never signed in: no session
	}
	if err != nil {
		return err
	}
	running, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: classID, UserID: u.ID,
		States: []cohort.SessionState{cohort.StateRequested, cohort.StateProvisioning, cohort.StateReady}})
	if err != nil {
		return err
	}
	for _, sess := range running {
		if _, _, err := s.stop(ctx, by, sessionAccess{session: sess, owner: sess.UserID == by.ID}); err != nil {
			return err
		}
	}
	return nil
}

// Invite lifetimes: a week unless asked otherwise, at most a season.
const (
	defaultInviteTTL = 7 * 24 * time.Hour
	maxInviteTTL     = 90 * 24 * time.Hour
)

func (s *Server) createInvite(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	in := struct {
		ExpiresIn cohort.Duration `json:"expires_in"`
		Domain    string          `json:"domain"`
	}{ExpiresIn: cohort.Duration(defaultInviteTTL)}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if d := in.ExpiresIn.D(); d < time.Minute || d > maxInviteTTL {
		s.fail(c, cohort.Invalid("expires_in", "expires_in must be between 1m and %s, not %s", maxInviteTTL, d))
		return
	}
	domain := strings.ToLower(strings.TrimSpace(in.Domain))
	if domain != "" && (strings.ContainsAny(domain, "@/ ") || !strings.Contains(domain, ".")) {
		s.fail(c, cohort.Invalid("domain", "%q is not a domain such as example.edu", in.Domain))
		return
	}
	ctx := c.Request.Context()
	me := currentUser(c)
	code := cohort.NewSecret("")
	inv := &cohort.Invite{ID: cohort.NewID("inv"), ClassID: a.class.ID, Domain: domain, CreatedBy: me.Email, ExpiresAt: s.now().Add(in.ExpiresIn.D()).UTC()}
	if err := s.store.CreateInvite(ctx, inv, cohort.HashSecret(code)); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, me, cohort.AuditEvent{Action: cohort.AuditInviteCreated, ClassID: a.class.ID, Subject: inv.ID,
		Detail: "expires " + inv.ExpiresAt.Format(time.RFC3339) + domainNote(domain)})
	c.JSON(http.StatusCreated, gin.H{"invite": inv, "code": code, "url": s.publicURL + "/join/" + code})
}

func domainNote(d string) string {
	if d == "" {
		return ""
	}
	return ", only " + d
}

func (s *Server) listInvites(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	invites, err := s.store.ListInvites(c.Request.Context(), a.class.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"invites": nonNil(invites)})
}

func (s *Server) revokeInvite(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.store.RevokeInvite(ctx, a.class.ID, c.Param("invite")); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditInviteRevoked, ClassID: a.class.ID, Subject: c.Param("invite")})
	c.Status(http.StatusNoContent)
}

func (s *Server) join(c *gin.Context) {
	var in struct {
		Code string `json:"code"`
	}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	class, err := s.redeemInvite(c, currentUser(c), in.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, class)
}

// redeemInvite enrolls u with an invite code, recording the outcome.
func (s *Server) redeemInvite(c *gin.Context, u *cohort.User, code string) (*cohort.Class, error) {
	ctx := c.Request.Context()
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, cohort.Invalid("code", "code is required")
	}
	inv, err := s.store.RedeemInvite(ctx, cohort.HashSecret(code), u)
	if err != nil {
		if cohort.ErrorCode(err) == cohort.EFORBIDDEN {
			s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditInviteRefused, Detail: cohort.ErrorMessage(err)})
		}
		return nil, err
	}
	s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditInviteRedeemed, ClassID: inv.ClassID, Subject: inv.ID})
	return s.store.GetClass(ctx, inv.ClassID)
}
