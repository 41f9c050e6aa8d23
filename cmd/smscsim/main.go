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
GET|PUT|PATCH /api/faults, GET /metrics, GET /healthz, GET /openapi.yaml (the API described),
GET / (the inbox page).
To read the next SMS to a number without ever reading an older one: take
id = GET /api/messages/latest?to=N (none: 404) before the send, then
GET /api/messages/latest?to=N&since=ID&wait=10s (no since when there was none).

YAML file (--config): keys as the flags with underscores (smpp, http, dlr_delay, ...),
accounts as a list of {system_id, password, system_type, bind_types, max_binds, tps},
rules as a list of {prefix, stat, err, reject, no_receipt}, faults as in GET /api/faults.
An unknown key stops smscsim with its name and line. docs/smscsim.md lists every setting.`,
		Flags:  spec.Flags(),
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
