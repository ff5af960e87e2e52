// Package images_test checks the image template without Packer's cloud
// plugin (which `packer init` downloads): it is read with the HCL parser
// Packer uses, and what cohort relies on is checked.
package images_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cohortdev/cohort"
	"github.com/cohortdev/cohort/provisioner/gce/gcptest"
)

func parse(t *testing.T) *hclsyntax.Body {
	t.Helper()
	src, err := os.ReadFile("cohort-notebook.pkr.hcl")
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, "cohort-notebook.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return f.Body.(*hclsyntax.Body)
}

// one returns the body of the only block of a type and labels.
func one(t *testing.T, b *hclsyntax.Body, typ string, labels ...string) *hclsyntax.Body {
	t.Helper()
	var found []*hclsyntax.Body
	for _, bl := range b.Blocks {
		if bl.Type == typ && slices.Equal(bl.Labels, labels) {
			found = append(found, bl.Body)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s %v blocks, want 1", len(found), typ, labels)
	}
	return found[0]
}

// value evaluates an attribute that needs no variables.
func value(t *testing.T, b *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		t.Fatalf("no attribute %s", name)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags)
	}
	return v
}

// refs lists the variables an attribute's expression refers to, as
// "var.x" or "local.y".
func refs(b *hclsyntax.Body, name string) []string {
	var out []string
	for _, tr := range b.Attributes[name].Expr.Variables() {
		out = append(out, tr.RootName()+"."+tr.SimpleSplit().Rel[0].(hcl.TraverseAttr).Name)
	}
	return out
}

func TestTemplateDeclaresItsPlugin(t *testing.T) {
	t.Parallel()
	body := one(t, parse(t), "packer")
	plugins := value(t, one(t, body, "required_plugins"), "googlecompute")
	if src := plugins.GetAttr("source").AsString(); src != "github.com/hashicorp/googlecompute" {
		t.Errorf("plugin source %q", src)
	}
	if v := plugins.GetAttr("version").AsString(); !strings.HasPrefix(v, ">=") {
		t.Errorf("plugin version %q, want a lower bound", v)
	}
}

// TestImagesAreNamedAfterTheirFamily: the gcp provider keeps a running
// VM's image only if the image's name contains the family's name.
func TestImagesAreNamedAfterTheirFamily(t *testing.T) {
	t.Parallel()
	src := one(t, parse(t), "source", "googlecompute", "notebook")
	tmpl, ok := src.Attributes["image_name"].Expr.(*hclsyntax.TemplateExpr)
	if !ok || len(tmpl.Parts) == 0 {
		t.Fatal("image_name is not a template")
	}
	first, ok := tmpl.Parts[0].(*hclsyntax.ScopeTraversalExpr)
	if !ok || first.Traversal.RootName() != "var" || first.Traversal[1].(hcl.TraverseAttr).Name != "image_family" {
		t.Fatalf("image_name does not begin with var.image_family")
	}
	if got := refs(src, "image_family"); len(got) != 1 || got[0] != "var.image_family" {
		t.Fatalf("image_family = %v", got)
	}
}

// TestTemplateFitsTheDefaults: the image's disk is what the fake of GCE
// holds, and fits the default class's disk.
func TestTemplateFitsTheDefaults(t *testing.T) {
	t.Parallel()
	f := parse(t)
	size, _ := value(t, one(t, f, "variable", "disk_size"), "default").AsBigFloat().Int64()
	if int(size) != gcptest.DefaultImage.SizeGB {
		t.Errorf("the template builds %d GB images; the fake holds %d GB ones", size, gcptest.DefaultImage.SizeGB)
	}
	if d := cohort.DefaultClass().Runtime.DiskGB; int(size) > d {
		t.Errorf("the image (%d GB) is larger than the default class's disk (%d GB)", size, d)
	}
	if fam := value(t, one(t, f, "variable", "image_family"), "default").AsString(); fam != cohort.DefaultClass().Runtime.Image {
		t.Errorf("the template's family %q is not the default class's %q", fam, cohort.DefaultClass().Runtime.Image)
	}
}

// TestProvisionersFilesExist: every file the build copies or runs is in
// the repository (the agent is built by `make agent`).
func TestProvisionersFilesExist(t *testing.T) {
	t.Parallel()
	build := one(t, parse(t), "build")
	n := 0
	for _, p := range build.Blocks {
		for _, attr := range []string{"source", "scripts"} {
			a, ok := p.Body.Attributes[attr]
			if !ok {
				continue
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				continue // var.agent: the built agent
			}
			var paths []string
			if v.Type() == cty.String {
				paths = []string{v.AsString()}
			} else {
				for _, e := range v.AsValueSlice() {
					paths = append(paths, e.AsString())
				}
			}
			for _, path := range paths {
				n++
				if _, err := os.Stat(filepath.FromSlash(path)); err != nil {
					t.Errorf("provisioner %s: %v", p.Labels[0], err)
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("found %d files in the build; the test reads the template wrong", n)
	}
}
