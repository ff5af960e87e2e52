package main

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cohortdev/cohort"
)

func newClassMaterialsCmd(cf *clientFlags) *cobra.Command {
	var repo, ref, archive string
	var token tokenFlags
	var remove bool
	cmd := &cobra.Command{
		Use:   "materials CLASS [--repo URL [--ref REF] [--token-file FILE] | --archive FILE | --remove]",
		Short: "Show or set the files every participant of a class starts from",
		Long: `Show or set a class's materials: a git repository (https://) at a branch, tag
or commit, or an archive (zip, tar or tar.gz) you upload. Each participant's
session merges the newest version into their work: new files arrive, files
they have not changed are updated, and a file they changed is kept, with the
class's new version written beside it (train.class-1a2b3c4.ipynb). With a
branch, each session gets its newest commit. A private repository takes a
read-only access token (--token-file), which the server keeps sealed and
sends to that repository only. See docs/materials.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var v *cohort.MaterialsView
			switch {
			case countSet(repo != "", archive != "", remove) > 1:
				return cohort.Invalid("materials", "give one of --repo, --archive and --remove")
			case repo != "":
				in, ierr := token.input(cmd.InOrStdin(), repo, ref)
				if ierr != nil {
					return ierr
				}
				v, err = c.SetMaterialsRepo(ctx, args[0], in)
			case token.set():
				return cohort.Invalid("token", "--token-file, --token-user and --public go with --repo")
			case archive != "":
				body, name, ferr := openArchive(archive)
				if ferr != nil {
					return ferr
				}
				defer body.Close()
				v, err = c.UploadMaterials(ctx, args[0], name, body)
			case remove:
				v, err = c.RemoveMaterials(ctx, args[0])
			default:
				v, err = c.Materials(ctx, args[0])
			}
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(cmd.OutOrStdout(), v)
			}
			printMaterials(cmd.OutOrStdout(), v)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&repo, "repo", "", "a git repository's https:// URL")
	f.StringVar(&ref, "ref", "", "with --repo: a branch, tag or full commit (default: the default branch)")
	token.add(f, "")
	f.StringVar(&archive, "archive", "", "a zip, tar or tar.gz file to upload, or a folder (packed as tar.gz; .git left out)")
	f.BoolVar(&remove, "remove", false, "leave the class without materials (participants keep what they have)")
	return cmd
}

// tokenFlags give a private repository's token: from a file or standard
// input, never an argument (which any user of the laptop can list, and
// the shell's history keeps).
type tokenFlags struct {
	file, user string
	public     bool
}

func (t *tokenFlags) add(f *pflag.FlagSet, prefix string) {
	f.StringVar(&t.file, prefix+"token-file", "", "with --"+prefix+"repo: a file holding a private repository's read-only access token (- reads standard input)")
	f.StringVar(&t.user, prefix+"token-user", "", "with --"+prefix+"token-file: the user name sent with the token (default "+cohort.DefaultTokenUser+"; a GitLab deploy token names its own)")
	if prefix == "" {
		f.BoolVar(&t.public, "public", false, "with --repo: drop the class's token (by default a new ref of the same repository keeps it)")
	}
}

func (t *tokenFlags) set() bool { return t.file != "" || t.user != "" || t.public }

// input is the repository to set, with the token read.
func (t *tokenFlags) input(stdin io.Reader, repo, ref string) (cohort.RepoInput, error) {
	in := cohort.RepoInput{Repo: repo, Ref: ref, TokenUser: t.user}
	switch {
	case t.public && t.file != "":
		return in, cohort.Invalid("token", "give --token-file or --public, not both")
	case t.public:
		in.Token = new(string)
	case t.file != "":
		var b []byte
		var err error
		if t.file == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 8<<10))
		} else {
			b, err = os.ReadFile(t.file)
		}
		if err != nil {
			return in, cohort.Invalid("token", "--token-file: %v", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return in, cohort.Invalid("token", "--token-file %s is empty", t.file)
		}
		in.Token = &token
	case t.user != "":
		return in, cohort.Invalid("token", "--token-user goes with --token-file")
	}
	return in, nil
}

// openArchive opens an archive to upload, or packs a folder into one
// (tar.gz, without .git). A symlink in the folder fails the
// upload, naming it: archives hold only files and directories.
func openArchive(path string) (io.ReadCloser, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", cohort.Invalid("archive", "--archive: %v", err)
	}
	if !fi.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", cohort.Invalid("archive", "--archive: %v", err)
		}
		return f, filepath.Base(path), nil
	}
	// Packed first, into a temporary file: a folder that cannot be packed
	// says so before anything is sent.
	tmp, err := os.CreateTemp("", "cohort-materials-*.tar.gz")
	if err != nil {
		return nil, "", err
	}
	packed := &removeOnClose{tmp}
	if err := packDir(tmp, path); err != nil {
		packed.Close()
		return nil, "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		packed.Close()
		return nil, "", err
	}
	return packed, filepath.Base(filepath.Clean(path)) + ".tar.gz", nil
}

// removeOnClose is a temporary file that goes when closed.
type removeOnClose struct{ *os.File }

func (f *removeOnClose) Close() error {
	err := f.File.Close()
	os.Remove(f.Name())
	return err
}

func packDir(w io.Writer, dir string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return cohort.Invalid("archive", "%s is not a file: archives hold only files and directories", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname = filepath.ToSlash(rel), "", ""
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return err
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

func printMaterials(w io.Writer, v *cohort.MaterialsView) {
	m := v.Materials
	switch {
	case m == nil:
		fmt.Fprintln(w, "materials: none (sessions start with an empty folder)")
	case m.Repo != "":
		ref := m.Ref
		if ref == "" {
			ref = "the default branch"
		}
		fmt.Fprintf(w, "materials: %s at %s, commit %s (%d files, %s)\n", m.Repo, ref, m.Short(), m.Files, bytesLabel(m.Bytes))
		fmt.Fprintf(w, "each session gets %s's newest commit\n", ref)
		if m.Private {
			fmt.Fprintln(w, "private: fetched with the class's token, which the server keeps sealed")
		}
		if m.Problem != "" {
			fmt.Fprintf(w, "the last session's lookup failed: %s\nsessions get commit %s until a lookup succeeds\n", m.Problem, m.Short())
		}
	default:
		fmt.Fprintf(w, "materials: archive %s, %s (%d files, %s)\n", m.Archive, m.Short(), m.Files, bytesLabel(m.Bytes))
	}
	fmt.Fprintf(w, "participants' work is kept %s after the class ends", v.KeepWork)
	if v.WorkExpires != nil {
		fmt.Fprintf(w, " (until %s)", v.WorkExpires.Local().Format("2006-01-02 15:04"))
	}
	fmt.Fprintln(w)
}

func bytesLabel(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func newClassCollectCmd(cf *clientFlags) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "collect CLASS PATH...",
		Short: "Download every participant's copy of some files as one zip (EMAIL/PATH)",
		Long: `Download every participant's copy of the named files as one zip, a folder per
participant (EMAIL/PATH), whether their sessions run or not. A PATH may be a
pattern: '*.ipynb', 'notebooks/*'. Collections are in the class's audit log.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			dest := cmp.Or(out, "collected-"+args[0]+".zip")
			return saveZip(cmd, dest, force, func(ctx context.Context, w io.Writer) (int64, error) {
				return c.Collect(ctx, args[0], args[1:], w)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the zip file to write (default collected-CLASS.zip)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the file if it exists")
	return cmd
}

func newSessionPullCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull SESSION",
		Short: "Bring the class's newest materials into a running session (your changes are kept)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			summary, err := c.PullMaterials(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary)
			return nil
		},
	}
}

func newSessionDownloadCmd(cf *clientFlags) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "download CLASS",
		Short: "Download your work of a class as a zip, whether a session runs or not",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			dest := cmp.Or(out, "work-"+args[0]+".zip")
			return saveZip(cmd, dest, force, func(ctx context.Context, w io.Writer) (int64, error) {
				return c.DownloadWork(ctx, args[0], w)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the zip file to write (default work-CLASS.zip)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the file if it exists")
	return cmd
}

// saveZip writes a download to dest whole: to a file beside it first,
// renamed into place once complete, so that a cut download leaves no
// half a zip under dest's name.
func saveZip(cmd *cobra.Command, dest string, force bool, fetch func(context.Context, io.Writer) (int64, error)) error {
	if _, err := os.Stat(dest); err == nil && !force {
		return fmt.Errorf("%s exists: choose another with -o, or pass --force", dest)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	start := time.Now()
	n, err := fetch(cmd.Context(), tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s) in %s\n", dest, bytesLabel(n), time.Since(start).Round(time.Millisecond))
	return nil
}
