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
	opError     = regexp.MustCompile(`Error waiting for instance to create: ([^\n]*)`)
)

// stockoutTexts are how GCE words a zone without capacity. The provider
// reports a failed operation by its messages only, with no error code
// (compute_operation.go, ComputeOperationError), so the texts are matched
// as well as the codes a direct API error carries.
var stockoutTexts = []string{
	"ZONE_RESOURCE_POOL_EXHAUSTED",
	"does not have enough resources available to fulfill the request",
	"is currently unavailable in the",
	"resource pool exhausted",
}

// Classify reads an engine error (its text carries the provider's) and
// says what kind of failure it is.
func Classify(err error) Failure {
	if err == nil {
		return Failure{}
	}
	text := err.Error()
	switch {
	case containsAny(text, stockoutTexts...):
		return Failure{FailStockout, "the zone has no GPUs of this type left right now"}
	case containsAny(text, "QUOTA_EXCEEDED", "quotaExceeded") || quotaMetric.MatchString(text):
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
	case containsAny(text, "is already being used by"):
		// RESOURCE_IN_USE_BY_ANOTHER_RESOURCE: the participant's work
		// disk is still on their previous session's VM, being deleted.
		return Failure{FailTransient, "your work disk is still attached to your previous session's VM, which is being deleted"}
	case containsAny(text, "Error 503", "Error 429", "rateLimitExceeded", "backendError", "connection reset"):
		return Failure{FailTransient, "Google Cloud answered with a temporary error"}
	}
	msg := text
	if m := opError.FindStringSubmatch(text); m != nil {
		msg = m[1]
	} else if m := apiError.FindString(text); m != "" {
		msg = m
	}
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return Failure{FailOther, msg}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
