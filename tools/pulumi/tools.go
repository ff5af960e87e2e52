//go:build tools

// Package tools pins the Pulumi CLI that `make pulumi` builds from the Go
// module proxy (no download site is needed). It is never compiled.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
