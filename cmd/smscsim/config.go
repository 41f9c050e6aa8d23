package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/otpd/otpd/simulator"
)

// fileConfig is the YAML file. Pointers tell a key that is absent from one
// set to its zero value.
type fileConfig struct {
	SMPP              *string           `yaml:"smpp"`
	HTTP              *string           `yaml:"http"`
	SystemID          *string           `yaml:"system_id"`
	Accounts          []fileAccount     `yaml:"accounts"`
	DLRDelay          *string           `yaml:"dlr_delay"`
	DLROutcomes       *string           `yaml:"dlr_outcomes"`
	MessageIDFormat   *string           `yaml:"message_id_format"`
	ReceiptIDFormat   *string           `yaml:"receipt_id_format"`
	ReceiptTLVKeepsID *bool             `yaml:"receipt_tlv_keeps_id"`
	ReceiptText       *bool             `yaml:"receipt_text"`
	ReceiptRetry      *time.Duration    `yaml:"receipt_retry"`
	Retention         *int              `yaml:"retention"`
	MaxPendingRcpts   *int              `yaml:"max_pending_receipts"`
	Rules             []fileRule        `yaml:"rules"`
	NoDefaultRules    *bool             `yaml:"no_default_rules"`
	Seed              *int64            `yaml:"seed"`
	Window            *int              `yaml:"window"`
	SegmentTimeout    *time.Duration    `yaml:"segment_timeout"`
	Faults            *simulator.Faults `yaml:"faults"`
	LogLevel          *string           `yaml:"log_level"`
	LogFormat         *string           `yaml:"log_format"`
	SMPPTLS           *string           `yaml:"smpp_tls"`
	SMPPTLSCert       *string           `yaml:"smpp_tls_cert"`
	SMPPTLSKey        *string           `yaml:"smpp_tls_key"`
	DLRMode           *string           `yaml:"dlr_mode"`
	CodePattern       *string           `yaml:"code_pattern"`
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

func readFile(path string) (*fileConfig, error) {
	fc := &fileConfig{}
	if path == "" {
		return fc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(fc); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return fc, nil
}

// loadConfig merges flags, environment (both through c) and the file.
func loadConfig(c *cli.Context) (simulator.Config, logConfig, error) {
	var cfg simulator.Config
	fc, err := readFile(c.String("config"))
	if err != nil {
		return cfg, logConfig{}, err
	}
	str := func(flag string, file *string) string {
		if c.IsSet(flag) || file == nil {
			return c.String(flag)
		}
		return *file
	}
	boolean := func(flag string, file *bool) bool {
		if c.IsSet(flag) || file == nil {
			return c.Bool(flag)
		}
		return *file
	}
	integer := func(flag string, file *int) int {
		if c.IsSet(flag) || file == nil {
			return c.Int(flag)
		}
		return *file
	}
	duration := func(flag string, file *time.Duration) time.Duration {
		if c.IsSet(flag) || file == nil {
			return c.Duration(flag)
		}
		return *file
	}
	var errs []error
	cfg.SMPPAddr = str("smpp", fc.SMPP)
	cfg.HTTPAddr = str("http", fc.HTTP)
	if cfg.HTTPAddr == "off" {
		cfg.HTTPAddr = ""
	}
	cfg.SystemID = str("system-id", fc.SystemID)
	if cfg.DLRDelay, err = simulator.ParseDelay(str("dlr-delay", fc.DLRDelay)); err != nil {
		errs = append(errs, fmt.Errorf("dlr-delay: %w", err))
	}
	if cfg.DLROutcomes, err = simulator.ParseOutcomes(str("dlr-outcomes", fc.DLROutcomes)); err != nil {
		errs = append(errs, fmt.Errorf("dlr-outcomes: %w", err))
	}
	cfg.MessageIDFormat = str("message-id-format", fc.MessageIDFormat)
	cfg.ReceiptIDFormat = str("receipt-id-format", fc.ReceiptIDFormat)
	cfg.ReceiptTLVKeepsID = boolean("receipt-tlv-keeps-id", fc.ReceiptTLVKeepsID)
	cfg.ReceiptNoText = !boolean("receipt-text", fc.ReceiptText)
	cfg.ReceiptRetry = duration("receipt-retry", fc.ReceiptRetry)
	cfg.Retention = integer("retention", fc.Retention)
	cfg.MaxPendingReceipts = integer("max-pending-receipts", fc.MaxPendingRcpts)
	cfg.NoDefaultRules = boolean("no-default-rules", fc.NoDefaultRules)
	cfg.Window = integer("window", fc.Window)
	cfg.SegmentTimeout = duration("segment-timeout", fc.SegmentTimeout)
	if c.IsSet("seed") || fc.Seed == nil {
		cfg.Seed = c.Int64("seed")
	} else {
		cfg.Seed = *fc.Seed
	}

	// Accounts: from the flags (or SMSCSIM_ACCOUNT), else the file.
	accts := c.StringSlice("account")
	if len(accts) == 0 {
		accts = strings.Fields(os.Getenv("SMSCSIM_ACCOUNT"))
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
		for _, fa := range fc.Accounts {
			a := simulator.Account{SystemID: fa.SystemID, Password: fa.Password, SystemType: fa.SystemType, MaxBinds: fa.MaxBinds, TPS: fa.TPS}
			if a.BindTypes, err = simulator.ParseBindTypes(fa.BindTypes); err != nil {
				errs = append(errs, fmt.Errorf("account %q: %w", fa.SystemID, err))
			}
			cfg.Accounts = append(cfg.Accounts, a)
		}
	}

	// Rules: from the flags, else the file, else the defaults.
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
	} else if fc.Rules != nil {
		cfg.Rules = []simulator.Rule{}
		for _, fr := range fc.Rules {
			r := simulator.Rule{Prefix: fr.Prefix, Stat: fr.Stat, Err: fr.Err, NoReceipt: fr.NoReceipt}
			if fr.Reject != "" {
				if r.Reject, err = simulator.ParseStatus(fr.Reject); err != nil {
					errs = append(errs, fmt.Errorf("rule %q: %w", fr.Prefix, err))
				}
			}
			cfg.Rules = append(cfg.Rules, r)
		}
	}

	// Faults: the file's, each overridden by its flag when set.
	if fc.Faults != nil {
		cfg.Faults = *fc.Faults
	}
	f := &cfg.Faults
	float := func(flag string, dst *float64) {
		if c.IsSet(flag) {
			*dst = c.Float64(flag)
		}
	}
	float("fault-error-rate", &f.ErrorRate)
	float("fault-throttle-rate", &f.ThrottleRate)
	float("fault-throttle-tps", &f.ThrottleTPS)
	float("fault-drop-rate", &f.DropRate)
	float("fault-delay-rate", &f.DelayRate)
	float("fault-disconnect-rate", &f.DisconnectRate)
	float("fault-duplicate-receipt-rate", &f.DuplicateReceiptRate)
	if c.IsSet("fault-disconnect-after") {
		f.DisconnectAfter = c.Int("fault-disconnect-after")
	}
	if c.IsSet("fault-error-status") || f.ErrorStatus == 0 {
		if err := f.ErrorStatus.UnmarshalText([]byte(c.String("fault-error-status"))); err != nil {
			errs = append(errs, fmt.Errorf("fault-error-status: %w", err))
		}
	}
	delay := func(flag string, dst *simulator.Delay) {
		if c.IsSet(flag) {
			d, err := simulator.ParseDelay(c.String(flag))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", flag, err))
			}
			*dst = d
		}
	}
	delay("fault-response-delay", &f.ResponseDelay)
	delay("fault-receipt-delay", &f.ReceiptDelay)
	if err := f.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("faults: %w", err))
	}
	cfg.DLRMode = str("dlr-mode", fc.DLRMode)
	cfg.CodePattern = str("code-pattern", fc.CodePattern)
	cfg.SMPPTLSAddr = str("smpp-tls", fc.SMPPTLS)
	if cert, key := str("smpp-tls-cert", fc.SMPPTLSCert), str("smpp-tls-key", fc.SMPPTLSKey); cert != "" || key != "" {
		if pair, err := tls.LoadX509KeyPair(cert, key); err != nil {
			errs = append(errs, fmt.Errorf("smpp-tls-cert, smpp-tls-key: %w", err))
		} else {
			cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		}
	}
	lc := logConfig{level: str("log-level", fc.LogLevel), format: str("log-format", fc.LogFormat)}
	return cfg, lc, errors.Join(errs...)
}
