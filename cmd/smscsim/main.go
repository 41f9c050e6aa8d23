// Command smscsim is an SMSC simulator that speaks SMPP 3.4, for CI
// pipelines and load tests: it accepts binds, stores what is submitted,
// sends delivery receipts, injects faults and serves an HTTP API to read
// the messages and change the faults. Every flag can also be set from the
// environment (SMSCSIM_<FLAG>, upper case with underscores) and from a YAML
// file (--config), in that order of precedence: flag, environment, file,
// default.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/otpd/otpd/simulator"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "smscsim:", err)
		os.Exit(1)
	}
}

func env(name string) []string { return []string{"SMSCSIM_" + name} }

func newApp() *cli.App {
	return &cli.App{
		Name:  "smscsim",
		Usage: "an SMSC simulator speaking SMPP 3.4, with an HTTP API to read messages and inject faults",
		Description: `Accounts (--account, repeatable; SMSCSIM_ACCOUNT takes several separated by spaces):
  ID:PASSWORD[:bind=tx+rx+trx,max_binds=N,tps=N,system_type=T]
  With no account any bind is accepted.

Rules by destination prefix (--rule, repeatable; a leading + is ignored):
  PREFIX=STAT[:ERR]        always that outcome, e.g. +1555000=UNDELIV:001
  PREFIX=reject:STATUS     submit refused, e.g. +1555001=reject:ESME_RINVDSTADR
  PREFIX=noreceipt         accepted, never a receipt
  Without --rule the magic test numbers are in force (--no-default-rules drops them):
  +1555000 UNDELIV err 001, +1555001 rejected ESME_RINVDSTADR, +1555002 no receipt,
  +1555003 EXPIRED err 002, +1555004 rejected ESME_RTHROTTLED.

HTTP API: GET /api/messages?to=&from=&system_id=&since=&limit=&wait=,
GET /api/messages/latest?to=&system_id=&since=&wait=, GET|DELETE /api/messages/{id},
POST /api/messages/{id}/receipt {"stat","err","delay"}, DELETE /api/messages?to=&system_id=,
POST /api/mo {"from","to","text","system_id"}, GET /api/sessions?system_id=,
DELETE /api/sessions/{id}[?abrupt=1], GET /api/events (server-sent events),
GET|PUT|PATCH /api/faults, GET /metrics, GET /healthz.
To read the next SMS to a number without ever reading an older one: take
id = GET /api/messages/latest?to=N (none: 404) before the send, then
GET /api/messages/latest?to=N&since=ID&wait=10s (no since when there was none).

YAML file (--config): keys as the flags with underscores (smpp, http, dlr_delay, ...),
accounts as a list of {system_id, password, system_type, bind_types, max_binds, tps},
rules as a list of {prefix, stat, err, reject, no_receipt}, faults as in GET /api/faults.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "YAML file with the settings", EnvVars: env("CONFIG")},
			&cli.StringFlag{Name: "smpp", Value: simulator.DefaultSMPPAddr, Usage: "SMPP listen address (port 0: a free port)", EnvVars: env("SMPP")},
			&cli.StringFlag{Name: "smpp-tls", Value: simulator.DefaultSMPPTLSAddr, Usage: "SMPP over TLS listen address, with --smpp-tls-cert (--smpp off: TLS only)", EnvVars: env("SMPP_TLS")},
			&cli.StringFlag{Name: "smpp-tls-cert", Usage: "certificate (PEM, chain first) to serve SMPP over TLS with", EnvVars: env("SMPP_TLS_CERT")},
			&cli.StringFlag{Name: "smpp-tls-key", Usage: "key (PEM) of --smpp-tls-cert", EnvVars: env("SMPP_TLS_KEY")},
			&cli.StringFlag{Name: "http", Value: simulator.DefaultHTTPAddr, Usage: `HTTP API listen address ("" or "off": none)`, EnvVars: env("HTTP")},
			&cli.StringSliceFlag{Name: "account", Usage: "an account that may bind: ID:PASSWORD[:bind=tx+rx+trx,max_binds=N,tps=N,system_type=T] (repeatable)"},
			&cli.StringFlag{Name: "system-id", Value: "smscsim", Usage: "system_id in bind responses", EnvVars: env("SYSTEM_ID")},
			&cli.StringFlag{Name: "dlr-delay", Value: "0", Usage: "delay before a receipt: a duration (100ms, 2s) or a range (1s-5s)", EnvVars: env("DLR_DELAY")},
			&cli.StringFlag{Name: "dlr-outcomes", Value: "DELIVRD=1", Usage: "receipt outcomes and their weights, STAT[:ERR]=W,...: DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD", EnvVars: env("DLR_OUTCOMES")},
			&cli.StringFlag{Name: "dlr-mode", Value: "auto", Usage: "auto (receipts as --dlr-delay and --dlr-outcomes say) or manual (none until POST /api/messages/{id}/receipt)", EnvVars: env("DLR_MODE")},
			&cli.StringFlag{Name: "code-pattern", Usage: "regular expression of the codes in a message (its first group when it has one), found before the runs of 4 to 10 digits", EnvVars: env("CODE_PATTERN")},
			&cli.StringFlag{Name: "message-id-format", Value: "dec", Usage: "message ids: dec, hex or uuid", EnvVars: env("MESSAGE_ID_FORMAT")},
			&cli.StringFlag{Name: "receipt-id-format", Value: "same", Usage: "ids in receipts: same (as submit_sm_resp), dec or hex", EnvVars: env("RECEIPT_ID_FORMAT")},
			&cli.BoolFlag{Name: "receipt-tlv-keeps-id", Usage: "keep the submit_sm_resp id in receipted_message_id (only the text follows --receipt-id-format)", EnvVars: env("RECEIPT_TLV_KEEPS_ID")},
			&cli.BoolFlag{Name: "receipt-text", Value: true, Usage: "write the message's first 20 characters in the receipt's text: field", EnvVars: env("RECEIPT_TEXT")},
			&cli.DurationFlag{Name: "receipt-retry", Value: time.Second, Usage: "wait before sending a receipt again after an error answer or a lost link", EnvVars: env("RECEIPT_RETRY")},
			&cli.IntFlag{Name: "retention", Value: 10000, Usage: "messages kept (oldest dropped first)", EnvVars: env("RETENTION")},
			&cli.IntFlag{Name: "max-pending-receipts", Usage: "receipts owed and not yet acknowledged per system_id, at most; beyond it submits asking for a receipt get ESME_RMSGQFUL", DefaultText: "10 x --retention", EnvVars: env("MAX_PENDING_RECEIPTS")},
			&cli.StringSliceFlag{Name: "rule", Usage: "a rule by destination prefix: PREFIX=STAT[:ERR], PREFIX=reject:STATUS or PREFIX=noreceipt (repeatable)", EnvVars: env("RULE")},
			&cli.BoolFlag{Name: "no-default-rules", Usage: "no magic test numbers (when no --rule is given)", EnvVars: env("NO_DEFAULT_RULES")},
			&cli.Int64Flag{Name: "seed", Usage: "seed for random draws and message ids (0: random)", EnvVars: env("SEED")},
			&cli.IntFlag{Name: "window", Value: 100, Usage: "deliver_sm outstanding per session", EnvVars: env("WINDOW")},
			&cli.DurationFlag{Name: "segment-timeout", Value: 10 * time.Minute, Usage: "wait for the missing segments of a concatenated message", EnvVars: env("SEGMENT_TIMEOUT")},
			&cli.Float64Flag{Name: "fault-error-rate", Usage: "share of submits answered with --fault-error-status", EnvVars: env("FAULT_ERROR_RATE")},
			&cli.StringFlag{Name: "fault-error-status", Value: "ESME_RSYSERR", Usage: "status of --fault-error-rate (name or number)", EnvVars: env("FAULT_ERROR_STATUS")},
			&cli.Float64Flag{Name: "fault-throttle-rate", Usage: "share of submits answered ESME_RTHROTTLED", EnvVars: env("FAULT_THROTTLE_RATE")},
			&cli.Float64Flag{Name: "fault-throttle-tps", Usage: "submits per second (all sessions) beyond which every submit is answered ESME_RTHROTTLED; 0: none", EnvVars: env("FAULT_THROTTLE_TPS")},
			&cli.Float64Flag{Name: "fault-drop-rate", Usage: "share of requests accepted but never answered", EnvVars: env("FAULT_DROP_RATE")},
			&cli.Float64Flag{Name: "fault-delay-rate", Usage: "share of responses sent after --fault-response-delay", EnvVars: env("FAULT_DELAY_RATE")},
			&cli.StringFlag{Name: "fault-response-delay", Value: "0", Usage: "delay of delayed responses: a duration or a range", EnvVars: env("FAULT_RESPONSE_DELAY")},
			&cli.IntFlag{Name: "fault-disconnect-after", Usage: "cut each connection after it has sent N requests (0: never)", EnvVars: env("FAULT_DISCONNECT_AFTER")},
			&cli.Float64Flag{Name: "fault-disconnect-rate", Usage: "share of requests on which the connection is cut", EnvVars: env("FAULT_DISCONNECT_RATE")},
			&cli.StringFlag{Name: "fault-receipt-delay", Value: "0", Usage: "extra delay added to every receipt: a duration or a range", EnvVars: env("FAULT_RECEIPT_DELAY")},
			&cli.Float64Flag{Name: "fault-duplicate-receipt-rate", Usage: "share of receipts sent twice", EnvVars: env("FAULT_DUPLICATE_RECEIPT_RATE")},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug (every bind and PDU), info, warn or error", EnvVars: env("LOG_LEVEL")},
			&cli.StringFlag{Name: "log-format", Value: "json", Usage: "json or console", EnvVars: env("LOG_FORMAT")},
		},
		Action: run,
	}
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", c.Args().First())
	}
	cfg, logCfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(logCfg)
	if err != nil {
		return err
	}
	defer log.Sync()
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim, err := simulator.Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	log.Info("smscsim: shutting down")
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return sim.Close(cctx)
}

type logConfig struct{ level, format string }

func newLogger(lc logConfig) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if lc.format == "console" {
		zc = zap.NewDevelopmentConfig()
	} else if lc.format != "json" {
		return nil, fmt.Errorf("log format %q: want json or console", lc.format)
	}
	lvl, err := zap.ParseAtomicLevel(lc.level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", lc.level)
	}
	zc.Level = lvl
	zc.Sampling = nil
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}
