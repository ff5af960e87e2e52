package api

import (
	"crypto/rand"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/metrics"
)

// CLI sign-in (`cohort login`) follows the OAuth device flow (RFC 8628):
// the CLI asks for a device code and a short user code, the person types
// the user code into a signed-in browser (on any device), sees which
// client asks, from where and when, and approves; the CLI, polling with
// the device code, receives an API token once. There is no link with the
// code filled in: a link that only needs a click can be sent by anyone
// who started a sign-in of their own.

const (
	deviceCodeTTL = 10 * time.Minute
	// deviceInterval is how often a CLI may poll; faster is slow_down.
	deviceInterval = 2 * time.Second
	maxClientName  = 100
)

// userCodeAlphabet leaves out letters and digits people confuse.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// clientName keeps what a CLI says it is printable and short: it is shown
// to the person who approves.
func clientName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.TrimSpace(name))
	if r := []rune(name); len(r) > maxClientName {
		name = string(r[:maxClientName])
	}
	if name == "" {
		name = "cohort login"
	}
	return name
}

func (s *Server) startDevice(c *gin.Context) {
	if !s.deviceLimit.allow(c.ClientIP(), s.now()) {
		s.fail(c, cohort.Errorf(ETOOMANY, "too many sign-ins started from %s; wait a minute", c.ClientIP()))
		return
	}
	var in struct {
		ClientName string `json:"client_name"`
	}
	if c.Request.ContentLength != 0 {
		if err := decode(c, &in); err != nil {
			s.fail(c, err)
			return
		}
	}
	device := cohort.NewSecret(cohort.CodePrefix)
	d := &cohort.DeviceCode{ClientName: clientName(in.ClientName), ClientAddr: c.ClientIP(), ExpiresAt: s.now().Add(deviceCodeTTL)}
	var err error
	for range 3 { // a collision of user codes is rare; try again
		d.UserCode = newUserCode()
		err = s.store.CreateDeviceCode(c.Request.Context(), cohort.HashSecret(device), d)
		if cohort.ErrorCode(err) != cohort.ECONFLICT {
			break
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"device_code": device, "user_code": d.UserCode, "verification_uri": s.publicURL + "/auth/device",
		"expires_in": int(deviceCodeTTL.Seconds()), "interval": int(deviceInterval.Seconds()),
	})
}

func (s *Server) deviceToken(c *gin.Context) {
	var in struct {
		DeviceCode string `json:"device_code"`
		Name       string `json:"name"`
	}
	if err := decode(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.DeviceCode == "" {
		s.fail(c, cohort.Invalid("device_code", "device_code is required"))
		return
	}
	hash := cohort.HashSecret(in.DeviceCode)
	ctx := c.Request.Context()
	userID, err := s.store.ClaimDeviceCode(ctx, hash)
	// Pending sign-ins are the ones a CLI polls: they are counted (only
	// they, so that made-up codes cannot fill the limiter).
	if cohort.ErrorCode(err) == cohort.ECONFLICT && !s.pollLimit.allow(hash, s.now()) {
		c.Header("Retry-After", "5")
		err = cohort.Errorf(ESLOWDOWN, "polling faster than every %s; wait 5 seconds longer between polls", deviceInterval)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		s.fail(c, err)
		return
	}
	tok, secret, err := s.mintToken(c, u, clientName(in.Name))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.metrics.SignIn("cli", metrics.SignInOK)
	c.JSON(http.StatusCreated, gin.H{"token": secret, "id": tok.ID, "user": u})
}

// devicePage asks for the code the CLI shows. A code in the link is not
// filled in: the person types what their own terminal shows.
func (s *Server) devicePage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "device", pageData{Title: "Sign in the CLI", User: u, CSRF: csrf})
}

// deviceApprove takes the typed code: first it shows which client asks
// (its name, address and time), then, confirmed, approves it.
func (s *Server) deviceApprove(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	code := strings.ToUpper(strings.TrimSpace(c.PostForm("code")))
	d := pageData{Title: "Sign in the CLI", User: u, CSRF: csrf, Code: code}
	if !s.approveLimit.allow(c.ClientIP(), s.now()) {
		d.Message = "Too many codes tried from this address; wait a minute."
		s.render(c, http.StatusTooManyRequests, "device", d)
		return
	}
	ctx := c.Request.Context()
	dc, err := s.store.DeviceCode(ctx, code)
	if err == nil && c.PostForm("confirm") == "yes" {
		err = s.store.ApproveDeviceCode(ctx, code, u.ID)
		d.Done = err == nil
	}
	switch {
	case cohort.ErrorCode(err) == cohort.EINTERNAL:
		s.failPage(c, err)
		return
	case err != nil:
		d.Message = cohort.ErrorMessage(err)
		s.render(c, http.StatusBadRequest, "device", d)
		return
	}
	d.Device, d.ClientAddr = dc, c.ClientIP()
	if d.Done {
		s.audit(ctx, u, cohort.AuditEvent{Action: cohort.AuditDeviceApproved, Subject: dc.ClientName, Detail: "from " + dc.ClientAddr})
	}
	s.render(c, http.StatusOK, "device", d)
}
