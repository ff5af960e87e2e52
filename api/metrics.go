package api

import (
	"github.com/gin-gonic/gin"

	"github.com/cohortdev/cohort"
)

// serveMetrics serves Prometheus's scrape to admins (a scraper sends an
// admin's API token: Prometheus's `authorization` setting).
func (s *Server) serveMetrics(c *gin.Context) {
	if err := requireAdmin(c); err != nil {
		s.fail(c, err)
		return
	}
	if s.metrics == nil {
		s.fail(c, cohort.Errorf(cohort.ENOTFOUND, "this server counts no metrics"))
		return
	}
	s.metrics.Handler(s.log).ServeHTTP(c.Writer, c.Request)
}
