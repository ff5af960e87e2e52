// Command stack is the root Pulumi project's program: a whole cohort
// installation in one Google Cloud project (infra/foundation). Its
// settings are the stack's config (docs/gcp.md):
//
//	pulumi config set gcp:project my-workshop-project
//	pulumi config set cohort:region us-central1
//	pulumi config set cohort:domain cohort.example.org
//	pulumi config set cohort:notebookDomain example-notebooks.org
//	pulumi config set cohort:oauthClientId 1234-abc.apps.googleusercontent.com
//	pulumi config set --secret cohort:oauthClientSecret GOCSPX-...
//	pulumi config set cohort:admins you@example.org
package main

import (
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/cohortdev/cohort/infra/foundation"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "cohort")
		c := foundation.Config{
			Project:            config.New(ctx, "gcp").Get("project"),
			Region:             cfg.Get("region"),
			Zone:               cfg.Get("zone"),
			Domain:             cfg.Get("domain"),
			NotebookDomain:     cfg.Get("notebookDomain"),
			OAuthClientID:      cfg.Get("oauthClientId"),
			SubnetCIDR:         cfg.Get("subnetCidr"),
			ControlMachineType: cfg.Get("controlMachineType"),
			KMS:                cfg.GetBool("kms") || cfg.Get("kms") == "",
			KeyRing:            cfg.Get("keyRing"),
		}
		if c.Region == "" {
			c.Region = "us-central1"
		}
		if cfg.Get("oauthClientSecret") != "" {
			c.OAuthClientSecret = cfg.GetSecret("oauthClientSecret")
		}
		for _, a := range strings.Split(cfg.Get("admins"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Admins = append(c.Admins, a)
			}
		}
		return foundation.Program(c)(ctx)
	})
}
