package foundation_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/cohortdev/cohort/infra"
	"github.com/cohortdev/cohort/infra/foundation"
)

// cloud records what the program declares, and computes the few outputs
// Google would (accounts' emails, self links, the address).
type cloud struct {
	mu        sync.Mutex
	resources map[string]resource.PropertyMap // by "type name"
	options   map[string]pulumi.MockResourceArgs
}

func (c *cloud) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := args.TypeToken + " " + args.Name
	c.resources[key], c.options[key] = args.Inputs, args
	out := args.Inputs.Copy()
	id := args.Name + "-id"
	switch args.TypeToken {
	case "gcp:serviceaccount/account:Account":
		email := fmt.Sprintf("%s@%s.iam.gserviceaccount.com", args.Inputs["accountId"].StringValue(), args.Inputs["project"].StringValue())
		out["email"] = resource.NewStringProperty(email)
		out["name"] = resource.NewStringProperty("projects/p/serviceAccounts/" + email)
	case "gcp:compute/globalAddress:GlobalAddress":
		out["address"] = resource.NewStringProperty("203.0.113.7")
	case "gcp:certificatemanager/dnsAuthorization:DnsAuthorization":
		out["dnsResourceRecords"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{
			"name": resource.NewStringProperty("_acme-challenge." + args.Inputs["domain"].StringValue() + "."),
			"type": resource.NewStringProperty("CNAME"), "data": resource.NewStringProperty("x.authorize.certificatemanager.goog."),
		})})
	case "gcp:kms/cryptoKey:CryptoKey":
		id = "projects/p/locations/us-central1/keyRings/cohort/cryptoKeys/cohort-state"
	}
	out["selfLink"] = resource.NewStringProperty("https://www.googleapis.com/compute/v1/" + args.Name)
	return id, out, nil
}

func (c *cloud) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

func config() foundation.Config {
	return foundation.Config{Project: "workshop-123", Region: "us-central1", Domain: "cohort.example.org", NotebookDomain: "example-notebooks.org",
		OAuthClientID: "123-abc.apps.googleusercontent.com", OAuthClientSecret: pulumi.String("GOCSPX-secret"), Admins: []string{"ada@example.org"}, KMS: true}
}

func run(t *testing.T, c foundation.Config) *cloud {
	t.Helper()
	cl := &cloud{resources: map[string]resource.PropertyMap{}, options: map[string]pulumi.MockResourceArgs{}}
	if err := pulumi.RunErr(foundation.Program(c), pulumi.WithMocks("cohort", "prod", cl)); err != nil {
		t.Fatal(err)
	}
	return cl
}

// of returns the resources of a type, by name.
func (c *cloud) of(typ string) map[string]resource.PropertyMap {
	out := map[string]resource.PropertyMap{}
	for key, r := range c.resources {
		if name, ok := strings.CutPrefix(key, typ+" "); ok {
			out[name] = r
		}
	}
	return out
}

func get(m resource.PropertyMap, path ...string) resource.PropertyValue {
	v := resource.NewObjectProperty(m)
	for _, p := range path {
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsObject() {
			return resource.NewNullProperty()
		}
		v = v.ObjectValue()[resource.PropertyKey(p)]
	}
	return v
}

func strs(v resource.PropertyValue) []string {
	var out []string
	if v.IsArray() {
		for _, e := range v.ArrayValue() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

func TestNetworkIsPrivateWithEgress(t *testing.T) {
	t.Parallel()
	c := run(t, config())
	if n := c.of("gcp:compute/network:Network")["cohort"]; !get(n, "autoCreateSubnetworks").IsBool() || get(n, "autoCreateSubnetworks").BoolValue() {
		t.Errorf("network %v: want a custom-mode VPC", n)
	}
	sub := c.of("gcp:compute/subnetwork:Subnetwork")["cohort-sessions"]
	if !get(sub, "privateIpGoogleAccess").BoolValue() || get(sub, "region").StringValue() != "us-central1" {
		t.Errorf("subnetwork %v: want Private Google Access in the region", sub)
	}
	nat := c.of("gcp:compute/routerNat:RouterNat")["cohort-nat"]
	if nat == nil || get(nat, "natIpAllocateOption").StringValue() != "AUTO_ONLY" {
		t.Fatalf("Cloud NAT %v", nat)
	}
	vm := c.of("gcp:compute/instance:Instance")["cohort-control"]
	for _, nic := range get(vm, "networkInterfaces").ArrayValue() {
		if ac := nic.ObjectValue()["accessConfigs"]; ac.IsArray() && len(ac.ArrayValue()) > 0 {
			t.Errorf("the control plane has a public address: %v", ac)
		}
	}
}

func TestFirewallAdmitsOnlyTheControlPlane(t *testing.T) {
	t.Parallel()
	c := run(t, config())
	rules := c.of("gcp:compute/firewall:Firewall")
	session, control := "cohort-session@workshop-123.iam.gserviceaccount.com", "cohort-control@workshop-123.iam.gserviceaccount.com"
	allow := rules["cohort-allow-notebooks"]
	if got := strs(get(allow, "sourceServiceAccounts")); len(got) != 1 || got[0] != control {
		t.Errorf("notebooks admitted from %v, want only the control plane", got)
	}
	if got := strs(get(allow, "targetServiceAccounts")); len(got) != 1 || got[0] != session {
		t.Errorf("notebook rule targets %v", got)
	}
	if ports := strs(get(allow, "allows").ArrayValue()[0].ObjectValue()["ports"]); len(ports) != 2 || ports[0] != "8888" || ports[1] != "8889" {
		t.Errorf("notebook ports %v", ports)
	}
	deny := rules["cohort-deny-session-to-session"]
	if get(deny, "priority").NumberValue() >= 1000 || strs(get(deny, "sourceServiceAccounts"))[0] != session || strs(get(deny, "targetServiceAccounts"))[0] != session {
		t.Errorf("session-to-session rule %v: want a deny between session VMs above the allows", deny)
	}
	for name, r := range rules {
		if src := strs(get(r, "sourceRanges")); len(src) > 0 && name != "cohort-allow-load-balancer" && name != "cohort-allow-iap-ssh" {
			t.Errorf("%s admits address ranges %v", name, src)
		}
		if len(strs(get(r, "targetServiceAccounts"))) == 0 && len(strs(get(r, "targetTags"))) == 0 {
			t.Errorf("%s targets every VM of the network", name)
		}
	}
	// Egress is denied only to VMs of classes without internet.
	egress := rules["cohort-deny-egress"]
	if get(egress, "direction").StringValue() != "EGRESS" || strs(get(egress, "targetTags"))[0] != infra.NoEgressTag ||
		strs(get(egress, "destinationRanges"))[0] != "0.0.0.0/0" {
		t.Errorf("egress rule %v", egress)
	}
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	c := run(t, config())
	roles := map[string][]string{}
	for _, m := range c.of("gcp:projects/iAMMember:IAMMember") {
		member := get(m, "member").StringValue()
		roles[member] = append(roles[member], get(m, "role").StringValue())
		if role := get(m, "role").StringValue(); role == "roles/iam.serviceAccountUser" || role == "roles/owner" || role == "roles/editor" {
			t.Errorf("project-wide %s for %s", role, member)
		}
	}
	session := roles["serviceAccount:cohort-session@workshop-123.iam.gserviceaccount.com"]
	if len(session) != 2 || !strings.Contains(strings.Join(session, " "), "roles/logging.logWriter") || !strings.Contains(strings.Join(session, " "), "roles/monitoring.metricWriter") {
		t.Errorf("session VMs' roles %v, want logs and metrics only", session)
	}
	if got := roles["serviceAccount:cohort-scheduler@workshop-123.iam.gserviceaccount.com"]; len(got) != 0 {
		t.Errorf("the scheduler's account has roles %v, want none", got)
	}
	actsAs := c.of("gcp:serviceaccount/iAMMember:IAMMember")
	if len(actsAs) != 2 {
		t.Fatalf("%d Service Account User grants, want one on each of the session and scheduler accounts", len(actsAs))
	}
	for name, m := range actsAs {
		if get(m, "member").StringValue() != "serviceAccount:cohort-control@workshop-123.iam.gserviceaccount.com" || get(m, "role").StringValue() != "roles/iam.serviceAccountUser" {
			t.Errorf("%s: %v", name, m)
		}
	}
	bucket := c.of("gcp:storage/bucket:Bucket")["cohort-state"]
	if get(bucket, "publicAccessPrevention").StringValue() != "enforced" || !get(bucket, "uniformBucketLevelAccess").BoolValue() {
		t.Errorf("state bucket %v", bucket)
	}
	if m := c.of("gcp:storage/bucketIAMMember:BucketIAMMember")["control-state"]; get(m, "role").StringValue() != "roles/storage.objectAdmin" {
		t.Errorf("state bucket grant %v", m)
	}
}

func TestSecretsStaySecret(t *testing.T) {
	t.Parallel()
	c := run(t, config())
	v := c.of("gcp:secretmanager/secretVersion:SecretVersion")[foundation.SecretName]
	if data := v["secretData"]; !data.ContainsSecrets() {
		t.Errorf("the OAuth client secret is not a Pulumi secret: %v", data)
	}
	script := get(c.of("gcp:compute/instance:Instance")["cohort-control"], "metadata", "startup-script").StringValue()
	if strings.Contains(script, "GOCSPX-secret") {
		t.Error("the OAuth client secret is in the control plane's metadata")
	}
	for _, want := range []string{"gcloud secrets versions access latest --secret=" + foundation.SecretName,
		"COHORT_GCE_SUBNETWORK=https://www.googleapis.com/compute/v1/cohort-sessions",
		"COHORT_GCE_SESSION_ACCOUNT=cohort-session@workshop-123.iam.gserviceaccount.com",
		"COHORT_SCHEDULER_SERVICE_ACCOUNT=cohort-scheduler@workshop-123.iam.gserviceaccount.com",
		"COHORT_PULUMI_STATE=gs://workshop-123-cohort-state",
		"COHORT_PULUMI_SECRETS_PROVIDER=gcpkms://projects/p/locations/us-central1/keyRings/cohort/cryptoKeys/cohort-state",
		"COHORT_NOTEBOOK_DOMAIN=example-notebooks.org", "COHORT_PUBLIC_URL=https://cohort.example.org",
		"COHORT_TRUSTED_PROXIES=35.191.0.0/16,130.211.0.0/22,203.0.113.7/32"} {
		if !strings.Contains(script, want) {
			t.Errorf("the control plane's startup script lacks %q", want)
		}
	}
	if key := c.options["gcp:kms/cryptoKey:CryptoKey cohort-state"]; key.RegisterRPC == nil || !key.RegisterRPC.GetProtect() {
		t.Error("the state key is not protected: destroying it loses every secret in the state")
	}
}

func TestHTTPSForAppAndNotebooks(t *testing.T) {
	t.Parallel()
	c := run(t, config())
	cert := c.of("gcp:certificatemanager/certificate:Certificate")["cohort"]
	if got := strs(get(cert, "managed", "domains")); len(got) != 2 || got[0] != "cohort.example.org" || got[1] != "*.example-notebooks.org" {
		t.Errorf("certificate domains %v", got)
	}
	if n := len(c.of("gcp:certificatemanager/dnsAuthorization:DnsAuthorization")); n != 2 {
		t.Errorf("%d DNS authorizations, want one per domain (a wildcard needs one)", n)
	}
	be := c.of("gcp:compute/backendService:BackendService")["cohort"]
	if get(be, "timeoutSec").NumberValue() < 3600 {
		t.Errorf("backend timeout %v: a notebook's WebSocket would be cut", get(be, "timeoutSec"))
	}
	rules := c.of("gcp:compute/globalForwardingRule:GlobalForwardingRule")
	if len(rules) != 2 || get(rules["cohort-https"], "portRange").StringValue() != "443" || get(rules["cohort-http"], "portRange").StringValue() != "80" {
		t.Errorf("forwarding rules %v", rules)
	}
	if !get(c.of("gcp:compute/uRLMap:URLMap")["cohort-redirect"], "defaultUrlRedirect", "httpsRedirect").BoolValue() {
		t.Error("plain HTTP is not redirected to HTTPS")
	}
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*foundation.Config){
		"no project":                 func(c *foundation.Config) { c.Project = "" },
		"domain not a host":          func(c *foundation.Config) { c.Domain = "https://cohort.example.org" },
		"notebooks on the app":       func(c *foundation.Config) { c.NotebookDomain = c.Domain },
		"notebooks above the app":    func(c *foundation.Config) { c.Domain, c.NotebookDomain = "cohort.example.org", "example.org" },
		"no OAuth client secret":     func(c *foundation.Config) { c.OAuthClientSecret = nil },
		"notebook domain not a host": func(c *foundation.Config) { c.NotebookDomain = "*.nb.example.org" },
	} {
		c := config()
		edit(&c)
		cl := &cloud{resources: map[string]resource.PropertyMap{}, options: map[string]pulumi.MockResourceArgs{}}
		if err := pulumi.RunErr(foundation.Program(c), pulumi.WithMocks("cohort", "prod", cl)); err == nil {
			t.Errorf("%s: the program ran", name)
		}
		if len(cl.resources) != 0 {
			t.Errorf("%s: %d resources declared", name, len(cl.resources))
		}
	}
}

func secretString(s string) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.String(s)).(pulumi.StringOutput)
}
