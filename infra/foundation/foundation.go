// Package foundation is the Pulumi program of a cohort installation in
// an empty Google Cloud project: the network session VMs live in (no
// public addresses, egress through Cloud NAT, no session-to-session
// traffic), the service accounts with the least each needs, the state
// bucket and the key that encrypts secrets in it, and the control plane:
// a VM running `cohort serve --driver gce` behind an HTTPS load balancer
// with one Google-managed certificate for the app and the wildcard
// notebook domain. The root Pulumi project runs it (infra/stack).
package foundation

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/certificatemanager"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/kms"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/projects"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/secretmanager"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/serviceaccount"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/storage"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort/infra"
)

// Config is the installation's settings (Pulumi config "cohort:*").
type Config struct {
	Project, Region string
	// Zone holds the control plane VM; the region's "-b" zone if empty
	// (every region has one; not every region has an "-a").
	Zone string
	// Domain is the app's host (cohort.example.org); NotebookDomain the
	// parent of the notebooks' hosts (nb.example.org or, safer, a
	// registrable domain of its own: docs/security.md).
	Domain, NotebookDomain string
	// The OAuth client participants sign in with; the secret is kept in
	// Secret Manager and read by the control plane at start.
	OAuthClientID     string
	OAuthClientSecret pulumi.StringInput
	// Admins become cohort's administrators at sign-in.
	Admins []string
	// SubnetCIDR is the sessions' and control plane's subnet; 10.20.0.0/20
	// (4,096 addresses) if empty.
	SubnetCIDR string
	// ControlMachineType runs cohort and its Pulumi engine; e2-standard-2.
	ControlMachineType string
	// KMS encrypts the session stacks' secrets with a Cloud KMS key
	// instead of a passphrase on the control plane's disk. KeyRing names
	// its key ring ("cohort"): Google never deletes a key ring, so a new
	// installation in the same project after a destroy needs another name.
	KMS     bool
	KeyRing string
}

// GoogleFrontEnds are where Google's load balancers and health checks
// connect from (cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges).
var GoogleFrontEnds = []string{"35.191.0.0/16", "130.211.0.0/22"}

// iapRange is where IAP TCP forwarding connects from, for an
// administrator's `gcloud compute ssh --tunnel-through-iap`.
const iapRange = "35.235.240.0/20"

// ControlPort is where cohort serves on the control plane VM.
const ControlPort = 8080

// Names of what the program creates, for the docs and the driver's flags.
const (
	NetworkName    = "cohort"
	SubnetName     = "cohort-sessions"
	SessionAccount = "cohort-session"
	ControlAccount = "cohort-control"
	SchedAccount   = "cohort-scheduler"
	SecretName     = "cohort-oidc-client-secret"
)

var hostname = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$`)

// Check returns a problem with the settings, naming the setting.
func (c *Config) Check() error {
	switch {
	case c.Project == "":
		return fmt.Errorf("gcp:project is required: the project to install cohort in")
	case c.Region == "":
		return fmt.Errorf("cohort:region is required, e.g. us-central1")
	case !hostname.MatchString(c.Domain):
		return fmt.Errorf("cohort:domain %q is not a host name such as cohort.example.org", c.Domain)
	case !hostname.MatchString(c.NotebookDomain):
		return fmt.Errorf("cohort:notebookDomain %q is not a host name such as nb.example.org", c.NotebookDomain)
	case c.NotebookDomain == c.Domain || strings.HasSuffix(c.Domain, "."+c.NotebookDomain):
		return fmt.Errorf("cohort:notebookDomain %q must not be the app's domain or a parent of it: notebooks would share the app's cookies", c.NotebookDomain)
	case c.OAuthClientID == "" || c.OAuthClientSecret == nil:
		return fmt.Errorf("cohort:oauthClientId and the secret cohort:oauthClientSecret are required (docs/gcp.md, \"The OAuth client\")")
	}
	if c.Zone == "" {
		c.Zone = c.Region + "-b"
	}
	if c.KeyRing == "" {
		c.KeyRing = "cohort"
	}
	if c.SubnetCIDR == "" {
		c.SubnetCIDR = "10.20.0.0/20"
	}
	if c.ControlMachineType == "" {
		c.ControlMachineType = "e2-standard-2"
	}
	return nil
}

// Program returns the installation's program. Its outputs are the DNS
// records to create and the settings cohort runs with.
func Program(c Config) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if err := c.Check(); err != nil {
			return err
		}
		f := &foundation{ctx: ctx, c: c, project: pulumi.String(c.Project)}
		for _, step := range []func() error{f.addAccounts, f.addNetwork, f.addFirewall, f.addState, f.addSecret, f.addAddress, f.addControlPlane, f.addLoadBalancer} {
			if err := step(); err != nil {
				return err
			}
		}
		f.outputs()
		return nil
	}
}

type foundation struct {
	ctx     *pulumi.Context
	c       Config
	project pulumi.String

	session, control, sched *serviceaccount.Account
	network                 *compute.Network
	subnet                  *compute.Subnetwork
	bucket                  *storage.Bucket
	key                     *kms.CryptoKey
	secret                  *secretmanager.Secret
	vm                      *compute.Instance
	address                 *compute.GlobalAddress
	auths                   []*certificatemanager.DnsAuthorization
}

func (f *foundation) member(sa *serviceaccount.Account) pulumi.StringOutput {
	return pulumi.Sprintf("serviceAccount:%s", sa.Email)
}

// addAccounts: the session VMs' (logs and metrics only), the control
// plane's, and the one Cloud Scheduler signs its calls to cohort as (no
// roles at all: its token only proves the caller to cohort).
func (f *foundation) addAccounts() error {
	var err error
	mk := func(id, name string) (*serviceaccount.Account, error) {
		return serviceaccount.NewAccount(f.ctx, id, &serviceaccount.AccountArgs{Project: f.project, AccountId: pulumi.String(id), DisplayName: pulumi.String(name)})
	}
	if f.session, err = mk(SessionAccount, "cohort session VMs"); err != nil {
		return err
	}
	if f.control, err = mk(ControlAccount, "cohort control plane"); err != nil {
		return err
	}
	if f.sched, err = mk(SchedAccount, "cohort's Cloud Scheduler calls"); err != nil {
		return err
	}
	grants := []struct {
		name string
		sa   *serviceaccount.Account
		role string
	}{
		{"session-logs", f.session, "roles/logging.logWriter"},
		{"session-metrics", f.session, "roles/monitoring.metricWriter"},
		{"control-logs", f.control, "roles/logging.logWriter"},
		// Session VMs in any of a class's zones, and their expiry jobs.
		{"control-instances", f.control, "roles/compute.instanceAdmin.v1"},
		{"control-scheduler", f.control, "roles/cloudscheduler.admin"},
	}
	for _, g := range grants {
		if _, err := projects.NewIAMMember(f.ctx, g.name, &projects.IAMMemberArgs{Project: f.project, Role: pulumi.String(g.role), Member: f.member(g.sa)}); err != nil {
			return err
		}
	}
	// The control plane acts as the session and scheduler accounts only:
	// Service Account User on those two, never on the project.
	for name, sa := range map[string]*serviceaccount.Account{"control-acts-as-session": f.session, "control-acts-as-scheduler": f.sched} {
		if _, err := serviceaccount.NewIAMMember(f.ctx, name, &serviceaccount.IAMMemberArgs{
			ServiceAccountId: sa.Name, Role: pulumi.String("roles/iam.serviceAccountUser"), Member: f.member(f.control),
		}); err != nil {
			return err
		}
	}
	return nil
}

// addNetwork: a VPC of cohort's own (the default network's
// default-allow-internal would let session VMs reach each other), one
// subnet with Private Google Access, and Cloud NAT for egress without
// public addresses.
func (f *foundation) addNetwork() error {
	var err error
	f.network, err = compute.NewNetwork(f.ctx, NetworkName, &compute.NetworkArgs{
		Project: f.project, Name: pulumi.String(NetworkName), AutoCreateSubnetworks: pulumi.Bool(false),
	})
	if err != nil {
		return err
	}
	f.subnet, err = compute.NewSubnetwork(f.ctx, SubnetName, &compute.SubnetworkArgs{
		Project: f.project, Region: pulumi.String(f.c.Region), Name: pulumi.String(SubnetName), Network: f.network.ID(),
		IpCidrRange: pulumi.String(f.c.SubnetCIDR), PrivateIpGoogleAccess: pulumi.Bool(true),
	})
	if err != nil {
		return err
	}
	router, err := compute.NewRouter(f.ctx, "cohort-router", &compute.RouterArgs{
		Project: f.project, Region: pulumi.String(f.c.Region), Name: pulumi.String("cohort-router"), Network: f.network.ID(),
	})
	if err != nil {
		return err
	}
	_, err = compute.NewRouterNat(f.ctx, "cohort-nat", &compute.RouterNatArgs{
		Project: f.project, Region: pulumi.String(f.c.Region), Name: pulumi.String("cohort-nat"), Router: router.Name,
		NatIpAllocateOption:           pulumi.String("AUTO_ONLY"),
		SourceSubnetworkIpRangesToNat: pulumi.String("LIST_OF_SUBNETWORKS"),
		Subnetworks: compute.RouterNatSubnetworkArray{&compute.RouterNatSubnetworkArgs{
			Name: f.subnet.ID(), SourceIpRangesToNats: pulumi.StringArray{pulumi.String("ALL_IP_RANGES")},
		}},
		// A class of 30 downloading models at once: ports enough per VM.
		MinPortsPerVm: pulumi.Int(1024),
		LogConfig:     &compute.RouterNatLogConfigArgs{Enable: pulumi.Bool(true), Filter: pulumi.String("ERRORS_ONLY")},
	})
	return err
}

// addFirewall admits the control plane to the notebooks' port, Google's
// front ends to the control plane, and IAP to its SSH; it denies session
// VMs every connection to each other (above any rule someone adds).
func (f *foundation) addFirewall() error {
	sa := func(a *serviceaccount.Account) pulumi.StringArray { return pulumi.StringArray{a.Email} }
	tcp := func(ports ...string) compute.FirewallAllowArray {
		return compute.FirewallAllowArray{&compute.FirewallAllowArgs{Protocol: pulumi.String("tcp"), Ports: pulumi.ToStringArray(ports)}}
	}
	rules := []struct {
		name string
		args compute.FirewallArgs
	}{
		{"cohort-deny-session-to-session", compute.FirewallArgs{Priority: pulumi.Int(900),
			Denies:                compute.FirewallDenyArray{&compute.FirewallDenyArgs{Protocol: pulumi.String("all")}},
			SourceServiceAccounts: sa(f.session), TargetServiceAccounts: sa(f.session)}},
		{"cohort-allow-notebooks", compute.FirewallArgs{Allows: tcp(fmt.Sprint(infra.NotebookPort), fmt.Sprint(infra.AgentPort)),
			SourceServiceAccounts: sa(f.control), TargetServiceAccounts: sa(f.session)}},
		{"cohort-allow-load-balancer", compute.FirewallArgs{Allows: tcp(fmt.Sprint(ControlPort)),
			SourceRanges: pulumi.ToStringArray(GoogleFrontEnds), TargetServiceAccounts: sa(f.control)}},
		{"cohort-allow-iap-ssh", compute.FirewallArgs{Allows: tcp("22"),
			SourceRanges: pulumi.StringArray{pulumi.String(iapRange)}, TargetServiceAccounts: sa(f.control)}},
		// A class without internet (its runtime's no_egress): its VMs
		// carry the tag; answers to the control plane still flow.
		{"cohort-deny-egress", compute.FirewallArgs{Direction: pulumi.String("EGRESS"),
			Denies:            compute.FirewallDenyArray{&compute.FirewallDenyArgs{Protocol: pulumi.String("all")}},
			DestinationRanges: pulumi.StringArray{pulumi.String("0.0.0.0/0")}, TargetTags: pulumi.StringArray{pulumi.String(infra.NoEgressTag)}}},
	}
	for _, r := range rules {
		args := r.args
		args.Project, args.Network, args.Name = f.project, f.network.ID(), pulumi.String(r.name)
		if _, err := compute.NewFirewall(f.ctx, r.name, &args); err != nil {
			return err
		}
	}
	return nil
}

// addState: the bucket of the session stacks' Pulumi state, and the key that
// encrypts the secrets in it; only the control plane may use either.
func (f *foundation) addState() error {
	var err error
	f.bucket, err = storage.NewBucket(f.ctx, "cohort-state", &storage.BucketArgs{
		Project: f.project, Name: pulumi.String(f.c.Project + "-cohort-state"), Location: pulumi.String(strings.ToUpper(f.c.Region)),
		UniformBucketLevelAccess: pulumi.Bool(true), PublicAccessPrevention: pulumi.String("enforced"),
		// Pulumi keeps its own history; versions let a bad write be undone.
		Versioning: &storage.BucketVersioningArgs{Enabled: pulumi.Bool(true)},
	})
	if err != nil {
		return err
	}
	_, err = storage.NewBucketIAMMember(f.ctx, "control-state", &storage.BucketIAMMemberArgs{
		Bucket: f.bucket.Name, Role: pulumi.String("roles/storage.objectAdmin"), Member: f.member(f.control),
	})
	if err != nil || !f.c.KMS {
		return err
	}
	ring, err := kms.NewKeyRing(f.ctx, "cohort", &kms.KeyRingArgs{Project: f.project, Name: pulumi.String(f.c.KeyRing), Location: pulumi.String(f.c.Region)})
	if err != nil {
		return err
	}
	f.key, err = kms.NewCryptoKey(f.ctx, "cohort-state", &kms.CryptoKeyArgs{
		KeyRing: ring.ID(), Name: pulumi.String("cohort-state"), RotationPeriod: pulumi.String("7776000s"), // 90 days
	}, pulumi.Protect(true)) // destroying it makes the state's secrets unreadable
	if err != nil {
		return err
	}
	_, err = kms.NewCryptoKeyIAMMember(f.ctx, "control-state-key", &kms.CryptoKeyIAMMemberArgs{
		CryptoKeyId: f.key.ID(), Role: pulumi.String("roles/cloudkms.cryptoKeyEncrypterDecrypter"), Member: f.member(f.control),
	})
	return err
}

// addSecret keeps the OAuth client secret in Secret Manager, readable by
// the control plane only: never on its disk or in its metadata.
func (f *foundation) addSecret() error {
	var err error
	f.secret, err = secretmanager.NewSecret(f.ctx, SecretName, &secretmanager.SecretArgs{
		Project: f.project, SecretId: pulumi.String(SecretName),
		Replication: &secretmanager.SecretReplicationArgs{Auto: &secretmanager.SecretReplicationAutoArgs{}},
	})
	if err != nil {
		return err
	}
	_, err = secretmanager.NewSecretVersion(f.ctx, SecretName, &secretmanager.SecretVersionArgs{
		Secret: f.secret.ID(), SecretData: pulumi.ToSecret(f.c.OAuthClientSecret).(pulumi.StringOutput),
	})
	if err != nil {
		return err
	}
	_, err = secretmanager.NewSecretIamMember(f.ctx, "control-oidc-secret", &secretmanager.SecretIamMemberArgs{
		Project: f.project, SecretId: f.secret.SecretId, Role: pulumi.String("roles/secretmanager.secretAccessor"), Member: f.member(f.control),
	})
	return err
}

func (f *foundation) outputs() {
	f.ctx.Export("appURL", pulumi.String("https://"+f.c.Domain))
	f.ctx.Export("address", f.address.Address)
	f.ctx.Export("controlZone", pulumi.String(f.c.Zone))
	records := pulumi.StringArray{
		pulumi.Sprintf("%s. A %s", f.c.Domain, f.address.Address),
		pulumi.Sprintf("*.%s. A %s", f.c.NotebookDomain, f.address.Address),
	}
	for _, a := range f.auths {
		rec := a.DnsResourceRecords.Index(pulumi.Int(0))
		records = append(records, pulumi.Sprintf("%s %s %s", rec.Name().Elem(), rec.Type().Elem(), rec.Data().Elem()))
	}
	f.ctx.Export("dnsRecords", records)
	f.ctx.Export("subnetwork", f.subnet.SelfLink)
	f.ctx.Export("sessionAccount", f.session.Email)
	f.ctx.Export("schedulerAccount", f.sched.Email)
	f.ctx.Export("stateBucket", f.bucket.Name)
	f.ctx.Export("controlPlaneEnv", f.Env())
}
