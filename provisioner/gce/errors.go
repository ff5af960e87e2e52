// Package gce runs sessions as GCE VMs with GPUs through the Pulumi
// Automation API: shard stacks of a class's sessions (shards.go), each in
// its own workspace directory, the program infra.ShardProgram.
package gce

import (
	"regexp"
	"strings"
)

// FailureKind classifies what went wrong in an update.
type FailureKind int

// The kinds of failure, and what cohort does about each.
const (
	// FailOther: fail the session with the provider's message.
	FailOther FailureKind = iota
	// FailStockout: the zone has no GPUs left; try the class's next zone.
	FailStockout
	// FailQuota: the project may not have more GPUs; the instructor must ask
	// Google for quota. Trying elsewhere does not help.
	FailQuota
	// FailTransient: try again after a while.
	FailTransient
)

// Failure is a classified update error.
type Failure struct {
	Kind FailureKind
	// Message is for the instructor: what happened and what to do.
	Message string
}

var (
	quotaMetric = regexp.MustCompile(`Quota '([A-Z0-9_]+)' exceeded`)
	quotaRegion = regexp.MustCompile(`in region ([a-z0-9-]+)`)
	apiError    = regexp.MustCompile(`googleapi: Error \d+: [^\n]*`)
)

// Classify reads an engine error (its text carries the provider's) and
// says what kind of failure it is.
func Classify(err error) Failure {
	if err == nil {
		return Failure{}
	}
	text := err.Error()
	switch {
	case strings.Contains(text, "ZONE_RESOURCE_POOL_EXHAUSTED"):
		return Failure{FailStockout, "the zone has no GPUs of this type left right now"}
	case strings.Contains(text, "QUOTA_EXCEEDED") || strings.Contains(text, "quotaExceeded"):
		metric := "a GPU quota"
		if m := quotaMetric.FindStringSubmatch(text); m != nil {
			metric = "the quota " + m[1]
		}
		where := ""
		if m := quotaRegion.FindStringSubmatch(text); m != nil {
			where = " (region " + m[1] + ")"
		}
		return Failure{FailQuota, "the project has reached " + metric + where +
			": request more in the Google Cloud console, IAM & Admin > Quotas, before the class (see docs/gcp.md)"}
	case strings.Contains(text, "Error 503") || strings.Contains(text, "Error 429") || strings.Contains(text, "rateLimitExceeded") ||
		strings.Contains(text, "backendError") || strings.Contains(text, "connection reset"):
		return Failure{FailTransient, "Google Cloud answered with a temporary error"}
	}
	msg := text
	if m := apiError.FindString(text); m != "" {
		msg = m
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return Failure{FailOther, msg}
}
