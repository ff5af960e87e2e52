package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

func (s *Server) listUsers(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	users, err := s.store.ListUsers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"users": nonNil(users)})
}

func (s *Server) setRole(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		Role cohort.Role `json:"role"`
	}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.store.GetUser(ctx, c.Param("user"))
	if err != nil {
		s.fail(c, err)
		return
	}
	me := currentUser(c)
	if u.ID == me.ID && in.Role != cohort.RoleAdmin {
		s.fail(c, cohort.Invalid("role", "admins cannot demote themselves; ask another admin"))
		return
	}
	if err := s.store.SetUserRole(ctx, u.ID, in.Role); err != nil {
		s.fail(c, err)
		return
	}
	if in.Role != u.Role {
		s.audit(ctx, me, cohort.AuditEvent{Action: cohort.AuditRoleChanged, Subject: u.Email, Detail: string(u.Role) + " -> " + string(in.Role)})
	}
	u.Role = in.Role
	c.JSON(http.StatusOK, u)
}

func (s *Server) revokeUser(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.store.GetUser(ctx, c.Param("user"))
	if err != nil {
		s.fail(c, err)
		return
	}
	n, err := s.store.RevokeUserCredentials(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, currentUser(c), cohort.AuditEvent{Action: cohort.AuditCredentialsRevoked, Subject: u.Email})
	c.JSON(http.StatusOK, gin.H{"revoked": n})
}

func (s *Server) listTokens(c *gin.Context) {
	tokens, err := s.store.ListTokens(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tokens": nonNil(tokens)})
}

func (s *Server) createToken(c *gin.Context) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 {
		s.fail(c, cohort.Invalid("name", "name is required (at most 100 characters), to recognise the token by"))
		return
	}
	tok, secret, err := s.mintToken(c, currentUser(c), name)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"token": secret, "id": tok.ID, "name": tok.Name, "created_at": tok.CreatedAt})
}

// mintToken creates an API token for u and records it in the audit log.
func (s *Server) mintToken(c *gin.Context, u *cohort.User, name string) (*cohort.Token, string, error) {
	secret := cohort.NewSecret(cohort.TokenPrefix)
	tok := &cohort.Token{ID: cohort.NewID("tok"), UserID: u.ID, Name: name}
	if err := s.store.CreateToken(c.Request.Context(), tok, cohort.HashSecret(secret)); err != nil {
		return nil, "", err
	}
	s.audit(c.Request.Context(), u, cohort.AuditEvent{Action: cohort.AuditTokenCreated, Subject: tok.ID, Detail: name})
	return tok, secret, nil
}

func (s *Server) revokeToken(c *gin.Context) {
	ctx := c.Request.Context()
	me := currentUser(c)
	tok, err := s.store.GetToken(ctx, c.Param("token"))
	if err == nil && tok.UserID != me.ID && me.Role != cohort.RoleAdmin {
		err = cohort.Errorf(cohort.ENOTFOUND, "token %s not found", c.Param("token"))
	}
	if err == nil {
		err = s.store.RevokeToken(ctx, tok.ID)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, me, cohort.AuditEvent{Action: cohort.AuditTokenRevoked, Subject: tok.ID, Detail: tok.Name})
	c.Status(http.StatusNoContent)
}
