package otpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/otpd/otpd/simulator"
)

// The console at /console and the try-it page at /demo: plain HTML, CSS
// and JavaScript, embedded, nothing from elsewhere (they work offline).
// They are pages, not the API: their routes and the JSON they read stay
// out of API.Routes and api/openapi.yaml.
//
//go:embed pages
var pagesFS embed.FS

var pageTemplates = template.Must(template.ParseFS(pagesFS, "pages/*.html"))

// pageCSP allows a page only its own script, style and requests: no inline
// script, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// Console sessions.
const (
	sessionCookie = "otpd_console"
	sessionLife   = 12 * time.Hour
	sampleEvery   = 2 * time.Second
	sampleKeep    = 150 // 5 minutes

	// The console lists the newest hookLimit troubled webhook reports; it
	// reads the queue at most every hookEvery, whatever the number of
	// consoles open, since the listing and the counts scan the table.
	hookLimit = 20
	hookEvery = 5 * time.Second
)

type consoleSession struct {
	keyID   string // "" with authentication off
	csrf    string
	expires time.Time
}

// sample is one point of the console's chart.
type sample struct {
	At          time.Time `json:"at"`
	RPS         float64   `json:"rps"` // requests sent to the SMSC per second
	WindowInUse int       `json:"window_in_use"`
	Window      int       `json:"window"`
	BindsUp     int       `json:"binds_up"`
}

// pages serves /console and /demo.
type pages struct {
	d    *Daemon
	auth bool
	demo bool

	mu       sync.Mutex
	sessions map[[32]byte]*consoleSession // by SHA-256 of the cookie's value
	samples  []sample
	lastSent uint64

	hookMu    sync.Mutex // one read of the callback queue at a time
	hookEvery time.Duration
	hooks     *webhookSummary // the last read, shared by every console
	hooksAt   time.Time

	stop chan struct{}
	done chan struct{}
}

func newPages(d *Daemon, auth bool) *pages {
	p := &pages{d: d, auth: auth, demo: d.Config.embedded || d.Config.HTTP.Demo,
		sessions: map[[32]byte]*consoleSession{}, hookEvery: hookEvery, stop: make(chan struct{}), done: make(chan struct{})}
	p.lastSent = d.pool.Stats().Sent
	go p.sampler()
	return p
}

func (p *pages) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *pages) sampler() {
	defer close(p.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			st := p.d.pool.Stats()
			p.mu.Lock()
			rps := float64(st.Sent-p.lastSent) / sampleEvery.Seconds()
			p.lastSent = st.Sent
			p.samples = append(p.samples, sample{At: now.UTC(), RPS: rps, WindowInUse: st.WindowInUse, Window: st.Window, BindsUp: st.BindsUp})
			if len(p.samples) > sampleKeep {
				p.samples = append(p.samples[:0], p.samples[len(p.samples)-sampleKeep:]...)
			}
			for k, s := range p.sessions {
				if now.After(s.expires) {
					delete(p.sessions, k)
				}
			}
			p.mu.Unlock()
		}
	}
}

func (p *pages) register(mux *http.ServeMux) {
	static, _ := fs.Sub(pagesFS, "pages")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", p.page(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".html") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		http.FileServerFS(static).ServeHTTP(w, r)
	})))
	mux.Handle("GET /console", p.page(p.console))
	mux.Handle("POST /console/login", p.page(p.login))
	mux.Handle("POST /console/logout", p.page(p.logout))
	mux.Handle("GET /console/api/state", p.page(p.withSession(p.state)))
	mux.Handle("GET /console/api/events", p.page(p.withSession(p.events)))
	if p.demo {
		mux.Handle("GET /demo", p.page(func(w http.ResponseWriter, r *http.Request) {
			p.render(w, http.StatusOK, "demo.html", map[string]any{"Embedded": p.d.Config.embedded})
		}))
		mux.Handle("POST /demo/api/otp", p.page(p.demoSend))
		mux.Handle("POST /demo/api/verify", p.page(p.demoVerify))
	}
}

func (p *pages) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		h(w, r)
	})
}

func (p *pages) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		writeError(w, fmt.Errorf("page %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// sameOrigin refuses a state-changing request another site's page sent:
// its Origin must be this host, and Sec-Fetch-Site, when the browser sends
// it, same-origin. The SameSite=Strict cookie is the second wall.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	switch o := r.Header.Get("Origin"); o {
	case "":
		return true // not sent by a browser, which names the origin of every POST
	case "null":
		// A form posted from a page under Referrer-Policy: no-referrer (as
		// these are) names no origin, nor does a sandboxed or opaque one:
		// only Sec-Fetch-Site tells them apart.
		return site == "same-origin"
	default:
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
}

func sessionHash(v string) [32]byte { return sha256.Sum256([]byte(v)) }

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// session is the request's console session, nil when there is none (or
// its key was revoked, expired or lost the admin scope since). With
// authentication off every request has one.
func (p *pages) session(r *http.Request) *consoleSession {
	if !p.auth {
		return &consoleSession{}
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	h := sessionHash(c.Value)
	p.mu.Lock()
	s := p.sessions[h]
	if s != nil && time.Now().After(s.expires) {
		delete(p.sessions, h)
		s = nil
	}
	p.mu.Unlock()
	if s == nil {
		return nil
	}
	k, err := p.d.svc.keyByID(r.Context(), s.keyID)
	if err != nil || k == nil || !k.Active(time.Now()) || !k.Has(ScopeAdmin) {
		return nil
	}
	return s
}

func (p *pages) withSession(h func(w http.ResponseWriter, r *http.Request, s *consoleSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := p.session(r)
		if s == nil {
			writeError(w, apiErr(http.StatusUnauthorized, "unauthorized", "log in at /console with an admin key"))
			return
		}
		h(w, r, s)
	}
}

func (p *pages) console(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil {
		p.render(w, http.StatusOK, "login.html", nil)
		return
	}
	p.render(w, http.StatusOK, "console.html", map[string]any{"Auth": p.auth, "CSRF": s.csrf, "Embedded": p.d.Config.embedded, "Demo": p.demo})
}

func (p *pages) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		p.render(w, http.StatusForbidden, "login.html", map[string]any{"Error": "This form was sent from another site."})
		return
	}
	if !p.auth {
		http.Redirect(w, r, "/console", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	key := strings.TrimSpace(r.PostFormValue("key"))
	k, err := p.d.svc.LookupKey(r.Context(), key)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case k == nil || !k.Active(time.Now()):
		p.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Error": "Unknown, revoked or expired API key."})
		return
	case !k.Allows(clientAddr(r.RemoteAddr)):
		p.render(w, http.StatusForbidden, "login.html", map[string]any{"Error": "This API key may not be used from this address."})
		return
	case !k.Has(ScopeAdmin):
		p.render(w, http.StatusForbidden, "login.html", map[string]any{"Error": "This API key lacks the admin scope; the console needs an admin key (otpd keys create --scopes admin)."})
		return
	}
	v := randomToken()
	p.mu.Lock()
	p.sessions[sessionHash(v)] = &consoleSession{keyID: k.ID, csrf: randomToken(), expires: time.Now().Add(sessionLife)}
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/console", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

func (p *pages) logout(w http.ResponseWriter, r *http.Request) {
	s := p.session(r)
	if s == nil || !p.auth {
		http.Redirect(w, r, "/console", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
		writeError(w, apiErr(http.StatusForbidden, "forbidden", "logout without this page's token"))
		return
	}
	c, _ := r.Cookie(sessionCookie)
	p.mu.Lock()
	delete(p.sessions, sessionHash(c.Value))
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// counters reads a counter family of the registry by one label.
func counters(fams []*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

type conversion struct {
	Country  string  `json:"country"`
	Sends    float64 `json:"sends"`
	Verified float64 `json:"verified"`
	Rate     float64 `json:"rate"`
}

func (p *pages) state(w http.ResponseWriter, r *http.Request, _ *consoleSession) {
	fams, err := p.d.metrics.Registry.Gather()
	if err != nil {
		writeError(w, err)
		return
	}
	sends := counters(fams, "otpd_otp_sends_total", "country")
	verified := counters(fams, "otpd_otp_verified_total", "country")
	conv := []conversion{}
	for c, n := range sends {
		cv := conversion{Country: c, Sends: n, Verified: verified[c]}
		if n > 0 {
			cv.Rate = cv.Verified / n
		}
		conv = append(conv, cv)
	}
	sort.Slice(conv, func(i, j int) bool {
		return conv[i].Sends > conv[j].Sends || conv[i].Sends == conv[j].Sends && conv[i].Country < conv[j].Country
	})
	st := p.d.pool.Stats()
	var lastErrs []string
	for _, e := range p.d.pool.LastErrors() {
		lastErrs = append(lastErrs, e.Error())
	}
	responses := map[string]uint64{}
	for cs, n := range st.Responses {
		responses[cs.Name()] = n
	}
	p.mu.Lock()
	series := append([]sample(nil), p.samples...)
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"embedded": p.d.Config.embedded,
		"smsc":     p.d.Config.SMSC.Addr,
		"binds": map[string]any{"configured": p.d.Config.SMSC.Binds, "mode": p.d.Config.SMSC.BindMode, "up": st.BindsUp, "down": st.BindsDown,
			"window_in_use": st.WindowInUse, "window": st.Window, "sent": st.Sent, "received": st.Received, "reconnects": st.Reconnects,
			"throttled": st.Throttled, "uncertain": st.Uncertain, "responses": responses, "last_errors": lastErrs},
		"series":     series,
		"challenges": counters(fams, "otpd_challenges_total", "status"),
		"messages":   counters(fams, "otpd_messages_total", "state"),
		"conversion": conv,
		"webhooks":   p.webhooks(),
	})
}

func (p *pages) events(w http.ResponseWriter, r *http.Request, _ *consoleSession) {
	streamEvents(w, r, p.d.svc.events, "report", nil) // an admin's: every key's reports
}

// webhookSummary is the console's view of the callback queue: the
// reports whose posts failed and the queue's counts by state.
type webhookSummary struct {
	Counts   map[string]int `json:"counts"`
	Troubled []webhookRow   `json:"troubled"` // newest first, at most Limit
	Limit    int            `json:"limit"`
	Error    string         `json:"error,omitempty"` // the queue could not be read
}

// webhookRow is a troubled report without what may hold a secret: the
// URL's userinfo, query and fragment are cut, in the last error too.
type webhookRow struct {
	ID            int64      `json:"id"`
	MessageID     string     `json:"message_id"`
	Kind          string     `json:"kind"`
	Status        string     `json:"status"` // the delivery state it reports
	URL           string     `json:"url"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"` // while pending
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// webhooks reads the callback queue, or answers the last read when it is
// recent.
func (p *pages) webhooks() *webhookSummary {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	if p.hooks != nil && time.Since(p.hooksAt) < p.hookEvery {
		return p.hooks
	}
	// Not the request's context: the read serves every console, and one
	// that leaves must not leave an error for the others.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum := &webhookSummary{Counts: map[string]int{}, Troubled: []webhookRow{}, Limit: hookLimit}
	// The list first, then the counts: a report that moves on between the
	// two reads is counted in its newer state, never in an older one than
	// the list shows.
	vs, err := ListCallbackViews(ctx, p.d.store, false, hookLimit)
	var counts map[string]int
	if err == nil {
		counts, err = p.d.store.CountCallbacks(ctx)
	}
	if err != nil {
		p.d.log.Warn("console: reading the webhook queue failed", zap.Error(err))
		sum.Error = "the webhook queue could not be read"
		p.hooks, p.hooksAt = sum, time.Now() // tried again after hookEvery, not at every poll
		return sum
	}
	for _, st := range []string{callbackPending, callbackFailed, callbackDone} {
		sum.Counts[st] = 0
	}
	for st, n := range counts {
		sum.Counts[st] = n
	}
	for _, v := range vs {
		row := webhookRow{ID: v.ID, MessageID: v.MessageID, Kind: v.Kind, Status: v.Status, URL: v.URL, State: v.State,
			Attempts: v.Attempts, LastError: redactURLs(v.LastError), CreatedAt: v.CreatedAt}
		if v.Kind != callbackSMPP { // an SMPP report's "URL" is its application's system_id
			row.URL = redactURL(v.URL)
		}
		if v.State == callbackPending {
			next := v.NextAttemptAt
			row.NextAttemptAt = &next
		}
		sum.Troubled = append(sum.Troubled, row)
	}
	p.hooks, p.hooksAt = sum, time.Now()
	return sum
}

// demoJSON reads a try-it request: JSON only (a cross-site form cannot send
// it without a preflight) and from this origin.
func (p *pages) demoJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if !sameOrigin(r) {
		return apiErr(http.StatusForbidden, "forbidden", "sent from another site")
	}
	api := &API{svc: p.d.svc}
	return api.decode(w, r, v)
}

func (p *pages) demoSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone string `json:"phone"`
	}
	if err := p.demoJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !p.d.pool.Ready() {
		writeError(w, apiErr(http.StatusServiceUnavailable, "smsc_unavailable", "no SMSC bind is up; try again shortly"))
		return
	}
	since := time.Now().Add(-time.Millisecond)
	c, err := p.d.svc.Create(r.Context(), CreateRequest{Phone: req.Phone}, "")
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]any{"id": c.ID, "phone": MaskPhone(c.Phone), "expires_at": c.ExpiresAt, "attempts_left": max(0, c.MaxAttempts-c.Attempts)}
	if p.d.sim != nil {
		// The embedded simulator's copy of the SMS, as a phone would show it.
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		m, err := p.d.sim.WaitForMessage(ctx, simulator.Filter{To: strings.TrimPrefix(c.Phone, "+"), Since: since})
		cancel()
		if err == nil {
			out["sms"] = map[string]any{"text": m.Text, "code": m.Code, "from": m.From}
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (p *pages) demoVerify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	}
	if err := p.demoJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	c, _, err := p.d.svc.GetChallenge(r.Context(), req.ID, "")
	if err == nil && c.KeyID != "" {
		err = errNoChallenge // a client's challenge, not one of the page's
	}
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := p.d.svc.Verify(r.Context(), req.ID, req.Code, "")
	var ae *APIError
	if errors.As(err, &ae) {
		writeJSON(w, ae.Status, map[string]any{"status": "denied", "error": map[string]string{"code": ae.Code, "message": ae.Message}})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
