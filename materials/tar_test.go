package materials_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cohortdev/cohort/materials"
	"github.com/cohortdev/cohort/materials/materialstest"
)

// TestWorkThroughTar: a session VM's agent sends its work as Tar; cohort
// makes the zip with ZipFromTar: the same files Zip would take.
func TestWorkThroughTar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{"train.ipynb": "nb", "configs/config.cfg": "cfg", ".cohort/materials.json": "{}"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "passwd"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	if n, err := materials.Tar(context.Background(), tw, root, nil); err != nil || n != 2 {
		t.Fatalf("Tar = %d, %v", n, err)
	}
	tw.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	if n, err := materials.ZipFromTar(context.Background(), zw, &stream, "ada@example.org/", nil); err != nil || n != 2 {
		t.Fatalf("ZipFromTar = %d, %v", n, err)
	}
	zw.Close()
	want := map[string]string{"ada@example.org/train.ipynb": "nb", "ada@example.org/configs/config.cfg": "cfg"}
	if got := materialstest.Unzip(t, out.Bytes()); !maps.Equal(got, want) {
		t.Fatalf("zip holds %v, want %v", got, want)
	}
}

// TestZipFromTarRefusesWhatTheVMShapes: the tar comes from a VM its
// participant controls: a name outside the folder (which would land in
// another participant's part of a collection), a link, a folder, or
// cohort's own files end it with an error naming the entry.
func TestZipFromTarRefusesWhatTheVMShapes(t *testing.T) {
	t.Parallel()
	for _, h := range []tar.Header{
		{Name: "../bob@example.org/train.ipynb", Typeflag: tar.TypeReg, Size: 1},
		{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1},
		{Name: "a/../../b", Typeflag: tar.TypeReg, Size: 1},
		{Name: "./x", Typeflag: tar.TypeReg, Size: 1},
		{Name: `a\b`, Typeflag: tar.TypeReg, Size: 1},
		{Name: ".cohort/materials.json", Typeflag: tar.TypeReg, Size: 1},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "folder/", Typeflag: tar.TypeDir},
	} {
		var stream bytes.Buffer
		tw := tar.NewWriter(&stream)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
		tw.Close()
		_, err := materials.ZipFromTar(context.Background(), zip.NewWriter(&bytes.Buffer{}), &stream, "ada/", nil)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(h.Name)) {
			t.Errorf("%q: %v", h.Name, err)
		}
	}
	// A stream cut short is an error, not a short zip.
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 100})
	tw.Write([]byte("only this"))
	if _, err := materials.ZipFromTar(context.Background(), zip.NewWriter(&bytes.Buffer{}), bytes.NewReader(stream.Bytes()), "", nil); err == nil {
		t.Error("a cut stream was taken")
	}
}
