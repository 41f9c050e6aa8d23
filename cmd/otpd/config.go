package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/otpd/otpd/cmd/internal/conf"
	"github.com/otpd/otpd/otpd"
	"github.com/urfave/cli/v2"
)

// Groups of the configuration reference, as an operator looks for them.
const (
	gSMSC    = "SMSC link"
	gHTTP    = "HTTP"
	gOTP     = "OTP policy"
	gLimits  = "Limits and fraud"
	gStorage = "Storage"
	gSender  = "Sender"
	gSim     = "Embedded simulator"
	gDoor    = "SMPP door for applications"
	gLog     = "Logging"
	gFile    = "Configuration file"
)

// option is one setting of otpd serve and the Config field it fills.
type option struct {
	conf.Setting
	apply func(c *cli.Context, cfg *otpd.Config) error
}

// defaults is the configuration with nothing set: the defaults are declared
// once, in otpd.Config.Defaults, and --help and the reference show them.
var defaults = func() otpd.Config {
	c := otpd.NewConfig()
	c.Defaults()
	return c
}()

// bind defines a setting whose flag fills the field of Config that field
// returns. Its default is the field's value in defaults.
func bind[T any](group, name, key, usage string, field func(*otpd.Config) *T) option {
	var kind conf.Kind
	var zero T
	switch any(zero).(type) {
	case string, otpd.Rate:
		kind = conf.String
	case int:
		kind = conf.Int
	case int64:
		kind = conf.Int64
	case float64:
		kind = conf.Float
	case time.Duration:
		kind = conf.Duration
	case bool:
		kind = conf.Bool
	case []string:
		kind = conf.List
	default:
		panic("bind: no kind for " + name)
	}
	o := option{Setting: conf.Setting{Name: name, Key: key, Kind: kind, Usage: usage, Group: group, Default: show(*field(&defaults))}}
	o.apply = func(c *cli.Context, cfg *otpd.Config) error {
		switch p := any(field(cfg)).(type) {
		case *string:
			*p = c.String(name)
		case *int:
			*p = c.Int(name)
		case *int64:
			*p = c.Int64(name)
		case *float64:
			*p = c.Float64(name)
		case *time.Duration:
			*p = c.Duration(name)
		case *bool:
			*p = c.Bool(name)
		case *otpd.Rate:
			r, err := otpd.ParseRate(c.String(name))
			if err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			*p = r
		case *[]string:
			*p = nil
			for _, v := range c.StringSlice(name) {
				for _, e := range strings.Split(v, ",") {
					if e = strings.TrimSpace(e); e != "" {
						*p = append(*p, e)
					}
				}
			}
		}
		return nil
	}
	return o
}

// def replaces the shown default, for defaults that depend on other
// settings or that mean "none".
func (o option) def(text string) option { o.Default = text; return o }

// show writes a default as a user writes it.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Duration:
		s := v.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	case bool:
		return ""
	case otpd.Rate:
		if v.N == 0 {
			return "off"
		}
		return strconv.Itoa(v.N) + "/" + show(v.Per)
	case []string:
		return strings.Join(v, ",")
	}
	return fmt.Sprint(v)
}

type cfg = otpd.Config

// serveOptions are the settings of otpd serve: each is a flag, an OTPD_*
// variable and a key of the YAML file.
var serveOptions = []option{
	{Setting: conf.Setting{Name: "config", Usage: "YAML configuration file; its keys are in brackets", Group: gFile}},

	bind(gSMSC, "smsc", "smsc.addr", "SMSC host:port; without it otpd runs on the embedded simulator", func(c *cfg) *string { return &c.SMSC.Addr }),
	bind(gSMSC, "system-id", "smsc.system_id", "SMPP system_id", func(c *cfg) *string { return &c.SMSC.SystemID }),
	bind(gSMSC, "password", "smsc.password", "SMPP password", func(c *cfg) *string { return &c.SMSC.Password }),
	bind(gSMSC, "system-type", "smsc.system_type", "SMPP system_type", func(c *cfg) *string { return &c.SMSC.SystemType }),
	bind(gSMSC, "bind-mode", "smsc.bind_mode", "trx (transceivers) or tx+rx (transmitter and receiver pairs)", func(c *cfg) *string { return &c.SMSC.BindMode }),
	bind(gSMSC, "binds", "smsc.binds", "number of binds (or pairs)", func(c *cfg) *int { return &c.SMSC.Binds }),
	bind(gSMSC, "window", "smsc.window", "outstanding requests per bind", func(c *cfg) *int { return &c.SMSC.Window }),
	bind(gSMSC, "tps", "smsc.tps", "submits per second over all binds (0: no limit)", func(c *cfg) *float64 { return &c.SMSC.TPS }),
	bind(gSMSC, "bind-tps", "smsc.bind_tps", "submits per second per bind (0: no limit)", func(c *cfg) *float64 { return &c.SMSC.BindTPS }),
	bind(gSMSC, "enquire-link", "smsc.enquire_link", "enquire_link interval", func(c *cfg) *time.Duration { return &c.SMSC.EnquireLink }),
	bind(gSMSC, "response-timeout", "smsc.response_timeout", "wait for each SMPP response", func(c *cfg) *time.Duration { return &c.SMSC.ResponseTimeout }),
	bind(gSMSC, "reconnect-min", "smsc.reconnect_min", "first reconnect backoff", func(c *cfg) *time.Duration { return &c.SMSC.ReconnectMin }),
	bind(gSMSC, "reconnect-max", "smsc.reconnect_max", "largest reconnect backoff", func(c *cfg) *time.Duration { return &c.SMSC.ReconnectMax }),
	bind(gSMSC, "reconnect-stable", "smsc.reconnect_stable", "how long a bind must stay up before its loss resets the reconnect backoff", func(c *cfg) *time.Duration { return &c.SMSC.ReconnectStable }).def("30s"),
	bind(gSMSC, "throttle-pause", "smsc.throttle_pause", "pause of a bind after ESME_RTHROTTLED", func(c *cfg) *time.Duration { return &c.SMSC.ThrottlePause }),
	bind(gSMSC, "bind-budget", "smsc.bind_budget", "the most sessions the SMSC account allows at once, over every instance: on PostgreSQL the instances lease them from the database; on SQLite smsc.binds is cut to it (0: no budget)", func(c *cfg) *int { return &c.SMSC.BindBudget }),
	bind(gSMSC, "bind-lease", "smsc.bind_lease", "lease of a slot of the bind budget on PostgreSQL, renewed every third of it; a bind whose lease went unrenewed for half of it is dropped", func(c *cfg) *time.Duration { return &c.SMSC.BindLease }),
	bind(gSMSC, "source-addr", "smsc.source_addr", "S_ADDR: sender address", func(c *cfg) *string { return &c.SMSC.SourceAddr }),
	bind(gSMSC, "source-ton", "smsc.source_ton", "TON of S_ADDR; -1 derives it: alphanumeric 5, international 1, short code 3", func(c *cfg) *int { return &c.SMSC.SourceTON }),
	bind(gSMSC, "source-npi", "smsc.source_npi", "NPI of S_ADDR; -1 derives it", func(c *cfg) *int { return &c.SMSC.SourceNPI }),
	bind(gSMSC, "dest-ton", "smsc.dest_ton", "TON of destination numbers", func(c *cfg) *int { return &c.SMSC.DestTON }),
	bind(gSMSC, "dest-npi", "smsc.dest_npi", "NPI of destination numbers", func(c *cfg) *int { return &c.SMSC.DestNPI }),
	bind(gSMSC, "registered-delivery", "smsc.registered_delivery", "registered_delivery of submits (1: receipts)", func(c *cfg) *int { return &c.SMSC.RegisteredDelivery }),
	bind(gSMSC, "data-coding", "smsc.data_coding", "auto (GSM 03.38 when possible, else UCS-2), gsm, ucs2 or latin1", func(c *cfg) *string { return &c.SMSC.DataCoding }),
	bind(gSMSC, "utf16", "smsc.utf16", "send characters outside the BMP (emoji) as UTF-16 under UCS-2, for SMSCs that accept it; without it such text is refused", func(c *cfg) *bool { return &c.SMSC.UTF16 }),
	bind(gSMSC, "concat", "smsc.concat", "long messages: udh, udh16, sar or payload", func(c *cfg) *string { return &c.SMSC.Concat }),
	bind(gSMSC, "message-id-format", "smsc.message_id_format", "base of the SMSC's message ids in receipts: auto, dec or hex", func(c *cfg) *string { return &c.SMSC.MessageIDFormat }).def("auto; dec with the embedded simulator"),
	bind(gSMSC, "smsc-tls", "smsc.tls", "SMPP over TLS", func(c *cfg) *bool { return &c.SMSC.TLS }),
	bind(gSMSC, "smsc-tls-skip-verify", "smsc.tls_skip_verify", "do not verify the SMSC's certificate", func(c *cfg) *bool { return &c.SMSC.TLSSkipVerify }),
	bind(gSMSC, "smsc-tls-ca", "smsc.tls_ca", "CA certificates (PEM) to verify the SMSC with", func(c *cfg) *string { return &c.SMSC.TLSCA }),

	bind(gHTTP, "http", "http.addr", "HTTP listen address", func(c *cfg) *string { return &c.HTTP.Addr }),
	bind(gHTTP, "http-tls-cert", "http.tls_cert", "serve HTTPS with this certificate (PEM)", func(c *cfg) *string { return &c.HTTP.TLSCert }),
	bind(gHTTP, "http-tls-key", "http.tls_key", "key of --http-tls-cert (PEM)", func(c *cfg) *string { return &c.HTTP.TLSKey }),
	bind(gHTTP, "http-max-body", "http.max_body", "largest request body, bytes", func(c *cfg) *int64 { return &c.HTTP.MaxBody }),
	bind(gHTTP, "no-auth", "http.no_auth", "serve the API without API keys", func(c *cfg) *bool { return &c.HTTP.NoAuth }),
	bind(gHTTP, "no-auth-public", "http.no_auth_public", "confirm --no-auth on an address that is not loopback", func(c *cfg) *bool { return &c.HTTP.NoAuthPublic }),
	bind(gHTTP, "http-read-timeout", "http.read_timeout", "time to read a request, headers and body; slower bodies get 408", func(c *cfg) *time.Duration { return &c.HTTP.ReadTimeout }),
	bind(gHTTP, "demo", "http.demo", "serve the try-it page at /demo with a real SMSC too (anyone who reaches it can send codes, within the rate limits); the embedded default always serves it", func(c *cfg) *bool { return &c.HTTP.Demo }),
	bind(gHTTP, "dev", "dev", "allow the embedded default off loopback or on a data directory that served a real SMSC", func(c *cfg) *bool { return &c.Dev }),

	bind(gDoor, "smpp-listen", "smpp_listen", "address of the SMPP door for applications that speak only SMPP (a system_id per key: otpd keys create --smpp-system-id)", func(c *cfg) *string { return &c.SMPPListen }).def("none"),
	bind(gDoor, "smpp-tls-cert", "smpp_tls_cert", "certificate (PEM) with which the SMPP door speaks TLS", func(c *cfg) *string { return &c.SMPPTLSCert }),
	bind(gDoor, "smpp-tls-key", "smpp_tls_key", "key of --smpp-tls-cert (PEM)", func(c *cfg) *string { return &c.SMPPTLSKey }),

	bind(gOTP, "otp-length", "otp.length", "digits of a code", func(c *cfg) *int { return &c.OTP.Length }),
	bind(gOTP, "otp-min-length", "otp.min_length", "floor of a requested length", func(c *cfg) *int { return &c.OTP.MinLength }),
	bind(gOTP, "otp-ttl", "otp.ttl", "life of a code, at most 10m", func(c *cfg) *time.Duration { return &c.OTP.TTL }),
	bind(gOTP, "max-attempts", "otp.max_attempts", "verification attempts per challenge", func(c *cfg) *int { return &c.OTP.MaxAttempts }),
	bind(gOTP, "resend-after", "otp.resend_after", "cooldown between codes of a challenge", func(c *cfg) *time.Duration { return &c.OTP.ResendAfter }),
	bind(gOTP, "max-sends", "otp.max_sends", "codes per challenge", func(c *cfg) *int { return &c.OTP.MaxSends }),
	bind(gOTP, "otp-locale", "otp.locale", "locale of the template used when a request names none", func(c *cfg) *string { return &c.OTP.Locale }),
	bind(gOTP, "default-region", "otp.default_region", "region of numbers given without + or 00, e.g. DE", func(c *cfg) *string { return &c.OTP.DefaultRegion }).def("none: require + or 00"),
	bind(gOTP, "hmac-key-file", "otp.hmac_key_file", "file of the key codes are HMACed with", func(c *cfg) *string { return &c.OTP.HMACKeyFile }).def("<data>/secret.key"),

	bind(gLimits, "limit-phone", "limits.per_phone", "sends per phone number, N/duration or off", func(c *cfg) *otpd.Rate { return &c.Limits.PerPhone }),
	bind(gLimits, "limit-key", "limits.per_key", "sends per API key", func(c *cfg) *otpd.Rate { return &c.Limits.PerKey }),
	bind(gLimits, "limit-country", "limits.per_country", "sends per country calling code", func(c *cfg) *otpd.Rate { return &c.Limits.PerCountry }),
	bind(gLimits, "limit-global", "limits.global", "sends in all", func(c *cfg) *otpd.Rate { return &c.Limits.Global }),
	bind(gLimits, "limit-prefix", "limits.per_prefix", "sends per range of numbers (all but the last --prefix-digits digits)", func(c *cfg) *otpd.Rate { return &c.Limits.PerPrefix }),
	bind(gLimits, "prefix-digits", "limits.prefix_digits", "digits a range of --limit-prefix leaves out", func(c *cfg) *int { return &c.Limits.PrefixDigits }),
	bind(gLimits, "number-types", "limits.number_types", "number types codes may go to, comma-separated", func(c *cfg) *[]string { return &c.Limits.NumberTypes }),
	bind(gLimits, "max-phone-failures", "limits.max_phone_failures", "wrong codes in a row per phone, over its challenges, before it is blocked (at most 100)", func(c *cfg) *int { return &c.Limits.MaxPhoneFailures }),
	bind(gLimits, "phone-failure-window", "limits.phone_failure_window", "how long a blocked phone stays blocked after its last wrong code", func(c *cfg) *time.Duration { return &c.Limits.PhoneFailureWindow }),
	bind(gLimits, "allow-countries", "limits.allow_countries", "regions SMS may go to, comma-separated, e.g. DE,AT,CH", func(c *cfg) *[]string { return &c.Limits.AllowCountries }).def("all"),

	bind(gStorage, "data", "data_dir", "data directory: SQLite store and secret key", func(c *cfg) *string { return &c.DataDir }),
	bind(gStorage, "database", "database", "PostgreSQL URL (postgres://user@host/db) of a store shared by several instances", func(c *cfg) *string { return &c.Database }).def("SQLite in the data directory"),
	bind(gStorage, "retention", "retention", "how long challenges, messages and receipts are kept", func(c *cfg) *time.Duration { return &c.Retention }),

	bind(gSender, "uncertain", "sender.uncertain", "a submit whose response never came: resubmit or fail", func(c *cfg) *string { return &c.Sender.Uncertain }),
	bind(gSender, "workers", "sender.workers", "messages submitted at once", func(c *cfg) *int { return &c.Sender.Workers }).def("2 x window x binds"),
	bind(gSender, "retry-min", "sender.retry_min", "first backoff of a message put back", func(c *cfg) *time.Duration { return &c.Sender.RetryMin }),
	bind(gSender, "retry-max", "sender.retry_max", "largest backoff of a message put back", func(c *cfg) *time.Duration { return &c.Sender.RetryMax }),
	bind(gSender, "message-ttl", "sender.message_ttl", "deadline of a plain message", func(c *cfg) *time.Duration { return &c.Sender.MessageTTL }),
	bind(gSender, "lease", "sender.lease", "how long a message being sent is held before another worker or instance takes it up", func(c *cfg) *time.Duration { return &c.Sender.Lease }).def("2m"),
	bind(gSender, "shutdown-wait", "sender.shutdown_wait", "wait for submits in flight at shutdown", func(c *cfg) *time.Duration { return &c.Sender.ShutdownWait }),

	bind(gSim, "sim-http", "simulator.http", "embedded simulator's HTTP API", func(c *cfg) *string { return &c.Sim.HTTPAddr }),
	bind(gSim, "sim-smpp", "simulator.smpp", "embedded simulator's SMPP address", func(c *cfg) *string { return &c.Sim.SMPPAddr }).def("a free loopback port"),
	bind(gSim, "sim-dlr-delay", "simulator.dlr_delay", "embedded simulator's receipt delay", func(c *cfg) *string { return &c.Sim.DLRDelay }),

	{Setting: conf.Setting{Name: "log-level", Key: "log.level", Usage: "debug, info, warn or error", Group: gLog, Value: "info", Default: "info"}},
	{Setting: conf.Setting{Name: "log-json", Key: "log.json", Kind: conf.Bool, Usage: "logs as JSON lines", Group: gLog}},
}

// serveSpec is the definition the flags, the variables, the YAML keys and
// docs/configuration.md come from.
var serveSpec = func() *conf.Spec {
	sp := &conf.Spec{
		EnvPrefix: "OTPD_",
		Sections:  map[string]any{"otp.templates": map[string]string{}},
		Groups:    []string{gFile, gSMSC, gHTTP, gDoor, gOTP, gLimits, gStorage, gSender, gSim, gLog},
	}
	for _, o := range serveOptions {
		sp.Settings = append(sp.Settings, o.Setting)
	}
	return sp
}()

// loadConfig builds the configuration: each flag from the command line,
// else its variable, else the YAML file; then the defaults for the rest.
func loadConfig(c *cli.Context) (otpd.Config, error) {
	cfg := otpd.NewConfig()
	f, err := serveSpec.Load(c, c.String("config"))
	if err != nil {
		return cfg, err
	}
	if _, err := f.Decode("otp.templates", &cfg.OTP.Templates); err != nil {
		return cfg, err
	}
	for _, o := range serveOptions {
		if o.apply != nil && c.IsSet(o.Name) {
			if err := o.apply(c, &cfg); err != nil {
				return cfg, err
			}
		}
	}
	cfg.Defaults()
	return cfg, cfg.Validate()
}
