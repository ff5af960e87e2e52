package gcptest

import (
	"context"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Up runs a program with the real Pulumi engine (pulumiRoot/bin/pulumi)
// against the fake, as stack "prod" of project "cohort" in a file://
// backend under dir, and returns the stack and the update's outcome.
func (f *Fake) Up(ctx context.Context, pulumiRoot, dir string, program pulumi.RunFunc) (auto.Stack, auto.UpResult, error) {
	for _, sub := range []string{"work", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return auto.Stack{}, auto.UpResult{}, err
		}
	}
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: pulumiRoot, SkipVersionCheck: true})
	if err != nil {
		return auto.Stack{}, auto.UpResult{}, err
	}
	st, err := auto.UpsertStackInlineSource(ctx, "prod", "cohort", program, auto.Pulumi(cli), auto.WorkDir(filepath.Join(dir, "work")),
		auto.Project(workspace.Project{Name: "cohort", Runtime: workspace.NewProjectRuntimeInfo("go", nil)}),
		auto.EnvVars(map[string]string{"PULUMI_BACKEND_URL": "file://" + filepath.Join(dir, "state"), "PULUMI_CONFIG_PASSPHRASE": "test",
			"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DEBUG_PROVIDERS": f.DebugProviders(), "PULUMI_HOME": filepath.Join(dir, "home")}))
	if err != nil {
		return auto.Stack{}, auto.UpResult{}, err
	}
	up, err := st.Up(ctx, optup.SuppressProgress())
	return st, up, err
}
