package otpd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/otpd/otpd/simulator"
	"github.com/otpd/otpd/smpp"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Daemon is a running otpd: store, SMSC binds (or the embedded simulator),
// sender, HTTP API.
type Daemon struct {
	Config  Config
	log     *zap.Logger
	store   *Store
	svc     *Service
	metrics *Metrics
	events  *Broker
	feed    *eventFeed // the other instances' events, on a shared store
	pool    *smpp.Pool
	budget  *bindBudget // the bind budget's leases on a shared store, nil without
	sender  *Sender
	hooks   *Dispatcher // posts delivery reports to callbacks
	door    *SMPPDoor   // the SMPP listener for applications, nil without one
	sim     *simulator.Simulator
	api     *API
	pages   *pages
	srv     *http.Server
	ln      net.Listener
	served  chan error
}

// Start opens everything and starts serving; it returns once the HTTP
// listener is open. Stop with Shutdown.
func Start(cfg Config, log *zap.Logger) (d *Daemon, err error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	d = &Daemon{Config: cfg, log: log, served: make(chan error, 1)}
	d.Config.embedded = cfg.Embedded()
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d.Shutdown(ctx)
			cancel()
		}
	}()
	loopback := isLoopback(cfg.HTTP.Addr)
	if cfg.Embedded() && !loopback && !cfg.Dev {
		return d, fmt.Errorf("no SMSC is configured (smsc.addr), so otpd would run on its embedded simulator without API keys, and http.addr %s is not a loopback address: configure the SMSC, or listen on 127.0.0.1, or say --dev to run the embedded default there", cfg.HTTP.Addr)
	}
	if !cfg.Embedded() && cfg.HTTP.NoAuth && !loopback && !cfg.HTTP.NoAuthPublic {
		return d, fmt.Errorf("--no-auth on %s, which is not a loopback address, lets anyone send SMS through this SMSC: add --no-auth-public as well to mean it", cfg.HTTP.Addr)
	}
	keyFile := cfg.OTP.HMACKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "secret.key")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return d, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	if d.store, err = OpenStore(cfg.DataDir, cfg.Database); err != nil {
		return d, err
	}
	ctx := context.Background()
	if v, _, err := d.store.Meta(ctx, metaRealSMSC); err != nil {
		return d, err
	} else if v != "" && cfg.Embedded() && !cfg.Dev {
		return d, fmt.Errorf("the data directory %s served a real SMSC (%s), and no SMSC is configured now: the SMSC setting went missing? Configure it, or say --dev to run this data on the embedded simulator", cfg.DataDir, v)
	}
	sec, err := d.openSecrets(keyFile)
	if err != nil {
		return d, err
	}
	if !cfg.Embedded() {
		if err := d.store.SetMeta(ctx, metaRealSMSC, cfg.SMSC.Addr); err != nil {
			return d, err
		}
	}
	if cfg.HTTP.NoAuth && !cfg.Embedded() {
		log.Warn("serving without API keys (--no-auth): anyone who reaches " + cfg.HTTP.Addr + " can send SMS")
	}
	if cfg.Embedded() && !loopback {
		log.Warn("embedded default (--dev) on a non-loopback address: no API keys, no real SMS")
	}
	d.metrics = NewMetrics()
	d.store.OnWriterConn(d.logWriterConn)
	d.events = NewBroker(func() { d.metrics.Events.Inc() })
	d.svc = NewService(&d.Config, d.store, sec, d.metrics, d.events, log)
	d.hooks = NewDispatcher(d.svc)
	if d.svc.shared {
		if d.feed, err = startEventFeed(d.store, d.events, d.metrics, log); err != nil {
			return d, fmt.Errorf("event feed: %w", err)
		}
	}

	if cfg.Embedded() {
		delay, err := simulator.ParseDelay(cfg.Sim.DLRDelay)
		if err != nil {
			return d, fmt.Errorf("simulator.dlr_delay: %w", err)
		}
		// The simulator logs PDUs (numbers, texts with codes) at debug: keep
		// it at info whatever otpd's level.
		simLog := log.Named("smscsim").WithOptions(zap.IncreaseLevel(zap.InfoLevel))
		d.sim, err = simulator.Start(simulator.Config{SMPPAddr: cfg.Sim.SMPPAddr, HTTPAddr: cfg.Sim.HTTPAddr, DLRDelay: delay, Logger: simLog})
		if err != nil {
			return d, fmt.Errorf("embedded simulator: %w", err)
		}
		d.Config.SMSC.Addr = d.sim.Addr()
		d.Config.SMSC.SystemID = "otpd"
		d.Config.SMSC.Password = "otpd"
	}
	if d.pool, err = d.newPool(); err != nil {
		return d, err
	}
	d.metrics.watchPool(d.pool)
	if d.budget != nil {
		d.metrics.watchBudget(d.budget.heldCount)
	}
	d.sender = NewSender(d.svc, d.pool)
	if err := d.sender.Start(context.Background()); err != nil {
		return d, fmt.Errorf("outbox recovery: %w", err)
	}

	if cfg.SMPPListen != "" {
		var tc *tls.Config
		if cfg.SMPPTLSCert != "" || cfg.SMPPTLSKey != "" {
			cert, err := tls.LoadX509KeyPair(cfg.SMPPTLSCert, cfg.SMPPTLSKey)
			if err != nil {
				return d, fmt.Errorf("smpp_tls_cert, smpp_tls_key: %w", err)
			}
			tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		if d.door, err = StartSMPPDoor(d.svc, d.hooks, cfg.SMPPListen, tc); err != nil {
			return d, fmt.Errorf("smpp_listen: %w", err)
		}
	}
	d.hooks.Start()

	auth := !cfg.Embedded() && !cfg.HTTP.NoAuth
	d.api = NewAPI(d.svc, d.pool.Ready, auth)
	d.pages = newPages(d, auth)
	d.pages.register(d.api.mux)
	d.srv = &http.Server{Handler: d.api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.HTTP.ReadTimeout, IdleTimeout: 2 * time.Minute,
		ErrorLog: zap.NewStdLog(log.Named("http"))}
	// Event streams never go idle: end them when shutdown starts.
	d.srv.RegisterOnShutdown(d.events.Close)
	if d.ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return d, fmt.Errorf("http.addr: %w", err)
	}
	go func() {
		var err error
		if cfg.HTTP.TLSCert != "" {
			err = d.srv.ServeTLS(d.ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		} else {
			err = d.srv.Serve(d.ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		d.served <- err
	}()
	return d, nil
}

// Keys of the store's meta table.
const (
	metaSecretID = "secret_id" // Secrets.ID of the key the data was written with
	metaRealSMSC = "real_smsc" // the address of the last real SMSC served
)

// openSecrets loads the secret key and checks it against the one the data
// was written with: a missing file over existing data is refused, not
// replaced, and so is another key.
func (d *Daemon) openSecrets(file string) (*Secrets, error) {
	ctx := context.Background()
	want, known, err := d.store.Meta(ctx, metaSecretID)
	if err != nil {
		return nil, err
	}
	create := !known
	if !known {
		// A store from before the id was kept: data without the id means
		// a key file was in use; it must be there.
		has, err := d.store.hasData(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(file); has && errors.Is(err, os.ErrNotExist) {
			create = false
		}
	}
	sec, err := loadSecrets(file, create)
	if err != nil {
		return nil, err
	}
	if known && sec.ID() != want {
		return nil, fmt.Errorf("%w: %s is not the secret key the data in %s was written with (id %s, the file's is %s): restore the right file from the backup", ErrSecretLost, file, d.Config.DataDir, want, sec.ID())
	}
	if !known {
		if err := d.store.SetMeta(ctx, metaSecretID, sec.ID()); err != nil {
			return nil, err
		}
	}
	return sec, nil
}

// isLoopback reports whether a listen address is on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (d *Daemon) newPool() (*smpp.Pool, error) {
	s := d.Config.SMSC
	// Each receipt (deliver_sm) waits for its group commit before its
	// deliver_sm_resp; 256 of them at once keep the store's batches full
	// (16 capped the end-to-end rate at about 5k/s). The SMSC's own window
	// bounds how many come at once anyway.
	// The smpp package logs through log/slog; the daemon bridges it to zap.
	smppLog := slog.New(zapslog.NewHandler(d.log.Core(), zapslog.WithName("smpp")))
	sc := smpp.Config{SystemID: s.SystemID, Password: s.Password, SystemType: s.SystemType, Window: s.Window,
		ResponseTimeout: s.ResponseTimeout, EnquireLinkInterval: s.EnquireLink, Handler: d.svc, HandlerConcurrency: 256,
		Logger: smppLog}
	if s.TLS {
		tc := &tls.Config{InsecureSkipVerify: s.TLSSkipVerify, MinVersion: tls.VersionTLS12}
		if s.TLSCA != "" {
			pem, err := os.ReadFile(s.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("smsc.tls_ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smsc.tls_ca: no certificate in %s", s.TLSCA)
			}
		}
		sc.TLS = tc
	}
	mode := smpp.ModeTransceiver
	if s.BindMode == "tx+rx" {
		mode = smpp.ModeTxRx
	}
	pc := smpp.PoolConfig{Addr: s.Addr, Session: sc, Mode: mode, Binds: s.Binds, TPS: s.TPS, BindTPS: s.BindTPS,
		ThrottlePause: s.ThrottlePause, ReconnectMin: s.ReconnectMin, ReconnectMax: s.ReconnectMax,
		StableAfter: s.ReconnectStable, Logger: smppLog}
	d.budgetBinds(&pc)
	return smpp.NewPool(pc), nil
}

// budgetBinds holds the pool within smsc.bind_budget. On a shared store
// every session leases a slot of the budget (bindBudget); on SQLite, one
// instance, the pool is cut to what the budget holds (in tx+rx mode, pairs:
// an odd budget leaves one session unused).
func (d *Daemon) budgetBinds(pc *smpp.PoolConfig) {
	s := d.Config.SMSC
	if s.BindBudget == 0 {
		return
	}
	perBind := 1
	if pc.Mode == smpp.ModeTxRx {
		perBind = 2
	}
	want := pc.Binds * perBind
	if d.svc.shared {
		d.budget = newBindBudget(d.store, s, d.log.Named("budget"))
		pc.Permits = d.budget.acquire
		d.log.Info("bind budget: the sessions of this SMSC account are shared with the other instances through leases in the database",
			zap.String("account", d.budget.account), zap.Int("budget", s.BindBudget), zap.Int("wanted_here", want),
			zap.Duration("lease", s.BindLease), zap.Duration("renew_every", s.BindLease/3))
		if want > s.BindBudget {
			d.log.Warn("bind budget: this instance asks for more sessions than the account allows over every instance: it binds what slots are free",
				zap.Int("sessions", want), zap.Int("budget", s.BindBudget))
		}
		return
	}
	if binds := s.BindBudget / perBind; binds < pc.Binds {
		d.log.Warn("bind budget: smsc.binds asks for more sessions than smsc.bind_budget allows: binding what the budget holds",
			zap.Int("sessions", want), zap.Int("budget", s.BindBudget), zap.Int("binding", binds*perBind))
		pc.Binds = binds
	}
}

// logWriterConn logs a PostgreSQL writer's connection lost (once per
// loss: the retries in between are not) and regained, and counts the
// latter. The store's errors name no password (its URL is redacted).
func (d *Daemon) logWriterConn(ev WriterConnEvent) {
	log := d.log.With(zap.String("database", d.store.Where()), zap.Int("writer", ev.Writer), zap.Uint32("pid", ev.PID))
	if ev.Lost {
		log.Warn("store writer lost its PostgreSQL connection: reconnecting; its writes meanwhile go to the other writers, or fail with 503 store_unavailable while none has one", zap.Error(ev.Err))
		return
	}
	d.metrics.StoreReconnects.Inc()
	log.Info("store writer reconnected to PostgreSQL", zap.Duration("down", ev.Down), zap.Int("tries", ev.Tries))
}

// Addr is the HTTP listener's address.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Simulator is the embedded simulator, nil with a real SMSC.
func (d *Daemon) Simulator() *simulator.Simulator { return d.sim }

// Routes are the patterns of the HTTP API ("POST /v1/otp").
func (d *Daemon) Routes() []string { return d.api.Routes() }

// Service is the OTP service.
func (d *Daemon) Service() *Service { return d.svc }

// Dispatcher posts delivery reports to StatusCallbacks and webhooks.
func (d *Daemon) Dispatcher() *Dispatcher { return d.hooks }

// SMPPDoor is the SMPP listener for applications, nil without one.
func (d *Daemon) SMPPDoor() *SMPPDoor { return d.door }

// Pool is the SMSC binds.
func (d *Daemon) Pool() *smpp.Pool { return d.pool }

// Served is closed (after sending the error, if any) when the HTTP server
// stops by itself.
func (d *Daemon) Served() <-chan error { return d.served }

// Shutdown stops gracefully: no new HTTP requests (those in progress
// finish), the sender finishes the submits in flight, the binds drain their
// windows and unbind, the simulator stops, the store is flushed and closed.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var errs []error
	if d.srv != nil {
		if err := d.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
	}
	if d.events != nil {
		d.events.Close()
	}
	if d.pages != nil {
		d.pages.close()
	}
	if d.sender != nil {
		sctx, cancel := context.WithTimeout(ctx, d.Config.Sender.ShutdownWait)
		if err := d.sender.Stop(sctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if d.door != nil {
		if err := d.door.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("smpp door: %w", err))
		}
		d.door = nil
	}
	if d.hooks != nil {
		d.hooks.Stop()
	}
	if d.pool != nil {
		if err := d.pool.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("smsc: %w", err))
		}
	}
	if d.budget != nil {
		d.budget.close() // after the pool gave its slots back
		d.budget = nil
	}
	if d.sim != nil {
		if err := d.sim.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("simulator: %w", err))
		}
	}
	// Last before the store: the reports of the submits and receipts that
	// finished above still reach the other instances.
	d.feed.Close()
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// StoreWhere says where the store is: its file, or its URL without
// credentials.
func (d *Daemon) StoreWhere() string { return d.store.Where() }
