package foundation

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// addControlPlane is the control plane VM: no public address (the load balancer
// and IAP reach it), its own service account with the cloud-platform
// scope (its roles are what limit it), Shielded VM.
func (f *foundation) addControlPlane() error {
	var err error
	f.vm, err = compute.NewInstance(f.ctx, "cohort-control", &compute.InstanceArgs{
		Project: f.project, Zone: pulumi.String(f.c.Zone), Name: pulumi.String("cohort-control"),
		MachineType: pulumi.String(f.c.ControlMachineType),
		BootDisk: &compute.InstanceBootDiskArgs{InitializeParams: &compute.InstanceBootDiskInitializeParamsArgs{
			Image: pulumi.String("projects/debian-cloud/global/images/family/debian-12"), Size: pulumi.Int(30), Type: pulumi.String("pd-balanced"),
		}},
		NetworkInterfaces: compute.InstanceNetworkInterfaceArray{&compute.InstanceNetworkInterfaceArgs{Subnetwork: f.subnet.ID()}},
		ServiceAccount: &compute.InstanceServiceAccountArgs{Email: f.control.Email,
			Scopes: pulumi.StringArray{pulumi.String("https://www.googleapis.com/auth/cloud-platform")}},
		ShieldedInstanceConfig: &compute.InstanceShieldedInstanceConfigArgs{EnableSecureBoot: pulumi.Bool(true), EnableVtpm: pulumi.Bool(true),
			EnableIntegrityMonitoring: pulumi.Bool(true)},
		Metadata: pulumi.StringMap{
			"enable-oslogin": pulumi.String("TRUE"),
			"startup-script": f.startupScript(),
		},
		AllowStoppingForUpdate: pulumi.Bool(true),
		Labels:                 pulumi.StringMap{"cohort": pulumi.String("control")},
	}, pulumi.IgnoreChanges([]string{"bootDisk.initializeParams.image"}))
	return err
}

// Env is cohort's environment on the control plane: the flags of `cohort
// serve`, filled from what the program made.
func (f *foundation) Env() pulumi.StringOutput {
	secrets := pulumi.String("passphrase").ToStringOutput()
	if f.key != nil {
		secrets = pulumi.Sprintf("gcpkms://%s", f.key.ID())
	}
	return pulumi.All(f.subnet.SelfLink, f.session.Email, f.sched.Email, f.bucket.Name, secrets, f.address.Address).ApplyT(func(v []any) string {
		env := []string{
			"COHORT_ADDR=0.0.0.0:" + fmt.Sprint(ControlPort),
			"COHORT_DATA_DIR=/var/lib/cohort",
			"COHORT_PUBLIC_URL=https://" + f.c.Domain,
			"COHORT_NOTEBOOK_DOMAIN=" + f.c.NotebookDomain,
			// The load balancer appends "client, its own address" to
			// X-Forwarded-For: both it and the front ends are trusted.
			"COHORT_TRUSTED_PROXIES=" + strings.Join(GoogleFrontEnds, ",") + "," + v[5].(string) + "/32",
			"COHORT_OIDC_CLIENT_ID=" + f.c.OAuthClientID,
			"COHORT_ADMINS=" + strings.Join(f.c.Admins, ","),
			"COHORT_DRIVER=gce",
			"COHORT_GCE_PROJECT=" + f.c.Project,
			"COHORT_GCE_SUBNETWORK=" + v[0].(string),
			"COHORT_GCE_SESSION_ACCOUNT=" + v[1].(string),
			"COHORT_SCHEDULER_SERVICE_ACCOUNT=" + v[2].(string),
			"COHORT_GCE_SCHEDULER_REGION=" + f.c.Region,
			"COHORT_PULUMI_STATE=gs://" + v[3].(string),
			"COHORT_PULUMI_SECRETS_PROVIDER=" + v[4].(string),
			"COHORT_PULUMI_ROOT=/usr/local/lib/cohort",
		}
		return strings.Join(env, "\n") + "\n"
	}).(pulumi.StringOutput)
}

// startupScript installs cohort's service on the control plane: the
// binaries are copied there (docs/gcp.md); the unit starts once they are.
func (f *foundation) startupScript() pulumi.StringOutput {
	return f.Env().ApplyT(func(env string) string {
		return strings.NewReplacer("@ENV@", env, "@SECRET@", SecretName, "@PROJECT@", f.c.Project).Replace(startupScript)
	}).(pulumi.StringOutput)
}

const startupScript = `#!/bin/bash
# cohort's control plane (written by the foundation program, infra/foundation).
set -euo pipefail
id cohort >/dev/null 2>&1 || useradd --system --home-dir /var/lib/cohort --shell /usr/sbin/nologin cohort
install -d -o cohort -g cohort -m 0700 /var/lib/cohort
install -d -m 0755 /etc/cohort /usr/local/lib/cohort/bin
cat > /etc/cohort/cohort.env <<'ENV'
@ENV@ENV
# The OAuth client secret is read from Secret Manager at each start and
# only ever held in the process's environment.
cat > /usr/local/lib/cohort/run <<'RUN'
#!/bin/bash
set -euo pipefail
COHORT_OIDC_CLIENT_SECRET="$(gcloud secrets versions access latest --secret=@SECRET@ --project=@PROJECT@)"
export COHORT_OIDC_CLIENT_SECRET
exec /usr/local/bin/cohort serve
RUN
chmod 0755 /usr/local/lib/cohort/run
cat > /etc/systemd/system/cohort.service <<'UNIT'
[Unit]
Description=cohort control plane
After=network-online.target
Wants=network-online.target
ConditionPathExists=/usr/local/bin/cohort

[Service]
User=cohort
EnvironmentFile=/etc/cohort/cohort.env
ExecStart=/usr/local/lib/cohort/run
Restart=on-failure
RestartSec=5
# Long engine runs finish or are interrupted cleanly.
TimeoutStopSec=120
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/cohort
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable cohort.service
systemctl restart cohort.service || echo "cohort is not installed yet: copy the binaries (docs/gcp.md)"
`
