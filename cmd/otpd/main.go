// Command otpd is the OTP daemon and its operator commands.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/otpd/otpd/otpd"
	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
	"github.com/otpd/otpd/smpp/dlr"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	app := &cli.App{
		Name:  "otpd",
		Usage: "SMS one-time passwords over SMPP 3.4",
		Commands: []*cli.Command{
			serveCmd(), sendCmd(), tailCmd(), keysCmd(), migrateCmd(), benchCmd(), configCmd(), webhooksCmd(),
		},
		Flags: globalFlags(),
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "otpd:", err)
		os.Exit(1)
	}
}

// globalFlags may come before any command.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"OTPD_LOG_LEVEL"}},
		&cli.BoolFlag{Name: "log-json", Usage: "logs as JSON lines", EnvVars: []string{"OTPD_LOG_JSON"}},
	}
}

func newLogger(c *cli.Context) (*zap.Logger, error) {
	var lvl zapcore.Level
	level, asJSON := "info", false
	// --log-level and --log-json may come before or after the command.
	for _, cc := range c.Lineage() {
		if cc.IsSet("log-level") {
			level = cc.String("log-level")
			break
		}
	}
	for _, cc := range c.Lineage() {
		if cc.IsSet("log-json") {
			asJSON = cc.Bool("log-json")
			break
		}
	}
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := loggerConfig(lvl, asJSON)
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}

// loggerConfig is the zap configuration of the daemon's logs. Every line
// is written: zap's production preset samples (after 100 lines with the
// same message in a second, it keeps one in 100), which under load would
// drop most "otp created" and "message submitted" lines, the ones an
// operator looks for when a user says no code came. --log-level warn is
// the way to fewer lines.
func loggerConfig(lvl zapcore.Level, asJSON bool) zap.Config {
	cfg := zap.NewProductionConfig()
	if !asJSON {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Sampling = nil
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg
}

func serveCmd() *cli.Command {
	flags := serveSpec.Flags()
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon (without --smsc: on the embedded simulator)",
		Description: "Every flag is also an OTPD_* environment variable and a key of the YAML file (in brackets);\n" +
			"a flag wins over its variable, the variable over the file. docs/configuration.md lists them all.\n" +
			"Without --smsc, otpd runs on its embedded default: SQLite in --data and an in-process SMSC simulator.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			defer log.Sync()
			d, err := otpd.Start(cfg, log)
			if err != nil {
				return err
			}
			scheme := "http"
			if cfg.HTTP.TLSCert != "" {
				scheme = "https"
			}
			store := "SQLite in " + cfg.DataDir
			if cfg.Database != "" {
				store = "PostgreSQL at " + d.StoreWhere()
			}
			if sim := d.Simulator(); sim != nil {
				fmt.Printf("otpd: listening on "+scheme+"://%s (embedded default: %s, in-process SMSC simulator on %s, its API on http://%s; no API key needed)\n",
					d.Addr(), store, sim.Addr(), sim.HTTPAddr())
				fmt.Printf("otpd: to use a real SMSC: otpd serve --smsc HOST:PORT --system-id ID --password PW --source-addr S_ADDR (see otpd serve --help)\n")
			} else {
				fmt.Printf("otpd: listening on "+scheme+"://%s, SMSC %s as %q (%s x%d), store: %s\n", d.Addr(), cfg.SMSC.Addr, cfg.SMSC.SystemID, cfg.SMSC.BindMode, cfg.SMSC.Binds, store)
			}
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			var serveErr error
			select {
			case <-sigs:
				log.Info("shutting down (a second Ctrl-C forces exit)")
			case serveErr = <-d.Served():
			}
			go forceExitOnSecondSignal(sigs)
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := d.Shutdown(sctx); err != nil {
				log.Warn("shutdown", zap.Error(err))
			}
			return serveErr
		},
	}
}

// forceExitOnSecondSignal ends the process at the next signal, for an
// operator who will not wait for a graceful shutdown.
func forceExitOnSecondSignal(sigs <-chan os.Signal) {
	<-sigs
	fmt.Fprintln(os.Stderr, "otpd: forced exit")
	os.Exit(130)
}

func migrateCmd() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade the store's schema (serve does too, at start)",
		Flags: []cli.Flag{dataFlag, databaseFlag,
			&cli.BoolFlag{Name: "status", Usage: "say the store's schema version and what this build would apply, changing nothing"}},
		Action: func(c *cli.Context) error {
			if c.Bool("status") {
				st, err := otpd.ReadSchemaStatus(c.String("data"), c.String("database"))
				if err != nil {
					return err
				}
				fmt.Println(st)
				return nil
			}
			st, err := openStore(c)
			if err != nil {
				return err
			}
			defer st.Close()
			v, _ := st.SchemaVersions()
			fmt.Printf("%s store at %s is at schema version %d\n", st.Dialect(), st.Where(), v)
			return nil
		},
	}
}

func keysCmd() *cli.Command {
	open := openStore
	return &cli.Command{
		Name:  "keys",
		Usage: "manage API keys (create, list, revoke, rotate)",
		Subcommands: []*cli.Command{{
			Name:  "create",
			Usage: "create an API key and print it on one line (it is shown only once; only its hash is stored)",
			Flags: []cli.Flag{
				dataFlag, databaseFlag,
				&cli.StringFlag{Name: "name", Usage: "a name to recognise the key by"},
				&cli.StringFlag{Name: "networks", Usage: "comma-separated CIDRs the key may be used from (default anywhere)"},
				&cli.StringFlag{Name: "smpp-system-id", Usage: "also give the key this system_id for otpd's SMPP door (--smpp-listen)"},
				&cli.StringFlag{Name: "smpp-password", Usage: "the SMPP password, at most 8 characters (default: one is drawn and printed on stderr)"},
				&cli.Float64Flag{Name: "smpp-tps", Usage: "submits a second the SMPP application may make; more are answered ESME_RTHROTTLED (default no limit)"},
				&cli.StringFlag{Name: "scopes", Value: "otp,messages,events", Usage: "what the key may do: otp, messages, events, admin (every key's data)"},
				&cli.StringFlag{Name: "senders", Usage: "comma-separated sender addresses (\"from\") the key may use besides the configured source address"},
			},
			Action: func(c *cli.Context) error {
				scopes, err := otpd.ParseScopes(c.String("scopes"))
				if err != nil {
					return fmt.Errorf("--scopes: %w", err)
				}
				st, err := open(c)
				if err != nil {
					return err
				}
				defer st.Close()
				if pw := c.String("smpp-password"); c.IsSet("smpp-password") && (pw == "" || len(pw) > 8) {
					return fmt.Errorf("--smpp-password must be 1 to 8 characters, as SMPP 3.4 allows")
				}
				id, key, err := otpd.CreateKeyWith(c.Context, st, otpd.KeyOptions{Name: c.String("name"), Networks: c.String("networks"),
					Scopes: scopes, Senders: splitComma(c.String("senders"))})
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "created API key %s\n", id)
				if sid := c.String("smpp-system-id"); sid != "" {
					pw := c.String("smpp-password")
					if pw == "" {
						pw = otpd.NewSMPPPassword()
						fmt.Fprintf(os.Stderr, "SMPP password of system_id %s: %s\n", sid, pw)
					}
					if err := otpd.CreateSMPPAccount(c.Context, st, id, sid, pw, c.Float64("smpp-tps")); err != nil {
						return err
					}
				}
				fmt.Println(key)
				return nil
			},
		}, {
			Name:  "list",
			Usage: "list the API keys: id, name, state, created, last used, scopes, senders, networks (never the key)",
			Flags: []cli.Flag{dataFlag, databaseFlag, &cli.BoolFlag{Name: "json", Usage: "one JSON object a line"}},
			Action: func(c *cli.Context) error {
				st, err := open(c)
				if err != nil {
					return err
				}
				defer st.Close()
				keys, err := otpd.ListKeys(c.Context, st)
				if err != nil {
					return err
				}
				now := time.Now()
				tf := func(t time.Time) string {
					if t.IsZero() {
						return "-"
					}
					return t.UTC().Format(time.RFC3339)
				}
				if !c.Bool("json") {
					fmt.Printf("%-30s %-16s %-8s %-20s %-20s %-20s %-22s %-16s %s\n", "ID", "NAME", "STATE", "CREATED", "LAST USED", "ENDS", "SCOPES", "SENDERS", "NETWORKS")
				}
				for _, k := range keys {
					var nets []string
					for _, n := range k.Networks {
						nets = append(nets, n.String())
					}
					ends := k.ExpiresAt
					if !k.RevokedAt.IsZero() {
						ends = k.RevokedAt
					}
					if c.Bool("json") {
						b, _ := json.Marshal(map[string]any{"id": k.ID, "name": k.Name, "state": k.State(now), "created_at": k.CreatedAt, "last_used_at": k.LastUsedAt,
							"ends_at": ends, "scopes": k.Scopes, "senders": k.Senders, "networks": nets})
						fmt.Println(string(b))
						continue
					}
					fmt.Printf("%-30s %-16s %-8s %-20s %-20s %-20s %-22s %-16s %s\n", k.ID, orDash(k.Name), k.State(now), tf(k.CreatedAt), tf(k.LastUsedAt), tf(ends),
						strings.Join(k.Scopes, ","), orDash(strings.Join(k.Senders, ",")), orDash(strings.Join(nets, ",")))
				}
				return nil
			},
		}, {
			Name:      "revoke",
			Usage:     "revoke an API key at once (running otpd instances refuse it within seconds)",
			ArgsUsage: "ID",
			Flags:     []cli.Flag{dataFlag, databaseFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: otpd keys revoke ID (ids as otpd keys list shows them)")
				}
				st, err := open(c)
				if err != nil {
					return err
				}
				defer st.Close()
				if err := otpd.RevokeKey(c.Context, st, c.Args().First()); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "revoked API key %s\n", c.Args().First())
				return nil
			},
		}, {
			Name:      "rotate",
			Usage:     "make a new key like ID (scopes, senders, networks) and print it; ID keeps working for --overlap",
			ArgsUsage: "ID",
			Flags:     []cli.Flag{dataFlag, databaseFlag, &cli.DurationFlag{Name: "overlap", Value: 24 * time.Hour, Usage: "how long the old key keeps working"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: otpd keys rotate [--overlap 24h] ID (flags come before the ID)")
				}
				st, err := open(c)
				if err != nil {
					return err
				}
				defer st.Close()
				id, key, err := otpd.RotateKey(c.Context, st, c.Args().First(), c.Duration("overlap"))
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "created API key %s; %s works until %s\n", id, c.Args().First(), time.Now().Add(c.Duration("overlap")).UTC().Format(time.RFC3339))
				fmt.Println(key)
				return nil
			},
		}, keysSettingsCmd()},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func sendCmd() *cli.Command {
	return &cli.Command{
		Name:  "send",
		Usage: "send one SMS over a fresh bind and wait for its receipt (tests an SMSC link)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "smsc", Required: true, Usage: "SMSC host:port", EnvVars: []string{"OTPD_SMSC"}},
			&cli.StringFlag{Name: "system-id", Required: true, EnvVars: []string{"OTPD_SYSTEM_ID"}},
			&cli.StringFlag{Name: "password", EnvVars: []string{"OTPD_PASSWORD"}},
			&cli.StringFlag{Name: "system-type", EnvVars: []string{"OTPD_SYSTEM_TYPE"}},
			&cli.StringFlag{Name: "from", Value: "OTPD", Usage: "source address (S_ADDR)"},
			&cli.IntFlag{Name: "source-ton", Value: -1, Usage: "-1: derive from --from"},
			&cli.IntFlag{Name: "source-npi", Value: -1, Usage: "-1: derive from --from"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "destination in international format (+4915112345678)"},
			&cli.StringFlag{Name: "text", Required: true},
			&cli.BoolFlag{Name: "tls", Usage: "SMPP over TLS"},
			&cli.DurationFlag{Name: "wait", Value: 60 * time.Second, Usage: "how long to wait for the receipt (0: do not wait)"},
		},
		Action: func(c *cli.Context) error {
			p, err := otpd.ParsePhone(c.String("to"), "")
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			cfg := smpp.Config{Bind: smpp.BindTransceiver, SystemID: c.String("system-id"), Password: c.String("password"), SystemType: c.String("system-type")}
			receipts := make(chan smpp.Receipt, 16)
			cfg.Handler = smpp.HandlerFunc(func(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
				if d, ok := req.(*smpp.DeliverSM); ok {
					if r, err := smpp.ParseReceipt(d); err == nil {
						select {
						case receipts <- r:
						default:
						}
					}
				}
				return smpp.Reply(req, smpp.ESME_ROK)
			})
			if c.Bool("tls") {
				cfg.TLS = tlsConfig()
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := smpp.Dial(ctx, c.String("smsc"), cfg)
			if err != nil {
				return err
			}
			defer s.Close(context.Background())
			fmt.Printf("bound to %s as %q (SMSC system_id %q)\n", c.String("smsc"), cfg.SystemID, s.SystemID())
			src, ton, npi := otpd.SourceAddr(c.String("from"), c.Int("source-ton"), c.Int("source-npi"))
			tmpl := &smpp.SubmitSM{SourceAddr: src, SourceAddrTON: ton, SourceAddrNPI: npi, DestAddrTON: 1, DestAddrNPI: 1,
				DestinationAddr: strings.TrimPrefix(p.E164, "+"), RegisteredDelivery: 1}
			pdus, err := smpp.SplitSubmit(tmpl, c.String("text"), coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8})
			if err != nil {
				return fmt.Errorf("--text: %w", err)
			}
			ids := map[string]bool{}
			for i, pdu := range pdus {
				resp, err := s.Submit(ctx, pdu)
				if err != nil {
					return fmt.Errorf("submit_sm %d/%d: %w", i+1, len(pdus), err)
				}
				fmt.Printf("submitted %d/%d to %s: message_id %s\n", i+1, len(pdus), otpd.MaskPhone(p.E164), resp.MessageID)
				ids[resp.MessageID] = true
			}
			if c.Duration("wait") == 0 {
				return nil
			}
			timeout := time.After(c.Duration("wait"))
			for len(ids) > 0 {
				select {
				case r := <-receipts:
					for id := range ids {
						if dlr.SameID(id, r.ID) {
							fmt.Printf("receipt for %s: stat %s err %s\n", id, r.Stat, r.Err)
							delete(ids, id)
						}
					}
				case <-timeout:
					return fmt.Errorf("no receipt within %s for %d message(s)", c.Duration("wait"), len(ids))
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		},
	}
}

func tailCmd() *cli.Command {
	return &cli.Command{
		Name:  "tail",
		Usage: "follow delivery reports of a running otpd",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:8080", Usage: "otpd's base URL", EnvVars: []string{"OTPD_URL"}},
			&cli.StringFlag{Name: "key", Usage: "API key", EnvVars: []string{"OTPD_API_KEY"}},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object a line"},
			&cli.StringFlag{Name: "status", Usage: "only these delivery states, comma-separated (delivered,undeliverable,...)"},
			&cli.StringFlag{Name: "phone", Usage: "only this number"},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := context.WithCancel(c.Context)
			defer stop()
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				select {
				case <-sigs:
					stop()
					forceExitOnSecondSignal(sigs)
				case <-ctx.Done():
				}
			}()
			u := tailURL(c.String("url"), c.String("status"), c.String("phone"))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			if k := c.String("key"); k != "" {
				req.Header.Set("Authorization", "Bearer "+k)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error struct{ Message string } `json:"error"`
				}
				json.NewDecoder(resp.Body).Decode(&e)
				return fmt.Errorf("%s: %s", resp.Status, e.Error.Message)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok {
					continue
				}
				if c.Bool("json") {
					fmt.Println(data)
					continue
				}
				var e otpd.Event
				if json.Unmarshal([]byte(data), &e) != nil {
					continue
				}
				fmt.Println(formatEvent(e))
			}
			if ctx.Err() != nil {
				return nil
			}
			if err := sc.Err(); err != nil {
				return err
			}
			return errors.New("otpd closed the event stream")
		},
	}
}

// tailURL is the event stream's URL with its filters, each escaped.
func tailURL(base, states, phone string) string {
	q := url.Values{}
	if states != "" {
		q.Set("state", states)
	}
	if phone != "" {
		q.Set("phone", phone)
	}
	u := strings.TrimRight(base, "/") + "/v1/events"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func formatEvent(e otpd.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-13s %s  %s", e.At.Local().Format("15:04:05.000"), e.State, e.Phone, e.MessageID)
	if e.Segments > 1 {
		fmt.Fprintf(&b, " [%d/%d]", e.Segment, e.Segments)
	}
	if e.SMSCID != "" {
		fmt.Fprintf(&b, "  smsc_id=%s", e.SMSCID)
	}
	if e.Stat != "" {
		fmt.Fprintf(&b, "  stat=%s err=%s", e.Stat, e.Err)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "  (%s)", e.Reason)
	}
	if e.ChallengeID != "" {
		fmt.Fprintf(&b, "  challenge=%s", e.ChallengeID)
	}
	return b.String()
}
