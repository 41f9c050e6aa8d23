// Command otpd is the OTP daemon and its operator commands.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
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
	"gopkg.in/yaml.v3"
)

func main() {
	app := &cli.App{
		Name:  "otpd",
		Usage: "SMS one-time passwords over SMPP 3.4",
		Commands: []*cli.Command{
			serveCmd(), sendCmd(), tailCmd(), keysCmd(), migrateCmd(), benchCmd(),
		},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"OTPD_LOG_LEVEL"}},
			&cli.BoolFlag{Name: "log-json", Usage: "logs as JSON lines", EnvVars: []string{"OTPD_LOG_JSON"}},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "otpd:", err)
		os.Exit(1)
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

// binding maps one flag onto a Config field.
type binding struct {
	flag  cli.Flag
	apply func(c *cli.Context, cfg *otpd.Config) error
}

func str(name, usage string, set func(*otpd.Config, string)) binding {
	return binding{
		flag:  &cli.StringFlag{Name: name, Usage: u(usage), DefaultText: d(usage), EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error { set(cfg, c.String(name)); return nil },
	}
}

func integer(name, usage string, set func(*otpd.Config, int)) binding {
	return binding{
		flag:  &cli.IntFlag{Name: name, Usage: u(usage), DefaultText: d(usage), EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error { set(cfg, c.Int(name)); return nil },
	}
}

func float(name, usage string, set func(*otpd.Config, float64)) binding {
	return binding{
		flag:  &cli.Float64Flag{Name: name, Usage: u(usage), DefaultText: d(usage), EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error { set(cfg, c.Float64(name)); return nil },
	}
}

func duration(name, usage string, set func(*otpd.Config, time.Duration)) binding {
	return binding{
		flag:  &cli.DurationFlag{Name: name, Usage: u(usage), DefaultText: d(usage), EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error { set(cfg, c.Duration(name)); return nil },
	}
}

func boolean(name, usage string, set func(*otpd.Config, bool)) binding {
	return binding{
		flag:  &cli.BoolFlag{Name: name, Usage: usage, EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error { set(cfg, c.Bool(name)); return nil },
	}
}

func rate(name, usage string, set func(*otpd.Config, otpd.Rate)) binding {
	return binding{
		flag: &cli.StringFlag{Name: name, Usage: u(usage), DefaultText: d(usage), EnvVars: []string{envName(name)}},
		apply: func(c *cli.Context, cfg *otpd.Config) error {
			r, err := otpd.ParseRate(c.String(name))
			if err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			set(cfg, r)
			return nil
		},
	}
}

var defaultRE = regexp.MustCompile(`\s*\(default ([^)]*)\)`)

// splitDefault moves "(default X)" out of a usage text, for the flag's
// DefaultText: the flags have no Value of their own, so that only what the
// user set overrides the YAML file and the built-in defaults.
func splitDefault(usage string) (string, string) {
	m := defaultRE.FindStringSubmatchIndex(usage)
	if m == nil {
		return usage, ""
	}
	return usage[:m[0]] + usage[m[1]:], usage[m[2]:m[3]]
}

func u(usage string) string { us, _ := splitDefault(usage); return us }

func d(usage string) string {
	_, def := splitDefault(usage)
	return def
}

func envName(flag string) string {
	return "OTPD_" + strings.ToUpper(strings.NewReplacer("-", "_", "+", "_").Replace(flag))
}

// serveBindings are the flags of otpd serve, each also OTPD_<NAME> and a
// key of the YAML file.
var serveBindings = []binding{
	str("http", "HTTP listen address (default 127.0.0.1:8080) [http.addr]", func(c *otpd.Config, v string) { c.HTTP.Addr = v }),
	str("http-tls-cert", "serve HTTPS with this certificate (PEM) [http.tls_cert]", func(c *otpd.Config, v string) { c.HTTP.TLSCert = v }),
	str("http-tls-key", "key of --http-tls-cert (PEM) [http.tls_key]", func(c *otpd.Config, v string) { c.HTTP.TLSKey = v }),
	boolean("no-auth", "serve the API without API keys [http.no_auth]", func(c *otpd.Config, v bool) { c.HTTP.NoAuth = v }),
	str("data", "data directory: SQLite store and secret key (default ./otpd-data) [data_dir]", func(c *otpd.Config, v string) { c.DataDir = v }),
	str("smsc", "SMSC host:port; without it otpd runs on the embedded simulator [smsc.addr]", func(c *otpd.Config, v string) { c.SMSC.Addr = v }),
	str("system-id", "SMPP system_id [smsc.system_id]", func(c *otpd.Config, v string) { c.SMSC.SystemID = v }),
	str("password", "SMPP password [smsc.password]", func(c *otpd.Config, v string) { c.SMSC.Password = v }),
	str("system-type", "SMPP system_type [smsc.system_type]", func(c *otpd.Config, v string) { c.SMSC.SystemType = v }),
	str("bind-mode", "trx (transceivers) or tx+rx (transmitter and receiver pairs) [smsc.bind_mode] (default trx)", func(c *otpd.Config, v string) { c.SMSC.BindMode = v }),
	integer("binds", "number of binds (or pairs) [smsc.binds] (default 1)", func(c *otpd.Config, v int) { c.SMSC.Binds = v }),
	integer("window", "outstanding requests per bind [smsc.window] (default 10)", func(c *otpd.Config, v int) { c.SMSC.Window = v }),
	float("tps", "submits per second over all binds [smsc.tps] (default 0: no limit)", func(c *otpd.Config, v float64) { c.SMSC.TPS = v }),
	float("bind-tps", "submits per second per bind [smsc.bind_tps] (default 0: no limit)", func(c *otpd.Config, v float64) { c.SMSC.BindTPS = v }),
	duration("enquire-link", "enquire_link interval (default 30s) [smsc.enquire_link]", func(c *otpd.Config, v time.Duration) { c.SMSC.EnquireLink = v }),
	duration("response-timeout", "wait for each SMPP response (default 10s) [smsc.response_timeout]", func(c *otpd.Config, v time.Duration) { c.SMSC.ResponseTimeout = v }),
	duration("reconnect-min", "first reconnect backoff (default 500ms) [smsc.reconnect_min]", func(c *otpd.Config, v time.Duration) { c.SMSC.ReconnectMin = v }),
	duration("reconnect-max", "largest reconnect backoff (default 30s) [smsc.reconnect_max]", func(c *otpd.Config, v time.Duration) { c.SMSC.ReconnectMax = v }),
	duration("throttle-pause", "pause of a bind after ESME_RTHROTTLED (default 1s) [smsc.throttle_pause]", func(c *otpd.Config, v time.Duration) { c.SMSC.ThrottlePause = v }),
	str("source-addr", "S_ADDR: sender address (default OTPD) [smsc.source_addr]", func(c *otpd.Config, v string) { c.SMSC.SourceAddr = v }),
	integer("source-ton", "TON of S_ADDR [smsc.source_ton] (default -1: derive, alphanumeric 5, international 1, short code 3)", func(c *otpd.Config, v int) { c.SMSC.SourceTON = v }),
	integer("source-npi", "NPI of S_ADDR [smsc.source_npi] (default -1: derive)", func(c *otpd.Config, v int) { c.SMSC.SourceNPI = v }),
	integer("dest-ton", "TON of destination numbers (default 1) [smsc.dest_ton]", func(c *otpd.Config, v int) { c.SMSC.DestTON = v }),
	integer("dest-npi", "NPI of destination numbers (default 1) [smsc.dest_npi]", func(c *otpd.Config, v int) { c.SMSC.DestNPI = v }),
	integer("registered-delivery", "registered_delivery of submits (default 1: receipts) [smsc.registered_delivery]", func(c *otpd.Config, v int) { c.SMSC.RegisteredDelivery = v }),
	str("data-coding", "auto (GSM 03.38 when possible, else UCS-2), gsm, ucs2 or latin1 [smsc.data_coding] (default auto)", func(c *otpd.Config, v string) { c.SMSC.DataCoding = v }),
	str("concat", "long messages: udh, udh16, sar or payload [smsc.concat] (default udh)", func(c *otpd.Config, v string) { c.SMSC.Concat = v }),
	str("message-id-format", "base of the SMSC's message ids in receipts: auto, dec or hex [smsc.message_id_format] (default auto; dec with the embedded simulator)", func(c *otpd.Config, v string) { c.SMSC.MessageIDFormat = v }),
	boolean("smsc-tls", "SMPP over TLS [smsc.tls]", func(c *otpd.Config, v bool) { c.SMSC.TLS = v }),
	boolean("smsc-tls-skip-verify", "do not verify the SMSC's certificate [smsc.tls_skip_verify]", func(c *otpd.Config, v bool) { c.SMSC.TLSSkipVerify = v }),
	str("smsc-tls-ca", "CA certificates (PEM) to verify the SMSC with [smsc.tls_ca]", func(c *otpd.Config, v string) { c.SMSC.TLSCA = v }),
	integer("otp-length", "digits of a code (default 6) [otp.length]", func(c *otpd.Config, v int) { c.OTP.Length = v }),
	integer("otp-min-length", "floor of a requested length (default 6) [otp.min_length]", func(c *otpd.Config, v int) { c.OTP.MinLength = v }),
	duration("otp-ttl", "life of a code (default 5m, at most 10m) [otp.ttl]", func(c *otpd.Config, v time.Duration) { c.OTP.TTL = v }),
	integer("max-attempts", "verification attempts per challenge (default 5) [otp.max_attempts]", func(c *otpd.Config, v int) { c.OTP.MaxAttempts = v }),
	duration("resend-after", "cooldown between codes of a challenge (default 30s) [otp.resend_after]", func(c *otpd.Config, v time.Duration) { c.OTP.ResendAfter = v }),
	integer("max-sends", "codes per challenge (default 3) [otp.max_sends]", func(c *otpd.Config, v int) { c.OTP.MaxSends = v }),
	str("default-region", "region of numbers given without + or 00, e.g. DE (default: require + or 00) [otp.default_region]", func(c *otpd.Config, v string) { c.OTP.DefaultRegion = v }),
	rate("limit-phone", "sends per phone number, N/duration (default 5/10m) [limits.per_phone]", func(c *otpd.Config, v otpd.Rate) { c.Limits.PerPhone = v }),
	rate("limit-key", "sends per API key (default 600/1m) [limits.per_key]", func(c *otpd.Config, v otpd.Rate) { c.Limits.PerKey = v }),
	rate("limit-country", "sends per country calling code (default 1000/1m) [limits.per_country]", func(c *otpd.Config, v otpd.Rate) { c.Limits.PerCountry = v }),
	rate("limit-global", "sends in all (default 100000/1m) [limits.global]", func(c *otpd.Config, v otpd.Rate) { c.Limits.Global = v }),
	str("allow-countries", "comma-separated regions SMS may go to, e.g. DE,AT,CH (default all) [limits.allow_countries]", func(c *otpd.Config, v string) {
		c.Limits.AllowCountries = nil
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				c.Limits.AllowCountries = append(c.Limits.AllowCountries, r)
			}
		}
	}),
	str("uncertain", "a submit whose response never came: resubmit (default) or fail [sender.uncertain]", func(c *otpd.Config, v string) { c.Sender.Uncertain = v }),
	integer("workers", "messages submitted at once (default 2 x window x binds) [sender.workers]", func(c *otpd.Config, v int) { c.Sender.Workers = v }),
	duration("retention", "how long challenges, messages and receipts are kept [retention] (default 720h)", func(c *otpd.Config, v time.Duration) { c.Retention = v }),
	str("sim-http", "embedded simulator's HTTP API (default 127.0.0.1:8025) [simulator.http]", func(c *otpd.Config, v string) { c.Sim.HTTPAddr = v }),
	str("sim-smpp", "embedded simulator's SMPP address (default a free loopback port) [simulator.smpp]", func(c *otpd.Config, v string) { c.Sim.SMPPAddr = v }),
	str("sim-dlr-delay", "embedded simulator's receipt delay (default 200ms) [simulator.dlr_delay]", func(c *otpd.Config, v string) { c.Sim.DLRDelay = v }),
	// Production safety (issue 13).
	boolean("dev", "allow the embedded default off loopback or on a data directory that served a real SMSC [dev]", func(c *otpd.Config, v bool) { c.Dev = v }),
	boolean("no-auth-public", "confirm --no-auth on an address that is not loopback [http.no_auth_public]", func(c *otpd.Config, v bool) { c.HTTP.NoAuthPublic = v }),
	duration("http-read-timeout", "time to read a request, headers and body; slower bodies get 408 (default 30s) [http.read_timeout]", func(c *otpd.Config, v time.Duration) { c.HTTP.ReadTimeout = v }),
	rate("limit-prefix", "sends per range of numbers (all but the last --prefix-digits digits) (default 20/1h) [limits.per_prefix]", func(c *otpd.Config, v otpd.Rate) { c.Limits.PerPrefix = v }),
	integer("prefix-digits", "digits a range of --limit-prefix leaves out (default 3) [limits.prefix_digits]", func(c *otpd.Config, v int) { c.Limits.PrefixDigits = v }),
	str("number-types", "number types codes may go to, comma-separated (default mobile,fixed_line_or_mobile) [limits.number_types]", func(c *otpd.Config, v string) {
		c.Limits.NumberTypes = strings.Split(strings.ReplaceAll(v, " ", ""), ",")
	}),
	integer("max-phone-failures", "wrong codes in a row per phone, over its challenges, before it is blocked (default 20, at most 100) [limits.max_phone_failures]", func(c *otpd.Config, v int) { c.Limits.MaxPhoneFailures = v }),
	duration("phone-failure-window", "how long a blocked phone stays blocked after its last wrong code (default 24h) [limits.phone_failure_window]", func(c *otpd.Config, v time.Duration) { c.Limits.PhoneFailureWindow = v }),
}

// loadConfig builds the configuration: YAML file, then environment and
// flags over it, then defaults.
func loadConfig(c *cli.Context) (otpd.Config, error) {
	cfg := otpd.NewConfig()
	if f := c.String("config"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config file %s: %w", f, err)
		}
	}
	for _, b := range serveBindings {
		if c.IsSet(b.flag.Names()[0]) {
			if err := b.apply(c, &cfg); err != nil {
				return cfg, err
			}
		}
	}
	cfg.Defaults()
	return cfg, cfg.Validate()
}

func serveCmd() *cli.Command {
	flags := []cli.Flag{&cli.StringFlag{Name: "config", Usage: "YAML configuration file", EnvVars: []string{"OTPD_CONFIG"}},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"OTPD_LOG_LEVEL"}},
		&cli.BoolFlag{Name: "log-json", Usage: "logs as JSON lines", EnvVars: []string{"OTPD_LOG_JSON"}}}
	for _, b := range serveBindings {
		flags = append(flags, b.flag)
	}
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon (without --smsc: on the embedded simulator)",
		Description: "Every flag is also an OTPD_* environment variable and a key of the YAML file (in brackets).\n" +
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
			if sim := d.Simulator(); sim != nil {
				fmt.Printf("otpd: listening on "+scheme+"://%s (embedded default: SQLite in %s, in-process SMSC simulator on %s, its API on http://%s; no API key needed)\n",
					d.Addr(), cfg.DataDir, sim.Addr(), sim.HTTPAddr())
				fmt.Printf("otpd: to use a real SMSC: otpd serve --smsc HOST:PORT --system-id ID --password PW --source-addr S_ADDR (see otpd serve --help)\n")
			} else {
				fmt.Printf("otpd: listening on "+scheme+"://%s, SMSC %s as %q (%s x%d), data in %s\n", d.Addr(), cfg.SMSC.Addr, cfg.SMSC.SystemID, cfg.SMSC.BindMode, cfg.SMSC.Binds, cfg.DataDir)
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
		Usage: "create or upgrade the store's schema",
		Flags: []cli.Flag{&cli.StringFlag{Name: "data", Value: "./otpd-data", Usage: "data directory", EnvVars: []string{"OTPD_DATA"}}},
		Action: func(c *cli.Context) error {
			st, err := otpd.OpenSQLite(c.String("data"))
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Printf("store in %s is at schema version %d\n", c.String("data"), otpd.SchemaVersion)
			return nil
		},
	}
}

func keysCmd() *cli.Command {
	data := &cli.StringFlag{Name: "data", Value: "./otpd-data", Usage: "data directory", EnvVars: []string{"OTPD_DATA"}}
	open := func(c *cli.Context) (*otpd.Store, error) { return otpd.OpenSQLite(c.String("data")) }
	return &cli.Command{
		Name:  "keys",
		Usage: "manage API keys (create, list, revoke, rotate)",
		Subcommands: []*cli.Command{{
			Name:  "create",
			Usage: "create an API key and print it on one line (it is shown only once; only its hash is stored)",
			Flags: []cli.Flag{
				data,
				&cli.StringFlag{Name: "name", Usage: "a name to recognise the key by"},
				&cli.StringFlag{Name: "networks", Usage: "comma-separated CIDRs the key may be used from (default anywhere)"},
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
				id, key, err := otpd.CreateKeyWith(c.Context, st, otpd.KeyOptions{Name: c.String("name"), Networks: c.String("networks"),
					Scopes: scopes, Senders: splitComma(c.String("senders"))})
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "created API key %s\n", id)
				fmt.Println(key)
				return nil
			},
		}, {
			Name:  "list",
			Usage: "list the API keys: id, name, state, created, last used, scopes, senders, networks (never the key)",
			Flags: []cli.Flag{data, &cli.BoolFlag{Name: "json", Usage: "one JSON object a line"}},
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
			Flags:     []cli.Flag{data},
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
			Flags:     []cli.Flag{data, &cli.DurationFlag{Name: "overlap", Value: 24 * time.Hour, Usage: "how long the old key keeps working"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return errors.New("usage: otpd keys rotate ID [--overlap 24h]")
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
		}},
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
