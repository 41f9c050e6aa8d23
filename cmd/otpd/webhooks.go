package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpd/otpd/otpd"
	"github.com/urfave/cli/v2"
)

// The store the commands other than serve work on: the data directory's
// SQLite, or PostgreSQL when --database names it (as serve's settings do).
var (
	dataFlag     = &cli.StringFlag{Name: "data", Value: "./otpd-data", Usage: "data directory", EnvVars: []string{"OTPD_DATA"}}
	databaseFlag = &cli.StringFlag{Name: "database", Usage: "PostgreSQL URL of a shared store (default SQLite in --data)", EnvVars: []string{"OTPD_DATABASE"}}
)

func openStore(c *cli.Context) (*otpd.Store, error) {
	return otpd.OpenStore(c.String("data"), c.String("database"))
}

// webhooksCmd shows the delivery reports otpd posts to StatusCallbacks and
// webhooks, and what failed.
func webhooksCmd() *cli.Command {
	return &cli.Command{
		Name:  "webhooks",
		Usage: "list delivery reports whose posts to callbacks failed (webhooks and Twilio StatusCallbacks)",
		Flags: []cli.Flag{dataFlag, databaseFlag,
			&cli.BoolFlag{Name: "all", Usage: "every queued report, delivered ones too"},
			&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most this many, newest first"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object a line"},
		},
		Action: func(c *cli.Context) error {
			st, err := openStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			vs, err := otpd.ListCallbackViews(c.Context, st, c.Bool("all"), c.Int("limit"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				for _, v := range vs {
					enc.Encode(v)
				}
				return nil
			}
			if len(vs) == 0 {
				fmt.Fprintln(os.Stderr, "no failed delivery reports")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tMESSAGE\tKIND\tSTATUS\tSTATE\tATTEMPTS\tNEXT\tURL\tLAST ERROR")
			for _, v := range vs {
				next := "-"
				if v.State == "pending" {
					next = v.NextAttemptAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.ID, v.MessageID, v.Kind, v.Status, v.State, v.Attempts, next, v.URL, v.LastError)
			}
			return tw.Flush()
		},
		Subcommands: []*cli.Command{{
			Name:  "retry",
			Usage: "post the reports that failed for good once more, now",
			Flags: []cli.Flag{dataFlag, databaseFlag},
			Action: func(c *cli.Context) error {
				st, err := openStore(c)
				if err != nil {
					return err
				}
				defer st.Close()
				n, err := st.RetryCallbacks(c.Context, time.Now())
				if err != nil {
					return err
				}
				fmt.Printf("%d reports due again\n", n)
				return nil
			},
		}, {
			Name:  "secret",
			Usage: "print the secret that signs an API key's webhooks (Otpd-Signature: t=...,v1=HMAC-SHA256 of t.body)",
			Flags: []cli.Flag{dataFlag, databaseFlag,
				&cli.StringFlag{Name: "key-id", Usage: "the API key's id (key_...); empty for requests made without a key"},
				&cli.StringFlag{Name: "hmac-key-file", Usage: "the master secret file (default <data>/secret.key)", EnvVars: []string{"OTPD_HMAC_KEY_FILE"}},
			},
			Action: func(c *cli.Context) error {
				file := c.String("hmac-key-file")
				if file == "" {
					file = filepath.Join(c.String("data"), "secret.key")
				}
				if _, err := os.Stat(file); err != nil {
					return fmt.Errorf("no master secret at %s: start otpd serve once, or name it with --hmac-key-file", file)
				}
				sec, err := otpd.LoadSecrets(file)
				if err != nil {
					return err
				}
				fmt.Println(sec.WebhookSecret(c.String("key-id")))
				return nil
			},
		}},
	}
}

// keysSettingsCmd sets a key's front-door options.
func keysSettingsCmd() *cli.Command {
	return &cli.Command{
		Name:  "settings",
		Usage: "show or set an API key's front-door options (webhook URL, /gateway/http parameter names and answers)",
		Flags: []cli.Flag{dataFlag, databaseFlag,
			&cli.StringFlag{Name: "key-id", Required: true, Usage: "the API key's id (key_...)"},
			&cli.StringFlag{Name: "callback-url", Usage: "receives the delivery reports of the key's messages that name no callback_url (\"-\" clears it)"},
			&cli.StringFlag{Name: "phone-param", Usage: "comma-separated names /gateway/http reads the number from (default to,phone,number; \"-\" restores it)"},
			&cli.StringFlag{Name: "text-param", Usage: "comma-separated names /gateway/http reads the text from (default text,message,body; \"-\" restores it)"},
			&cli.StringFlag{Name: "success", Usage: "/gateway/http's answer on success, {id} the message id (default \"ID: {id}\"; \"-\" restores it)"},
			&cli.StringFlag{Name: "failure", Usage: "/gateway/http's answer on failure, {code} and {reason} (default \"ERR: {code}, {reason}\"; \"-\" restores it)"},
		},
		Action: func(c *cli.Context) error {
			st, err := openStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			id := c.String("key-id")
			ks, err := otpd.GetKeySettings(c.Context, st, id)
			if err != nil {
				return err
			}
			str := func(name string, dst *string) {
				if c.IsSet(name) {
					if *dst = c.String(name); *dst == "-" {
						*dst = ""
					}
				}
			}
			list := func(name string, dst *[]string) {
				if !c.IsSet(name) {
					return
				}
				*dst = nil
				for _, f := range strings.Split(c.String(name), ",") {
					if f = strings.TrimSpace(f); f != "" && f != "-" {
						*dst = append(*dst, f)
					}
				}
			}
			str("callback-url", &ks.CallbackURL)
			str("success", &ks.Success)
			str("failure", &ks.Failure)
			list("phone-param", &ks.PhoneParams)
			list("text-param", &ks.TextParams)
			if c.IsSet("callback-url") || c.IsSet("phone-param") || c.IsSet("text-param") || c.IsSet("success") || c.IsSet("failure") {
				if err := otpd.SetKeySettings(c.Context, st, id, ks); err != nil {
					return err
				}
			}
			b, _ := json.Marshal(ks)
			fmt.Println(string(b))
			return nil
		},
	}
}
