package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/otpd/otpd/cmd/internal/conf"
	"github.com/otpd/otpd/simulator"
)

// Groups of the reference in docs/smscsim.md.
const (
	gFile     = "Configuration file"
	gListen   = "Listeners and accounts"
	gReceipts = "Messages and receipts"
	gFaults   = "Faults"
	gLog      = "Logging"
)

// spec is the one definition of smscsim's settings: each is a flag, a
// SMSCSIM_* variable and a key of the YAML file, its default declared here.
var spec = &conf.Spec{
	EnvPrefix: "SMSCSIM_",
	Groups:    []string{gFile, gListen, gReceipts, gFaults, gLog},
	// Accounts and rules are lists of structures in the file; on the
	// command line each is one string.
	Sections: map[string]any{"accounts": []fileAccount{}, "rules": []fileRule{}},
	Settings: []conf.Setting{
		{Group: gFile, Name: "config", Usage: "YAML file with the settings"},

		{Group: gListen, Name: "smpp", Key: "smpp", Value: simulator.DefaultSMPPAddr, Default: simulator.DefaultSMPPAddr, Usage: "SMPP listen address (port 0: a free port)"},
		{Group: gListen, Name: "smpp-tls", Key: "smpp_tls", Value: simulator.DefaultSMPPTLSAddr, Default: simulator.DefaultSMPPTLSAddr, Usage: "SMPP over TLS listen address, with --smpp-tls-cert (--smpp off: TLS only)"},
		{Group: gListen, Name: "smpp-tls-cert", Key: "smpp_tls_cert", Usage: "certificate (PEM, chain first) to serve SMPP over TLS with"},
		{Group: gListen, Name: "smpp-tls-key", Key: "smpp_tls_key", Usage: "key (PEM) of --smpp-tls-cert"},
		{Group: gListen, Name: "http", Key: "http", Value: simulator.DefaultHTTPAddr, Default: simulator.DefaultHTTPAddr, Usage: `HTTP API listen address ("" or "off": none)`},
		{Group: gListen, Name: "account", Kind: conf.List, Env: "-", Usage: "an account that may bind: ID:PASSWORD[:bind=tx+rx+trx,max_binds=N,tps=N,system_type=T] (repeatable; SMSCSIM_ACCOUNT takes several separated by spaces; the file's accounts: a list of {system_id, password, system_type, bind_types, max_binds, tps}); with none, any bind is accepted"},
		{Group: gListen, Name: "system-id", Key: "system_id", Value: "smscsim", Default: "smscsim", Usage: "system_id in bind responses"},
		{Group: gListen, Name: "window", Key: "window", Kind: conf.Int, Value: 100, Default: "100", Usage: "deliver_sm outstanding per session"},

		{Group: gReceipts, Name: "dlr-delay", Key: "dlr_delay", Value: "0", Default: "0", Usage: "delay before a receipt: a duration (100ms, 2s) or a range (1s-5s)"},
		{Group: gReceipts, Name: "dlr-outcomes", Key: "dlr_outcomes", Value: "DELIVRD=1", Default: "DELIVRD=1", Usage: "receipt outcomes and their weights, STAT[:ERR]=W,...: DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD"},
		{Group: gReceipts, Name: "dlr-mode", Key: "dlr_mode", Value: "auto", Default: "auto", Usage: "auto (receipts as --dlr-delay and --dlr-outcomes say) or manual (none until POST /api/messages/{id}/receipt)"},
		{Group: gReceipts, Name: "dlr-route", Key: "dlr_route", Value: "any", Default: "any", Usage: "the receiver bind a receipt goes out on: any (round robin over the account's) or other (a bind other than the submitting session whenever one is bound, else that one)"},
		{Group: gReceipts, Name: "code-pattern", Key: "code_pattern", Usage: "regular expression of the codes in a message (its first group when it has one), found before the runs of 4 to 10 digits"},
		{Group: gReceipts, Name: "message-id-format", Key: "message_id_format", Value: "dec", Default: "dec", Usage: "message ids: dec, hex or uuid"},
		{Group: gReceipts, Name: "receipt-id-format", Key: "receipt_id_format", Value: "same", Default: "same", Usage: "ids in receipts: same (as submit_sm_resp), dec or hex"},
		{Group: gReceipts, Name: "receipt-tlv-keeps-id", Key: "receipt_tlv_keeps_id", Kind: conf.Bool, Usage: "keep the submit_sm_resp id in receipted_message_id (only the text follows --receipt-id-format)"},
		{Group: gReceipts, Name: "receipt-text", Key: "receipt_text", Kind: conf.Bool, Value: true, Default: "true", Usage: "write the message's first 20 characters in the receipt's text: field"},
		{Group: gReceipts, Name: "receipt-retry", Key: "receipt_retry", Kind: conf.Duration, Value: time.Second, Default: "1s", Usage: "wait before sending a receipt again after an error answer or a lost link"},
		{Group: gReceipts, Name: "retention", Key: "retention", Kind: conf.Int, Value: 10000, Default: "10000", Usage: "messages kept (oldest dropped first)"},
		{Group: gReceipts, Name: "max-pending-receipts", Key: "max_pending_receipts", Kind: conf.Int, Default: "10 x --retention", Usage: "receipts owed and not yet acknowledged per system_id, at most; beyond it submits asking for a receipt get ESME_RMSGQFUL"},
		{Group: gReceipts, Name: "rule", Kind: conf.List, Usage: "a rule by destination prefix: PREFIX=STAT[:ERR], PREFIX=reject:STATUS or PREFIX=noreceipt (repeatable; the file's rules: a list of {prefix, stat, err, reject, no_receipt})"},
		{Group: gReceipts, Name: "no-default-rules", Key: "no_default_rules", Kind: conf.Bool, Usage: "no magic test numbers (when no --rule is given)"},
		{Group: gReceipts, Name: "seed", Key: "seed", Kind: conf.Int64, Usage: "seed for random draws and message ids (0: random)"},
		{Group: gReceipts, Name: "segment-timeout", Key: "segment_timeout", Kind: conf.Duration, Value: 10 * time.Minute, Default: "10m", Usage: "wait for the missing segments of a concatenated message"},

		{Group: gFaults, Name: "fault-error-rate", Key: "faults.error_rate", Kind: conf.Float, Usage: "share of submits answered with --fault-error-status"},
		{Group: gFaults, Name: "fault-error-status", Key: "faults.error_status", Value: "ESME_RSYSERR", Default: "ESME_RSYSERR", Usage: "status of --fault-error-rate (name or number)"},
		{Group: gFaults, Name: "fault-throttle-rate", Key: "faults.throttle_rate", Kind: conf.Float, Usage: "share of submits answered ESME_RTHROTTLED"},
		{Group: gFaults, Name: "fault-throttle-tps", Key: "faults.throttle_tps", Kind: conf.Float, Usage: "submits per second (all sessions) beyond which every submit is answered ESME_RTHROTTLED; 0: none"},
		{Group: gFaults, Name: "fault-drop-rate", Key: "faults.drop_rate", Kind: conf.Float, Usage: "share of requests accepted but never answered"},
		{Group: gFaults, Name: "fault-delay-rate", Key: "faults.delay_rate", Kind: conf.Float, Usage: "share of responses sent after --fault-response-delay"},
		{Group: gFaults, Name: "fault-response-delay", Key: "faults.response_delay", Value: "0", Default: "0", Usage: "delay of delayed responses: a duration or a range"},
		{Group: gFaults, Name: "fault-disconnect-after", Key: "faults.disconnect_after", Kind: conf.Int, Usage: "cut each connection after it has sent N requests (0: never)"},
		{Group: gFaults, Name: "fault-disconnect-rate", Key: "faults.disconnect_rate", Kind: conf.Float, Usage: "share of requests on which the connection is cut"},
		{Group: gFaults, Name: "fault-receipt-delay", Key: "faults.receipt_delay", Value: "0", Default: "0", Usage: "extra delay added to every receipt: a duration or a range"},
		{Group: gFaults, Name: "fault-duplicate-receipt-rate", Key: "faults.duplicate_receipt_rate", Kind: conf.Float, Usage: "share of receipts sent twice"},

		{Group: gLog, Name: "log-level", Key: "log_level", Value: "info", Default: "info", Usage: "debug (every bind and PDU), info, warn or error"},
		{Group: gLog, Name: "log-format", Key: "log_format", Value: "json", Default: "json", Usage: "json or console"},
	},
}

type fileAccount struct {
	SystemID   string   `yaml:"system_id"`
	Password   string   `yaml:"password"`
	SystemType string   `yaml:"system_type"`
	BindTypes  []string `yaml:"bind_types"`
	MaxBinds   int      `yaml:"max_binds"`
	TPS        float64  `yaml:"tps"`
}

type fileRule struct {
	Prefix    string `yaml:"prefix"`
	Stat      string `yaml:"stat"`
	Err       string `yaml:"err"`
	Reject    string `yaml:"reject"`
	NoReceipt bool   `yaml:"no_receipt"`
}

// loadConfig reads each setting from its flag, else its variable, else
// the YAML file, else its default.
func loadConfig(c *cli.Context) (simulator.Config, logConfig, error) {
	var cfg simulator.Config
	file, err := spec.Load(c, c.String("config"))
	if err != nil {
		return cfg, logConfig{}, err
	}
	var errs []error
	cfg.SMPPAddr = c.String("smpp")
	cfg.HTTPAddr = c.String("http")
	if cfg.HTTPAddr == "off" {
		cfg.HTTPAddr = ""
	}
	cfg.SystemID = c.String("system-id")
	if cfg.DLRDelay, err = simulator.ParseDelay(c.String("dlr-delay")); err != nil {
		errs = append(errs, fmt.Errorf("dlr-delay: %w", err))
	}
	if cfg.DLROutcomes, err = simulator.ParseOutcomes(c.String("dlr-outcomes")); err != nil {
		errs = append(errs, fmt.Errorf("dlr-outcomes: %w", err))
	}
	cfg.MessageIDFormat = c.String("message-id-format")
	cfg.ReceiptIDFormat = c.String("receipt-id-format")
	cfg.ReceiptTLVKeepsID = c.Bool("receipt-tlv-keeps-id")
	cfg.ReceiptNoText = !c.Bool("receipt-text")
	cfg.ReceiptRetry = c.Duration("receipt-retry")
	cfg.Retention = c.Int("retention")
	cfg.MaxPendingReceipts = c.Int("max-pending-receipts")
	cfg.NoDefaultRules = c.Bool("no-default-rules")
	cfg.Window = c.Int("window")
	cfg.SegmentTimeout = c.Duration("segment-timeout")
	cfg.Seed = c.Int64("seed")

	// Accounts: from the flags or SMSCSIM_ACCOUNT (several separated by
	// spaces, as a password may hold a comma), else the file.
	accts := c.StringSlice("account")
	if !c.IsSet("account") {
		accts = strings.Fields(os.Getenv("SMSCSIM_ACCOUNT"))
	}
	var fileAccts []fileAccount
	if _, err := file.Decode("accounts", &fileAccts); err != nil {
		errs = append(errs, err)
	}
	if len(accts) > 0 {
		for _, s := range accts {
			a, err := simulator.ParseAccount(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cfg.Accounts = append(cfg.Accounts, a)
		}
	} else {
		for _, fa := range fileAccts {
			a := simulator.Account{SystemID: fa.SystemID, Password: fa.Password, SystemType: fa.SystemType, MaxBinds: fa.MaxBinds, TPS: fa.TPS}
			if a.BindTypes, err = simulator.ParseBindTypes(fa.BindTypes); err != nil {
				errs = append(errs, fmt.Errorf("account %q: %w", fa.SystemID, err))
			}
			cfg.Accounts = append(cfg.Accounts, a)
		}
	}

	// Rules: from the flags, else the file, else the defaults.
	var fileRules []fileRule
	inFile, err := file.Decode("rules", &fileRules)
	if err != nil {
		errs = append(errs, err)
	}
	if rules := c.StringSlice("rule"); len(rules) > 0 {
		cfg.Rules = []simulator.Rule{}
		for _, s := range rules {
			r, err := simulator.ParseRule(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cfg.Rules = append(cfg.Rules, r)
		}
	} else if inFile {
		cfg.Rules = []simulator.Rule{}
		for _, fr := range fileRules {
			r := simulator.Rule{Prefix: fr.Prefix, Stat: fr.Stat, Err: fr.Err, NoReceipt: fr.NoReceipt}
			if fr.Reject != "" {
				if r.Reject, err = simulator.ParseStatus(fr.Reject); err != nil {
					errs = append(errs, fmt.Errorf("rule %q: %w", fr.Prefix, err))
				}
			}
			cfg.Rules = append(cfg.Rules, r)
		}
	}

	f := &cfg.Faults
	f.ErrorRate = c.Float64("fault-error-rate")
	f.ThrottleRate = c.Float64("fault-throttle-rate")
	f.ThrottleTPS = c.Float64("fault-throttle-tps")
	f.DropRate = c.Float64("fault-drop-rate")
	f.DelayRate = c.Float64("fault-delay-rate")
	f.DisconnectRate = c.Float64("fault-disconnect-rate")
	f.DuplicateReceiptRate = c.Float64("fault-duplicate-receipt-rate")
	f.DisconnectAfter = c.Int("fault-disconnect-after")
	if err := f.ErrorStatus.UnmarshalText([]byte(c.String("fault-error-status"))); err != nil {
		errs = append(errs, fmt.Errorf("fault-error-status: %w", err))
	}
	for _, d := range []struct {
		flag string
		dst  *simulator.Delay
	}{{"fault-response-delay", &f.ResponseDelay}, {"fault-receipt-delay", &f.ReceiptDelay}} {
		v, err := simulator.ParseDelay(c.String(d.flag))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.flag, err))
		}
		*d.dst = v
	}
	if err := f.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("faults: %w", err))
	}
	cfg.DLRMode = c.String("dlr-mode")
	cfg.DLRRoute = c.String("dlr-route")
	cfg.CodePattern = c.String("code-pattern")
	cfg.SMPPTLSAddr = c.String("smpp-tls")
	if cert, key := c.String("smpp-tls-cert"), c.String("smpp-tls-key"); cert != "" || key != "" {
		if pair, err := tls.LoadX509KeyPair(cert, key); err != nil {
			errs = append(errs, fmt.Errorf("smpp-tls-cert, smpp-tls-key: %w", err))
		} else {
			cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		}
	}
	lc := logConfig{level: c.String("log-level"), format: c.String("log-format")}
	return cfg, lc, errors.Join(errs...)
}
