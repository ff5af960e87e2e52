package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortdev/cohort/client"
)

func newLoginCmd() *cobra.Command {
	var cf clientFlags
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign the CLI in through your browser and store an API token for it",
		Long: "Prints a link and a code; approve the code in a browser where you are signed in to cohort\n" +
			"(on this machine or any other). The token is stored in ~/.config/cohort/credentials.json.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c := client.New(cf.url, "")
			host, _ := os.Hostname()
			name := "cohort login on " + host
			d, err := c.StartLogin(ctx, name)
			if err != nil {
				return err
			}
			out := cmd.ErrOrStderr()
			fmt.Fprintf(out, "To sign in, open\n\n    %s\n\nin a browser where you are signed in to cohort, and type the code\n\n    %s\n\n", d.VerificationURI, d.UserCode)
			if !noBrowser {
				openBrowser(d.VerificationURI)
			}
			ctx, cancel := context.WithTimeout(ctx, time.Duration(d.ExpiresIn)*time.Second)
			defer cancel()
			token, id, err := c.FinishLogin(ctx, d, name)
			if err != nil {
				return err
			}
			me, err := client.New(cf.url, token).Me(ctx)
			if err != nil {
				return err
			}
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			creds.Servers[serverKey(cf.url)] = credential{Token: token, TokenID: id, Email: me.Email}
			if err := creds.save(); err != nil {
				return fmt.Errorf("store the token: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed in to %s as %s (%s)\n", cf.url, me.Email, me.Role)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the link (for a machine without a browser)")
	return cmd
}

// openBrowser tries to open url in a desktop browser; the printed link is
// the fallback, so failures are ignored.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}

func newLogoutCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the CLI's stored token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			cred, ok := creds.Servers[serverKey(cf.url)]
			if !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "not signed in to %s\n", cf.url)
				return nil
			}
			if err := client.New(cf.url, cred.Token).RevokeToken(cmd.Context(), cred.TokenID); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "could not revoke the token on the server (%s); forgetting it anyway\n", userMessage(err))
			}
			delete(creds.Servers, serverKey(cf.url))
			if err := creds.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed out of %s\n", cf.url)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
