// Command session-stack runs one session's program from its own Pulumi project,
// for debugging outside cohort: put the session spec (JSON of
// infra.SessionSpec) in the stack's config as cohort-session:session, then
// `pulumi preview` or `pulumi up`. cohort itself runs the same program
// through the Automation API.
package main

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/cohortdev/cohort/infra"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		var spec infra.SessionSpec
		raw := config.Require(ctx, "session")
		if err := json.Unmarshal([]byte(raw), &spec); err != nil {
			return fmt.Errorf("cohort-session:session is not a session spec: %w", err)
		}
		return infra.SessionProgram(spec)(ctx)
	})
}
