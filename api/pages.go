package api

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/catalog"
	"github.com/cohortdev/cohort/cost"
	"github.com/cohortdev/cohort/timeouts"
)

// The web pages are rendered here, with their assets embedded: no CDN, no
// front-end build. They read the store directly and act through the JSON
// API (app.js calls it with the session cookie and CSRF token), so the
// rules live in one place.

//go:embed pages/*.html pages/assets
var pageFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"runtime":     runtimeLabel,
	"stateLabel":  stateLabel,
	"warningText": warningText,
	"stopText":    stopText,
	"join":        strings.Join,
	"localTime":   localTime,
	"duration":    func(d time.Duration) string { return cohort.Duration(d).String() },
	"money":       cost.Money,
	"sub":         func(a, b float64) float64 { return max(a-b, 0) },
}).ParseFS(pageFiles, "pages/*.html"))

type pageData struct {
	Title, Heading, Message, Code string
	User                          *cohort.User
	CSRF                          string
	Done                          bool
	FilesNote                     string
	// KeepsWork: participants' work outlives their sessions (the driver
	// keeps it); GivesWork: it can be downloaded and collected; Pulls: a
	// running session can take the class's newest materials.
	KeepsWork, GivesWork, Pulls bool
	// Opening a notebook: whose it is (Other), where in it to go (Next),
	// and on a notebook origin, who the browser is signed in as there
	// (Visitor) and the app's URL for links back (App).
	Other, Next, SessionID, Visitor, App string
	// The CLI sign-in waiting for approval, and this browser's address.
	Device     *cohort.DeviceCode
	ClientAddr string

	Cards   []card
	events  map[string][]*cohort.Event
	costs   map[string]string // by session, where the class shows it
	Class   *cohort.Class
	Seats   []seat
	Members []*cohort.Member
	Audit   []*cohort.AuditEvent
	Users   []*cohort.User
	Classes []*cohort.Class
	Roles   []cohort.Role

	MachineTypes, GPUTypes []string

	// A class's money, on its page.
	Cost  *cohort.ClassCost
	Chart *spendChart
	Pool  *cohort.WarmPool
	// The installation's, on the admin page: a month's spend, and the
	// months before and after it.
	Spend                *cohort.MonthSpend
	PrevMonth, NextMonth string
	ThisMonth            bool
}

// card is one class on the home page, with the user's session in it.
type card struct {
	Class   *cohort.Class
	Teaches bool
	Session *sessionView
}

// seat is one row of the instructor's seat table.
type seat struct {
	Email   string
	Session sessionView
	Latest  string
}

// Events returns a session's events for the page.
func (d pageData) Events(id string) []*cohort.Event { return d.events[id] }

// CardCost is what a session has cost, if its class shows it.
func (d pageData) CardCost(id string) string { return d.costs[id] }

// LastEvent returns the ID of a session's latest event shown, so that the
// live stream continues from there.
func (d pageData) LastEvent(id string) int64 {
	if ev := d.events[id]; len(ev) > 0 {
		return ev[len(ev)-1].ID
	}
	return 0
}

func runtimeLabel(r cohort.Runtime) string {
	if r.GPUType == "" {
		return r.MachineType
	}
	g := r.GPUType
	if info, ok := catalog.LookupGPU(r.GPUType); ok {
		g = info.Name
	}
	return fmt.Sprintf("%d× %s on %s", r.GPUCount, g, r.MachineType)
}

func stateLabel(s cohort.SessionState) string {
	switch s {
	case cohort.StateRequested, cohort.StateProvisioning:
		return "starting"
	case cohort.StateReady:
		return "ready"
	case cohort.StateStopping:
		return "stopping"
	case cohort.StateFailed:
		return "failed"
	}
	return "stopped"
}

func warningText(c cohort.EndCause) string {
	switch c {
	case cohort.CauseIdle:
		return timeouts.Why(c) + ". Use the notebook, or:"
	case cohort.CauseMaxLifetime:
		return timeouts.Why(c) + ". Download your work now; an instructor can give you more time."
	}
	return timeouts.Why(c) + ". Download your work now."
}

func stopText(c cohort.EndCause) string {
	switch c {
	case cohort.CauseIdle:
		return "if unused"
	case cohort.CauseClassEnded:
		return "when the class ends"
	case cohort.CauseBudget:
		return "for the class's budget"
	}
	return "at the maximum session length"
}

// localTime formats a time for a datetime-local input (UTC; app.js
// converts the input's value back as the browser's local time).
func localTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Local().Format("2006-01-02T15:04")
}

func (s *Server) render(c *gin.Context, status int, name string, d pageData) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	if notebookSession(c) != "" {
		s.notebookPageHeaders(c.Writer.Header())
		d.App = s.publicURL
	}
	c.Status(status)
	if err := pages.ExecuteTemplate(c.Writer, name, d); err != nil {
		s.log.Error("render page", "page", name, "error", err)
	}
}

// failPage shows an error as a page (for browser-facing routes); internal
// errors are logged and shown as "Internal error.".
func (s *Server) failPage(c *gin.Context, err error) {
	code := cohort.ErrorCode(err)
	if code == cohort.EINTERNAL {
		s.logInternal(c, err)
	}
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	page := "error"
	if notebookSession(c) != "" {
		page = "nberror"
	}
	s.render(c, status, page, pageData{Title: "Sign-in problem", Heading: http.StatusText(status), Message: cohort.ErrorMessage(err)})
	c.Abort()
}

// browserUser returns the signed-in browser's user and CSRF token, or nil.
func (s *Server) browserUser(c *gin.Context) (*cohort.User, string) {
	if bearer(c.Request) != "" {
		return nil, ""
	}
	u, csrf, err := s.identify(c.Request)
	if err != nil {
		return nil, ""
	}
	return u, csrf
}

// requireBrowser sends a browser that is not signed in to sign in, and
// back here afterwards; a form post must carry the CSRF token.
func (s *Server) requireBrowser(c *gin.Context) (*cohort.User, string, bool) {
	u, csrf := s.browserUser(c)
	if u == nil {
		c.Redirect(http.StatusSeeOther, "/auth/login?"+url.Values{"next": {c.Request.URL.RequestURI()}}.Encode())
		return nil, "", false
	}
	if err := checkCSRF(c.Request, csrf); err != nil {
		s.failPage(c, err)
		return nil, "", false
	}
	return u, csrf, true
}

// assets serves the pages' CSS and JavaScript from the binary.
func (s *Server) assets() http.Handler {
	sub, _ := fs.Sub(pageFiles, "pages/assets")
	files := http.StripPrefix("/assets/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) home(c *gin.Context) {
	u, csrf := s.browserUser(c)
	d := pageData{Title: "My classes", User: u, CSRF: csrf, FilesNote: s.filesNote, events: map[string][]*cohort.Event{}, costs: map[string]string{}}
	s.workFeatures(&d)
	if u == nil {
		s.render(c, http.StatusOK, "home", d)
		return
	}
	ctx := c.Request.Context()
	classes, err := s.store.ListClassesFor(ctx, u.Email)
	if err != nil {
		s.failPage(c, err)
		return
	}
	mine, err := s.store.ListSessions(ctx, cohort.SessionFilter{UserID: u.ID})
	if err != nil {
		s.failPage(c, err)
		return
	}
	for _, class := range classes {
		role, err := s.store.MemberRole(ctx, class.ID, u.Email)
		if err != nil {
			s.failPage(c, err)
			return
		}
		cd := card{Class: class, Teaches: role == cohort.MemberInstructor || u.Role == cohort.RoleAdmin}
		// The active session, else the latest, to show why it ended.
		for _, sess := range mine {
			if sess.ClassID == class.ID && (cd.Session == nil || sess.State.Active()) {
				v := s.view(sess)
				s.withDeadlines(&v, class.Policy)
				cd.Session = &v
				if sess.State.Active() {
					break
				}
			}
		}
		if cd.Session != nil && class.Policy.ShowCost {
			d.costs[cd.Session.ID] = s.sessionCost(cd.Session.Session, class)
		}
		if cd.Session != nil {
			if d.events[cd.Session.ID], err = s.store.ListEvents(ctx, cd.Session.ID, 0); err != nil {
				s.failPage(c, err)
				return
			}
		}
		d.Cards = append(d.Cards, cd)
	}
	s.render(c, http.StatusOK, "home", d)
}

func (s *Server) newClassPage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	if !u.CanTeach() {
		s.failPage(c, cohort.Errorf(cohort.EFORBIDDEN, "only instructors can create classes; ask an admin to make you one"))
		return
	}
	def := cohort.DefaultClass()
	s.render(c, http.StatusOK, "newclass", pageData{Title: "New class", User: u, CSRF: csrf, Class: &def,
		MachineTypes: catalog.MachineTypeNames(), GPUTypes: catalog.GPUTypes()})
}

func (s *Server) managePage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	c.Set(userKey, u)
	a, err := s.classToTeach(c)
	if err != nil {
		s.failPage(c, err)
		return
	}
	ctx := c.Request.Context()
	d := pageData{Title: a.class.Name, User: u, CSRF: csrf, Class: a.class,
		MachineTypes: catalog.MachineTypeNames(), GPUTypes: catalog.GPUTypes()}
	s.workFeatures(&d)
	sessions, err := s.store.ListSessions(ctx, cohort.SessionFilter{ClassID: a.class.ID})
	if err == nil {
		d.Members, err = s.store.ListMembers(ctx, a.class.ID)
	}
	if err == nil {
		d.Audit, err = s.store.ListAudit(ctx, cohort.AuditFilter{ClassID: a.class.ID, Limit: 50})
	}
	if err != nil {
		s.failPage(c, err)
		return
	}
	emails := map[string]string{}
	for _, sess := range sessions {
		if !sess.State.Active() && time.Since(sess.StateChangedAt) > 24*time.Hour {
			continue // yesterday's ended sessions clutter the table
		}
		if sess.Warm() {
			emails[sess.UserID] = "warm seat (nobody's yet)"
		}
		if _, ok := emails[sess.UserID]; !ok {
			if owner, err := s.store.GetUser(ctx, sess.UserID); err == nil {
				emails[sess.UserID] = owner.Email
			}
		}
		v := s.view(sess)
		s.withDeadlines(&v, a.class.Policy)
		latest := sess.Reason
		if ev, err := s.store.ListEvents(ctx, sess.ID, 0); err == nil && len(ev) > 0 {
			latest = ev[len(ev)-1].Message
		}
		d.Seats = append(d.Seats, seat{Email: emails[sess.UserID], Session: v, Latest: latest})
	}
	if d.Cost, d.Chart, err = s.classCostOf(ctx, a.class, true); err != nil {
		s.failPage(c, err)
		return
	}
	pool, err := s.poolView(ctx, a.class)
	if err != nil {
		s.failPage(c, err)
		return
	}
	d.Pool = &pool
	s.render(c, http.StatusOK, "manage", d)
}

func (s *Server) adminPage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	if u.Role != cohort.RoleAdmin {
		s.failPage(c, cohort.Errorf(cohort.EFORBIDDEN, "only admins can see this page"))
		return
	}
	ctx := c.Request.Context()
	d := pageData{Title: "Admin", User: u, CSRF: csrf, Roles: []cohort.Role{cohort.RoleParticipant, cohort.RoleInstructor, cohort.RoleAdmin}}
	month := cost.MonthOf(s.now())
	var err error
	if v := c.Query("month"); v != "" {
		if month, err = cost.ParseMonth(v); err != nil {
			s.failPage(c, err)
			return
		}
	}
	from, to := month.Span()
	d.ThisMonth = month == cost.MonthOf(s.now())
	d.PrevMonth = string(cost.MonthOf(from.AddDate(0, 0, -1)))
	if next := cost.MonthOf(to); next <= cost.MonthOf(s.now()) {
		d.NextMonth = string(next)
	}
	if d.Users, err = s.store.ListUsers(ctx); err == nil {
		if d.Classes, err = s.store.ListClasses(ctx); err == nil {
			if d.Audit, err = s.store.ListAudit(ctx, cohort.AuditFilter{Limit: 200}); err == nil {
				d.Spend, err = s.monthSpend(ctx, month)
			}
		}
	}
	if err != nil {
		s.failPage(c, err)
		return
	}
	s.render(c, http.StatusOK, "admin", d)
}

func (s *Server) joinPage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "join", pageData{Title: "Join a class", User: u, CSRF: csrf})
}

func (s *Server) joinSubmit(c *gin.Context) {
	u, _, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	if _, err := s.redeemInvite(c, u, c.Param("code")); err != nil {
		s.failPage(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

// workFeatures says what the driver does with participants' work.
func (s *Server) workFeatures(d *pageData) {
	_, d.GivesWork = s.work.(cohort.WorkReader)
	_, d.Pulls = s.work.(cohort.Puller)
	d.KeepsWork = s.work != nil
}
