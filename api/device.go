package api

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// CLI sign-in (`cohort login`) follows the OAuth device flow: the CLI asks
// for a device code and a short user code, the person approves the user
// code in a signed-in browser (on any device), and the CLI, polling with
// the device code, receives an API token once.

const deviceCodeTTL = 10 * time.Minute

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

func (s *Server) startDevice(c *gin.Context) {
	device := cohort.NewSecret(cohort.CodePrefix)
	var code string
	var err error
	for range 3 { // a collision of user codes is rare; try again
		code = newUserCode()
		err = s.store.CreateDeviceCode(c.Request.Context(), cohort.HashSecret(device), code, s.now().Add(deviceCodeTTL))
		if cohort.ErrorCode(err) != cohort.ECONFLICT {
			break
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	verify := s.baseURL(c) + "/auth/device"
	c.JSON(http.StatusCreated, gin.H{
		"device_code": device, "user_code": code, "verification_uri": verify,
		"verification_uri_complete": verify + "?" + url.Values{"code": {code}}.Encode(),
		"expires_in":                int(deviceCodeTTL.Seconds()), "interval": 2,
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
	ctx := c.Request.Context()
	userID, err := s.store.ClaimDeviceCode(ctx, cohort.HashSecret(in.DeviceCode))
	if err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		s.fail(c, err)
		return
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = "cohort login"
	}
	tok, secret, err := s.mintToken(c, u, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"token": secret, "id": tok.ID, "user": u})
}

func (s *Server) devicePage(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "device", pageData{Title: "Sign in the CLI", User: u, CSRF: csrf, Code: c.Query("code")})
}

func (s *Server) deviceApprove(c *gin.Context) {
	u, csrf, ok := s.requireBrowser(c)
	if !ok {
		return
	}
	code := strings.ToUpper(strings.TrimSpace(c.PostForm("code")))
	d := pageData{Title: "Sign in the CLI", User: u, CSRF: csrf, Code: code}
	if err := s.store.ApproveDeviceCode(c.Request.Context(), code, u.ID); err != nil {
		if cohort.ErrorCode(err) == cohort.EINTERNAL {
			s.failPage(c, err)
			return
		}
		d.Message = cohort.ErrorMessage(err)
		s.render(c, http.StatusBadRequest, "device", d)
		return
	}
	d.Done = true
	s.render(c, http.StatusOK, "device", d)
}
