package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort/client"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	url, token string
	json       bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	p := cmd.PersistentFlags()
	p.StringVar(&f.url, "url", envOr("COHORT_URL", "http://127.0.0.1:8080"), "cohort server URL (env COHORT_URL)")
	p.StringVar(&f.token, "token", "", "API token (env COHORT_TOKEN)")
	p.BoolVar(&f.json, "json", false, "print JSON for scripts instead of tables")
}

// client returns an API client with the first token found: --token,
// COHORT_TOKEN, or the one `cohort login` stored for the server.
func (f *clientFlags) client() (*client.Client, error) {
	tok := f.token
	if tok == "" {
		tok = envOr("COHORT_TOKEN", "")
	}
	if tok == "" {
		creds, err := loadCredentials()
		if err != nil {
			return nil, err
		}
		tok = creds.Servers[serverKey(f.url)].Token
	}
	if tok == "" {
		return nil, fmt.Errorf("not signed in to %s: run `cohort login`, or pass --token or set COHORT_TOKEN", f.url)
	}
	return client.New(f.url, tok), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints rows under a header, aligned.
func table(w io.Writer, header string, rows [][]any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
