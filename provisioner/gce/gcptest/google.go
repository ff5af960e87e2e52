package gcptest

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// What the real gcp provider (pulumi-gcp v7, bridged from
// terraform-provider-google-beta 5.x) and Compute Engine do with what
// cohort sends, each rule with its source. The fake must refuse what
// Google refuses, in Google's words, or tests built on it hide bugs.

// Image is an image of a family, as Packer leaves it.
type Image struct {
	Name   string
	SizeGB int
}

// DefaultImage is the image every project's "cohort-notebook" family
// holds in the fake: named as images/cohort-notebook.pkr.hcl names them
// ({family}-{timestamp}), with the size the template builds.
var DefaultImage = Image{Name: "cohort-notebook-20261201000000", SizeGB: 60}

// AddImage makes name the newest image of a family in a project.
func (f *Fake) AddImage(project, family string, img Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[project+"/"+family] = img
}

// image resolves an image reference as GCE does at insert: a family
// reference resolves to the family's newest image. f.mu is held.
func (f *Fake) image(ref string) (project, family string, img Image, ok bool) {
	m := familyRef.FindStringSubmatch(ref)
	if m == nil {
		return "", "", Image{}, false
	}
	project, family = m[1], m[2]
	if img, ok = f.images[project+"/"+family]; !ok && family == "cohort-notebook" {
		img, ok = DefaultImage, true
	}
	if !ok {
		img, ok = publicImages[project+"/"+family]
	}
	return project, family, img, ok
}

// publicImages are the public families the fake knows, in any project
// that asks for them (the control plane boots Debian).
var publicImages = map[string]Image{
	"debian-cloud/debian-12":          {Name: "debian-12-bookworm-v20261110", SizeGB: 10},
	"ubuntu-os-cloud/ubuntu-2204-lts": {Name: "ubuntu-2204-jammy-v20261110", SizeGB: 10},
}

var familyRef = regexp.MustCompile(`^(?:https://www\.googleapis\.com/compute/v1/)?projects/([^/]+)/global/images/family/([^/]+)$`)

// imageSelfLink is what the provider stores as the boot disk's image
// after a create or read: the disk's source image, a concrete image, not
// the family (resource_compute_instance.go, flattenBootDisk:
// "image": diskDetails.SourceImage).
func imageSelfLink(project string, img Image) string {
	return "https://www.googleapis.com/compute/v1/projects/" + project + "/global/images/" + img.Name
}

// imageDiffSuppressed is the provider's rule for a boot image that is a
// family reference (tpgresource/self_link_helpers.go and
// services/compute/resource_compute_disk.go, DiskImageDiffSuppress ->
// diskImageFamilyEquals): the provider cannot make a network call in a
// diff, so it keeps the current image only if its name contains the
// family's name. Otherwise the change plans a replace of the VM
// (boot_disk.initialize_params is ForceNew).
func imageDiffSuppressed(old, new string) bool {
	if old == new {
		return true
	}
	m := familyRef.FindStringSubmatch(new)
	if m == nil {
		return false
	}
	name := old[strings.LastIndex(old, "/")+1:]
	return strings.Contains(name, m[2])
}

// forceNew are, by type, the inputs whose change replaces the resource;
// the rest update in place (instances with allow_stopping_for_update
// where the VM must be stopped). Sources, provider v5.42.0 schemas:
// resource_compute_instance.go (name, zone, project, boot_disk,
// network_interface's network and subnetwork, guest_accelerator, and
// scheduling's preemptible, provisioning_model and max_run_duration are
// ForceNew; metadata, labels, tags, machine_type, service_account update),
// resource_cloud_scheduler_job.go (name, region, project),
// resource_certificate_manager_certificate.go (managed, compared as an
// ordered list). Other types: their name, region, zone and project.
var forceNew = map[string]map[string]bool{
	"gcp:compute/instance:Instance": {"name": true, "zone": true, "project": true, "bootDisk": true, "networkInterfaces": true,
		"guestAccelerators": true, "scheduling.preemptible": true, "scheduling.provisioningModel": true, "scheduling.maxRunDuration": true},
	"gcp:cloudscheduler/job:Job":                     {"name": true, "region": true, "project": true},
	"gcp:certificatemanager/certificate:Certificate": {"name": true, "project": true, "managed": true},
}

var defaultForceNew = map[string]bool{"name": true, "region": true, "zone": true, "project": true}

// replaces says which changed inputs of a resource replace it.
func replaces(typ string, old, nw map[string]any) (changed, replaced []string) {
	rules, ok := forceNew[typ]
	if !ok {
		rules = defaultForceNew
	}
	for k, v := range nw {
		if fmt.Sprint(old[k]) == fmt.Sprint(v) {
			continue
		}
		changed = append(changed, k)
		if rules[k] {
			replaced = append(replaced, k)
			continue
		}
		for nk, nv := range mapOf(v) { // a nested ForceNew input
			if rules[k+"."+nk] && fmt.Sprint(mapOf(old[k])[nk]) != fmt.Sprint(nv) {
				replaced = append(replaced, k)
				break
			}
		}
	}
	return changed, replaced
}

// gceName is the name rule of instances and jobs' resource IDs, as the
// Compute API words a violation.
var gceName = regexp.MustCompile(`^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$`)

// labelRule is GCE's rule for label keys and values (cloud.google.com/
// compute/docs/labeling-resources#requirements): at most 63 characters of
// lower case letters, digits, _ and -; keys start with a letter.
var labelKey, labelValue = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`), regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)

// badRequest is a synchronous refusal of instances.insert as the
// provider wraps it (resource_compute_instance.go, resourceComputeInstanceCreate:
// "Error creating instance: %s" around googleapi's "Error 400: …, invalid").
func badRequest(format string, args ...any) error {
	return status.Errorf(codes.Unknown, "Error creating instance: googleapi: Error 400: "+format+", invalid", args...)
}

// operationError is a failed insert operation as the provider reports
// it: only the operation's error messages, each followed by a newline
// (compute_operation.go, ComputeOperationError.Error and
// writeOperationError), wrapped by OperationWait as "Error waiting for
// %s: %s" with the activity "instance to create". No error code
// (ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED) appears in the text.
func operationError(lines ...string) error {
	lines = slices.DeleteFunc(lines, func(l string) bool { return l == "" })
	return status.Error(codes.Unknown, "Error waiting for instance to create: "+strings.Join(lines, "\n")+"\n")
}

// Stockout texts: GCE words a zone out of capacity in several ways
// (cloud.google.com/compute/docs/troubleshooting/troubleshooting-resource-availability).
// The fake rotates through them.
var stockoutTexts = []func(project, zone, machine, gpu string) string{
	func(project, zone, _, _ string) string {
		return fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.", project, zone)
	},
	func(project, zone, _, _ string) string {
		return fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  '(resource type:compute)'.", project, zone)
	},
	func(_, zone, machine, gpu string) string {
		return fmt.Sprintf("A %s VM instance with 1 %s accelerator(s) is currently unavailable in the %s zone. Alternatively, you can try your request again with a different VM hardware configuration or at a later time. For more information, see the troubleshooting documentation.", machine, gpu, zone)
	},
}

// quotaTexts are the two shapes of a GPU quota refusal in an operation:
// per GPU type and region, and the project's global GPU count
// (cloud.google.com/compute/resource-usage#gpu_quota), followed by the
// quota details writeOperationError adds for QUOTA_EXCEEDED.
func regionalQuotaText(gpu, region string, limit int) []string {
	metric := strings.ToUpper(strings.ReplaceAll(gpu, "-", "_")) + "_GPUS"
	metric = strings.Replace(metric, "NVIDIA_TESLA_", "NVIDIA_", 1)
	return []string{
		fmt.Sprintf("Quota '%s' exceeded.  Limit: %d.0 in region %s.", metric, limit, region),
		"\tmetric name = compute.googleapis.com/" + strings.ToLower(metric),
		"\tlimit name = " + strings.ReplaceAll(metric, "_", "-") + "-per-project-region",
		limitLine(limit),
		"\tdimensions = map[region:" + region + "]",
	}
}

func globalQuotaText(limit int) []string {
	return []string{
		fmt.Sprintf("Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: %d.0 globally.", limit),
		"\tmetric name = compute.googleapis.com/gpus_all_regions",
		"\tlimit name = GPUS-ALL-REGIONS-per-project",
		limitLine(limit),
		"\tdimensions = map[global:global]",
	}
}

// limitLine is the quota's limit as writeOperationError writes it: not
// at all when it is 0 (compute_operation.go), as in a new project.
func limitLine(limit int) string {
	if limit == 0 {
		return ""
	}
	return fmt.Sprintf("\tlimit = %d", limit)
}

// transientError is what reaches the engine after the provider's own
// retries of a 503 give up (transport_tpg/error_retry_predicates.go
// retries 500, 502 and 503 until the resource's timeout).
func transientError() error {
	return status.Error(codes.Unavailable, "Error creating instance: googleapi: Error 503: The service is currently unavailable., backendError")
}

// alreadyExists is the Compute API's answer to a second insert of a name.
func alreadyExists(kind, id string) error {
	return status.Errorf(codes.Unknown, "Error creating %s: googleapi: Error 409: The resource '%s' already exists, alreadyExists", kind, id)
}

// checkInstance refuses an instance as the provider or the insert call
// would, before anything is created. f.mu is held.
func (f *Fake) checkInstance(props map[string]any) error {
	name, _ := props["name"].(string)
	zone, _ := props["zone"].(string)
	machine, _ := props["machineType"].(string)
	if !gceName.MatchString(name) {
		return badRequest("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", name)
	}
	// compute_instance_helpers.go, expandNetworkInterfaces: checked
	// before any API call, so it fails every create that sends neither.
	nics, _ := props["networkInterfaces"].([]any)
	if len(nics) == 0 {
		return status.Error(codes.InvalidArgument, `Missing required argument: The argument "network_interface" is required, but no definition was found.`)
	}
	for _, n := range nics {
		nic, _ := n.(map[string]any)
		network, _ := nic["network"].(string)
		subnetwork, _ := nic["subnetwork"].(string)
		if network == "" && subnetwork == "" && nic["networkAttachment"] == nil {
			return status.Error(codes.Unknown, "exactly one of network, subnetwork, or network_attachment must be provided")
		}
		// A subnetwork is regional; an instance can only use one of its
		// own region (cloud.google.com/vpc/docs/subnets).
		if m := subnetRegion.FindStringSubmatch(subnetwork); m != nil && m[1] != regionOf(zone) {
			return badRequest("Invalid value for field 'resource.networkInterfaces[0].subnetwork': '%s'. Subnetwork must be in the same region as the instance.", subnetwork)
		}
	}
	for k, v := range mapOf(props["labels"]) {
		if s, _ := v.(string); !labelKey.MatchString(k) || !labelValue.MatchString(s) {
			return badRequest("Invalid value for field 'resource.labels': ''. Label value '%s' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.", s)
		}
	}
	disk := mapOf(mapOf(props["bootDisk"])["initializeParams"])
	ref, _ := disk["image"].(string)
	_, _, img, ok := f.image(ref)
	if !ok {
		return badRequest("Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '%s'. The referenced image resource cannot be found.", ref)
	}
	if size, _ := disk["size"].(float64); size > 0 && int(size) < img.SizeGB {
		return badRequest("Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb': '%d'. Requested disk size cannot be smaller than the image size (%d GB)", int(size), img.SizeGB)
	}
	// GPUs: attached ones only on N1 (G2 and A2 have theirs built in), and
	// never with live migration (cloud.google.com/compute/docs/gpus/
	// create-vm-with-gpus: "set the host maintenance policy to TERMINATE").
	accs, _ := props["guestAccelerators"].([]any)
	if len(accs) > 0 {
		if !strings.HasPrefix(machine, "n1-") {
			acc := mapOf(accs[0])
			return badRequest("Invalid value for field 'resource.guestAccelerators[0].acceleratorType': '%v'. Accelerator type is not supported for machine type %s", acc["type"], machine)
		}
		if mapOf(props["scheduling"])["onHostMaintenance"] != "TERMINATE" {
			return badRequest("Instances with guest accelerators do not support live migration.")
		}
	}
	return nil
}

var subnetRegion = regexp.MustCompile(`regions/([a-z0-9-]+)/subnetworks/`)

func regionOf(zone string) string { return zone[:max(strings.LastIndex(zone, "-"), 0)] }

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// The installation's resources (infra/foundation) are created as sent,
// with the IDs the provider gives them (each resource's import ID format
// in its docs) and the outputs Google computes that others refer to:
// accounts' emails, self links, the load balancer's address, the DNS
// record a certificate's authorization needs.
var foundationIDs = map[string]string{
	"gcp:compute/network:Network":                                    "projects/{project}/global/networks/{name}",
	"gcp:compute/subnetwork:Subnetwork":                              "projects/{project}/regions/{region}/subnetworks/{name}",
	"gcp:compute/router:Router":                                      "projects/{project}/regions/{region}/routers/{name}",
	"gcp:compute/routerNat:RouterNat":                                "{project}/{region}/cohort-router/{name}",
	"gcp:compute/firewall:Firewall":                                  "projects/{project}/global/firewalls/{name}",
	"gcp:compute/globalAddress:GlobalAddress":                        "projects/{project}/global/addresses/{name}",
	"gcp:compute/instanceGroup:InstanceGroup":                        "projects/{project}/zones/{zone}/instanceGroups/{name}",
	"gcp:compute/healthCheck:HealthCheck":                            "projects/{project}/global/healthChecks/{name}",
	"gcp:compute/backendService:BackendService":                      "projects/{project}/global/backendServices/{name}",
	"gcp:compute/uRLMap:URLMap":                                      "projects/{project}/global/urlMaps/{name}",
	"gcp:compute/targetHttpsProxy:TargetHttpsProxy":                  "projects/{project}/global/targetHttpsProxies/{name}",
	"gcp:compute/targetHttpProxy:TargetHttpProxy":                    "projects/{project}/global/targetHttpProxies/{name}",
	"gcp:compute/globalForwardingRule:GlobalForwardingRule":          "projects/{project}/global/forwardingRules/{name}",
	"gcp:serviceaccount/account:Account":                             "projects/{project}/serviceAccounts/{accountId}@{project}.iam.gserviceaccount.com",
	"gcp:projects/iAMMember:IAMMember":                               "{project}/{role}/{member}",
	"gcp:serviceaccount/iAMMember:IAMMember":                         "{serviceAccountId}/{role}/{member}",
	"gcp:storage/bucket:Bucket":                                      "{name}",
	"gcp:storage/bucketIAMMember:BucketIAMMember":                    "b/{bucket}/{role}/{member}",
	"gcp:kms/keyRing:KeyRing":                                        "projects/{project}/locations/{location}/keyRings/{name}",
	"gcp:kms/cryptoKey:CryptoKey":                                    "{keyRing}/cryptoKeys/{name}",
	"gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember":                  "{cryptoKeyId}/{role}/{member}",
	"gcp:secretmanager/secret:Secret":                                "projects/{project}/secrets/{secretId}",
	"gcp:secretmanager/secretVersion:SecretVersion":                  "{secret}/versions/1",
	"gcp:secretmanager/secretIamMember:SecretIamMember":              "projects/{project}/secrets/{secretId}/{role}/{member}",
	"gcp:certificatemanager/dnsAuthorization:DnsAuthorization":       "projects/{project}/locations/global/dnsAuthorizations/{name}",
	"gcp:certificatemanager/certificate:Certificate":                 "projects/{project}/locations/global/certificates/{name}",
	"gcp:certificatemanager/certificateMap:CertificateMap":           "projects/{project}/locations/global/certificateMaps/{name}",
	"gcp:certificatemanager/certificateMapEntry:CertificateMapEntry": "projects/{project}/locations/global/certificateMaps/{map}/certificateMapEntries/{name}",
}

var placeholder = regexp.MustCompile(`\{([a-zA-Z]+)\}`)

func foundationID(typ string, props map[string]any) (string, bool) {
	format, ok := foundationIDs[typ]
	if !ok {
		return "", false
	}
	return placeholder.ReplaceAllStringFunc(format, func(m string) string {
		return fmt.Sprint(props[m[1:len(m)-1]])
	}), true
}

func computeOutputs(typ, id string, props map[string]any) {
	switch typ {
	case "gcp:serviceaccount/account:Account":
		props["email"] = id[strings.LastIndex(id, "/")+1:]
		props["name"] = id
	case "gcp:compute/globalAddress:GlobalAddress":
		props["address"] = "203.0.113.10"
	case "gcp:certificatemanager/dnsAuthorization:DnsAuthorization":
		props["dnsResourceRecords"] = []any{map[string]any{"name": "_acme-challenge." + fmt.Sprint(props["domain"]) + ".", "type": "CNAME",
			"data": fmt.Sprint(props["name"]) + ".authorize.certificatemanager.goog."}}
	case "gcp:secretmanager/secret:Secret":
		props["name"] = id
	}
	if strings.HasPrefix(typ, "gcp:compute/") {
		props["selfLink"] = "https://www.googleapis.com/compute/v1/" + id
	}
}

// admitInstance fails an insert's operation the way GCE does: a
// transient error, a zone out of stock, or a GPU quota. f.mu is held.
func (f *Fake) admitInstance(props map[string]any) error {
	project, _ := props["project"].(string)
	zone, _ := props["zone"].(string)
	machine, _ := props["machineType"].(string)
	region, gpu := regionOf(zone), gpuTypeOf(props)
	switch {
	case f.failRate > 0 && rand.Float64() < f.failRate:
		return transientError()
	case f.stockout[zone]:
		f.stockouts++
		return operationError(stockoutTexts[f.stockouts%len(stockoutTexts)](project, zone, machine, gpu))
	}
	if n := gpusOf(props); n > 0 {
		if limit, ok := f.regional[gpu+"/"+region]; ok && f.gpus(gpu, region)+n > limit {
			return operationError(regionalQuotaText(gpu, region, limit)...)
		}
		if f.quota >= 0 && f.gpus("", "")+n > f.quota {
			return operationError(globalQuotaText(f.quota)...)
		}
	}
	return nil
}

// gpus counts the GPUs of the instances that exist, of a type in a
// region if gpu is set. f.mu is held.
func (f *Fake) gpus(gpu, region string) int {
	n := 0
	for _, r := range f.inventory {
		if r.Type == "gcp:compute/instance:Instance" && (gpu == "" || gpuTypeOf(r.Inputs) == gpu && regionOf(fmt.Sprint(r.Inputs["zone"])) == region) {
			n += gpusOf(r.Inputs)
		}
	}
	return n
}

func gpusOf(props map[string]any) int {
	n := 0
	accs, _ := props["guestAccelerators"].([]any)
	for _, a := range accs {
		c, _ := mapOf(a)["count"].(float64)
		n += int(c)
	}
	if mt := fmt.Sprint(props["machineType"]); n == 0 && (strings.HasPrefix(mt, "g2-") || strings.HasPrefix(mt, "a2-")) {
		n = 1 // built in
	}
	return n
}

func gpuTypeOf(props map[string]any) string {
	if accs, _ := props["guestAccelerators"].([]any); len(accs) > 0 {
		t, _ := mapOf(accs[0])["type"].(string)
		return t
	}
	switch mt := fmt.Sprint(props["machineType"]); {
	case strings.HasPrefix(mt, "g2-"):
		return "nvidia-l4"
	case strings.HasPrefix(mt, "a2-"):
		return "nvidia-tesla-a100"
	}
	return ""
}
