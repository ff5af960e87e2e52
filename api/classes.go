package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// classInput is what a client may set on a class. Decoding a request onto
// the current values (defaults for a new class) gives merge semantics:
// fields the request leaves out keep their values.
type classInput struct {
	Name    string         `json:"name"`
	Runtime cohort.Runtime `json:"runtime"`
	Policy  cohort.Policy  `json:"policy"`
	// Materials, on a new class, names a git repository and ref, fetched
	// before the class is made (later: PUT .../materials).
	Materials *cohort.RepoInput `json:"materials"`
}

// validate checks a class, and its runtime with the driver if it can.
func (s *Server) validate(ctx context.Context, class *cohort.Class) error {
	if err := class.Validate(); err != nil {
		return err
	}
	if class.Policy.Budget > 0 {
		if _, err := s.prices.Rate(s.driver, class.Runtime); err != nil {
			return cohort.Invalid("policy.budget", "a budget needs the price of the class's seats: %s", cohort.ErrorMessage(err))
		}
	}
	if s.runtimes == nil {
		return nil
	}
	return s.runtimes.CheckRuntime(ctx, class.Runtime)
}

func (s *Server) createClass(c *gin.Context) {
	u := currentUser(c)
	if !u.CanTeach() {
		s.fail(c, cohort.Errorf(cohort.EFORBIDDEN, "only instructors and admins can create classes"))
		return
	}
	def := cohort.DefaultClass()
	in := classInput{Runtime: def.Runtime, Policy: def.Policy}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	class := &cohort.Class{Name: in.Name, OwnerID: u.ID, Runtime: in.Runtime, Policy: in.Policy}
	if err := s.validate(c.Request.Context(), class); err != nil {
		s.fail(c, err)
		return
	}
	if in.Materials != nil {
		// Fetched first: a repository that cannot be had refuses the
		// class, rather than leaving one without what was asked.
		m, err := s.fetchMaterials(c.Request.Context(), *in.Materials, nil)
		if err != nil {
			s.fail(c, err)
			return
		}
		class.Materials = m
	}
	if err := s.store.CreateClass(c.Request.Context(), class); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("class created", "class_id", class.ID, "user_id", u.ID)
	if class.Policy.Warm != nil {
		s.poolChanged(c.Request.Context(), class)
	}
	c.Header("Location", "/v1/classes/"+class.ID)
	c.JSON(http.StatusCreated, class)
}

func (s *Server) listClasses(c *gin.Context) {
	u := currentUser(c)
	var classes []*cohort.Class
	var err error
	if u.Role == cohort.RoleAdmin {
		classes, err = s.store.ListClasses(c.Request.Context())
	} else {
		classes, err = s.store.ListClassesFor(c.Request.Context(), u.Email)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"classes": nonNil(classes)})
}

func (s *Server) getClass(c *gin.Context) {
	a, err := s.classFor(c, c.Param("class"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a.class)
}

func (s *Server) updateClass(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	class := a.class
	in := classInput{Name: class.Name, Runtime: class.Runtime, Policy: class.Policy}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.Materials != nil {
		s.fail(c, cohort.Invalid("materials", "change a class's materials with PUT /v1/classes/%s/materials", class.ID))
		return
	}
	old := class.Policy
	class.Name, class.Runtime, class.Policy = in.Name, in.Runtime, in.Policy
	if err := s.validate(c.Request.Context(), class); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.store.UpdateClass(c.Request.Context(), class); err != nil {
		s.fail(c, err)
		return
	}
	// Time limits apply to sessions already running, not only to new ones.
	if err := s.applyPolicy(c.Request.Context(), class, old); err != nil {
		s.fail(c, err)
		return
	}
	// So does a budget lowered below what the seats have committed: the
	// class as stored, read again under its lock (another change may have
	// landed since), whenever it has a budget or had one.
	if class.Policy.Budget > 0 || old.Budget > 0 {
		release, err := s.holdClass(c.Request.Context(), class.ID)
		var n int
		if err == nil {
			var stored *cohort.Class
			stored, err = s.fresh.GetClass(c.Request.Context(), class.ID)
			if err == nil {
				n, err = s.enforceBudget(c.Request.Context(), stored)
			}
			release()
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		if n > 0 {
			s.log.Info("seats stop for the class's budget", "class_id", class.ID, "stopping", n)
		}
	}
	if class.Policy.Warm != nil || old.Warm != nil {
		s.poolChanged(c.Request.Context(), class)
	}
	c.JSON(http.StatusOK, class)
}

func (s *Server) deleteClass(c *gin.Context) {
	a, err := s.classToTeach(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	class := a.class
	if err := s.store.DeleteClass(c.Request.Context(), class.ID); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("class deleted", "class_id", class.ID, "user_id", currentUser(c).ID)
	if s.work != nil {
		// The class and its sessions are gone: so is its participants'
		// work. A failure leaves files, never a class.
		if _, err := s.work.DeleteWork(context.WithoutCancel(c.Request.Context()), class.ID); err != nil {
			s.log.Error("delete the work of a deleted class", "class_id", class.ID, "error", err)
		}
	}
	c.Status(http.StatusNoContent)
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
