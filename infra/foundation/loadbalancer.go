package foundation

import (
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/certificatemanager"
	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// addAddress reserves the load balancer's address: the control plane
// trusts the forwarded client address only from it and Google's front ends.
func (f *foundation) addAddress() error {
	var err error
	f.address, err = compute.NewGlobalAddress(f.ctx, "cohort", &compute.GlobalAddressArgs{Project: f.project, Name: pulumi.String("cohort")})
	return err
}

// hosts are the certificate's names: the app's host, and every
// notebook's, in this order (the certificate's list is ForceNew and
// compared in order: a different order would replace it).
func (f *foundation) hosts() []struct{ name, domain, host string } {
	return []struct{ name, domain, host string }{
		{"cohort-app", f.c.Domain, f.c.Domain},
		{"cohort-notebooks", f.c.NotebookDomain, "*." + f.c.NotebookDomain},
	}
}

// addLoadBalancer: one global address for the app and every notebook host,
// a Google-managed certificate for both (DNS-authorized, so the wildcard
// is allowed), HTTPS to the control plane with a day's timeout for
// notebooks' WebSockets, and HTTP redirected to HTTPS.
func (f *foundation) addLoadBalancer() error {
	var authIDs pulumi.StringArray
	for _, h := range f.hosts() {
		a, err := certificatemanager.NewDnsAuthorization(f.ctx, h.name, &certificatemanager.DnsAuthorizationArgs{
			Project: f.project, Name: pulumi.String(h.name), Domain: pulumi.String(h.domain),
		})
		if err != nil {
			return err
		}
		f.auths = append(f.auths, a)
		authIDs = append(authIDs, a.ID())
	}
	cert, err := certificatemanager.NewCertificate(f.ctx, "cohort", &certificatemanager.CertificateArgs{
		Project: f.project, Name: pulumi.String("cohort"),
		Managed: &certificatemanager.CertificateManagedArgs{
			Domains:           pulumi.StringArray{pulumi.String(f.hosts()[0].host), pulumi.String(f.hosts()[1].host)},
			DnsAuthorizations: authIDs,
		},
	})
	if err != nil {
		return err
	}
	certMap, err := certificatemanager.NewCertificateMapResource(f.ctx, "cohort", &certificatemanager.CertificateMapResourceArgs{Project: f.project, Name: pulumi.String("cohort")})
	if err != nil {
		return err
	}
	for _, h := range f.hosts() {
		_, err := certificatemanager.NewCertificateMapEntry(f.ctx, h.name, &certificatemanager.CertificateMapEntryArgs{
			Project: f.project, Name: pulumi.String(h.name), Map: certMap.Name, Hostname: pulumi.String(h.host),
			Certificates: pulumi.StringArray{cert.ID()},
		})
		if err != nil {
			return err
		}
	}
	group, err := compute.NewInstanceGroup(f.ctx, "cohort-control", &compute.InstanceGroupArgs{
		Project: f.project, Zone: pulumi.String(f.c.Zone), Name: pulumi.String("cohort-control"),
		Instances:  pulumi.StringArray{f.vm.SelfLink},
		NamedPorts: compute.InstanceGroupNamedPortTypeArray{&compute.InstanceGroupNamedPortTypeArgs{Name: pulumi.String("http"), Port: pulumi.Int(ControlPort)}},
	})
	if err != nil {
		return err
	}
	health, err := compute.NewHealthCheck(f.ctx, "cohort", &compute.HealthCheckArgs{
		Project: f.project, Name: pulumi.String("cohort"),
		HttpHealthCheck: &compute.HealthCheckHttpHealthCheckArgs{Port: pulumi.Int(ControlPort), RequestPath: pulumi.String("/readyz")},
	})
	if err != nil {
		return err
	}
	backend, err := compute.NewBackendService(f.ctx, "cohort", &compute.BackendServiceArgs{
		Project: f.project, Name: pulumi.String("cohort"), Protocol: pulumi.String("HTTP"), PortName: pulumi.String("http"),
		LoadBalancingScheme: pulumi.String("EXTERNAL_MANAGED"), HealthChecks: health.ID(),
		// The load balancer ends a WebSocket (a notebook's kernel) after
		// this long; the browser reconnects.
		TimeoutSec: pulumi.Int(86400),
		Backends:   compute.BackendServiceBackendArray{&compute.BackendServiceBackendArgs{Group: group.SelfLink}},
		LogConfig:  &compute.BackendServiceLogConfigArgs{Enable: pulumi.Bool(true), SampleRate: pulumi.Float64(1)},
	})
	if err != nil {
		return err
	}
	urlMap, err := compute.NewURLMap(f.ctx, "cohort", &compute.URLMapArgs{Project: f.project, Name: pulumi.String("cohort"), DefaultService: backend.ID()})
	if err != nil {
		return err
	}
	https, err := compute.NewTargetHttpsProxy(f.ctx, "cohort", &compute.TargetHttpsProxyArgs{
		Project: f.project, Name: pulumi.String("cohort"), UrlMap: urlMap.ID(),
		CertificateMap: pulumi.Sprintf("//certificatemanager.googleapis.com/%s", certMap.ID()),
	})
	if err != nil {
		return err
	}
	redirect, err := compute.NewURLMap(f.ctx, "cohort-redirect", &compute.URLMapArgs{Project: f.project, Name: pulumi.String("cohort-redirect"),
		DefaultUrlRedirect: &compute.URLMapDefaultUrlRedirectArgs{HttpsRedirect: pulumi.Bool(true), StripQuery: pulumi.Bool(false)}})
	if err != nil {
		return err
	}
	http, err := compute.NewTargetHttpProxy(f.ctx, "cohort-redirect", &compute.TargetHttpProxyArgs{Project: f.project, Name: pulumi.String("cohort-redirect"), UrlMap: redirect.ID()})
	if err != nil {
		return err
	}
	for name, rule := range map[string]struct {
		port   string
		target pulumi.StringInput
	}{"cohort-https": {"443", https.ID()}, "cohort-http": {"80", http.ID()}} {
		_, err := compute.NewGlobalForwardingRule(f.ctx, name, &compute.GlobalForwardingRuleArgs{
			Project: f.project, Name: pulumi.String(name), IpAddress: f.address.Address, PortRange: pulumi.String(rule.port),
			LoadBalancingScheme: pulumi.String("EXTERNAL_MANAGED"), Target: rule.target,
		})
		if err != nil {
			return err
		}
	}
	return nil
}
