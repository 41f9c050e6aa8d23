package otpd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/otpd/otpd/api"
)

// API is the HTTP API of otpd.
type API struct {
	svc          *Service
	ready        func() bool
	authRequired bool
	mux          *http.ServeMux
	routes       []string // patterns served, for Routes
}

// NewAPI builds the HTTP handler. ready reports whether an SMSC bind is
// up; authRequired makes every /v1 route need an API key.
func NewAPI(svc *Service, ready func() bool, authRequired bool) *API {
	a := &API{svc: svc, ready: ready, authRequired: authRequired, mux: http.NewServeMux()}
	a.route("POST /v1/otp", a.createOTP)
	a.route("GET /v1/otp/{id}", a.getOTP)
	a.route("POST /v1/otp/{id}/verify", a.verifyOTP)
	a.route("POST /v1/otp/{id}/resend", a.resendOTP)
	a.route("POST /v1/otp/{id}/cancel", a.cancelOTP)
	a.route("POST /v1/messages", a.sendMessage)
	a.route("GET /v1/messages/{id}", a.getMessage)
	a.route("GET /v1/events", a.events)
	a.Handle("GET /metrics", promhttp.HandlerFor(svc.metrics.Registry, promhttp.HandlerOpts{}))
	a.Handle("GET /openapi.yaml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(api.OTPD)
	}))
	a.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.storeBroken(w) { // not healthy: only a restart (on a working disk) helps
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	a.Handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.storeBroken(w) {
			return
		}
		if a.svc.store.Failing() {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "the last writes to the store failed (disk full or busy?)"})
			return
		}
		if !a.ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no SMSC bind is up"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	a.registerDoors()
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiErr(http.StatusNotFound, "not_found", "no such route"))
	})
	return a
}

// storeBroken answers 503 when a sync of the store failed.
func (a *API) storeBroken(w http.ResponseWriter) bool {
	if !a.svc.store.Broken() {
		return false
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "the store failed to sync to disk; writes are refused"})
	return true
}

// Handle adds a route (used by the compatibility front doors).
func (a *API) Handle(pattern string, h http.Handler) {
	a.routes = append(a.routes, pattern)
	a.mux.Handle(pattern, h)
}

// Routes are the patterns the API serves ("POST /v1/otp"), in the order
// they were added; api/openapi.yaml documents each.
func (a *API) Routes() []string { return append([]string(nil), a.routes...) }

func (a *API) route(pattern string, h func(w http.ResponseWriter, r *http.Request, key *APIKey)) {
	route := pattern[strings.Index(pattern, " ")+1:]
	a.routes = append(a.routes, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		defer func() {
			a.svc.metrics.HTTP.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		}()
		key, err := a.authenticate(r, bearer(r))
		if err != nil {
			writeError(rec, err)
			return
		}
		h(rec, r, key)
	})
}

// ServeHTTP serves the API; a method not allowed on a known route is a
// JSON 405 too.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if !validRequestID(rid) {
		rid = NewID("req")
	}
	w.Header().Set("X-Request-Id", rid)
	rw := &responseLog{ResponseWriter: w}
	w = rw
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rw.errCode, rw.cause = "internal", fmt.Errorf("panic: %v", v)
			writeError(w, apiErr(http.StatusInternalServerError, "internal", "internal error"))
		}
		// A probe's 503 is its answer, not a failed request: the state it
		// reports is logged where it arises (a load balancer polling
		// /readyz through an outage would flood the log).
		if rw.code >= 500 && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			// Every 5xx with its cause, findable by the id the client got.
			a.svc.metrics.HTTPErrors.WithLabelValues(rw.errCode).Inc()
			a.svc.log.Error("request failed", zap.String("request_id", rid), zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", rw.code), zap.String("code", rw.errCode), zap.NamedError("cause", rw.cause))
		}
	}()
	_, pattern := a.mux.Handler(r)
	if pattern == "" || pattern == "/" {
		// ServeMux answers 405 in plain text; answer in JSON.
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := a.mux.Handler(probe); p != "" && p != "/" {
				w.Header().Set("Allow", m)
				writeError(w, apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
				return
			}
		}
	}
	a.mux.ServeHTTP(w, r)
}

// validRequestID accepts a client's X-Request-Id of up to 64 printable
// characters of a safe set, to echo and log.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// responseLog keeps a response's status and, for errors, their cause.
type responseLog struct {
	http.ResponseWriter
	code    int
	errCode string
	cause   error
}

func (l *responseLog) WriteHeader(code int) {
	if l.code == 0 {
		l.code = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *responseLog) Write(b []byte) (int, error) {
	if l.code == 0 {
		l.code = http.StatusOK
	}
	return l.ResponseWriter.Write(b)
}

func (l *responseLog) Flush() {
	if f, ok := l.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (l *responseLog) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// causeKeeper is a ResponseWriter that keeps the error behind an answer.
type causeKeeper interface{ keepCause(code string, err error) }

func (l *responseLog) keepCause(code string, err error) {
	if l.cause == nil {
		l.errCode, l.cause = code, err
	}
}

func (s *statusRecorder) keepCause(code string, err error) {
	if k, ok := s.ResponseWriter.(causeKeeper); ok {
		k.keepCause(code, err)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate checks an API key; with authentication off it returns nil.
func (a *API) authenticate(r *http.Request, key string) (*APIKey, error) {
	if !a.authRequired {
		return nil, nil
	}
	if key == "" {
		return nil, apiErr(http.StatusUnauthorized, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
	}
	k, err := a.svc.LookupKey(r.Context(), key)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, apiErr(http.StatusUnauthorized, "unauthorized", "unknown API key")
	}
	if !k.Active(time.Now()) {
		return nil, apiErr(http.StatusUnauthorized, "unauthorized", "this API key is %s", k.State(time.Now()))
	}
	if !k.Allows(clientAddr(r.RemoteAddr)) {
		return nil, apiErr(http.StatusForbidden, "forbidden", "this API key may not be used from this address")
	}
	return k, nil
}

func keyID(k *APIKey) string {
	if k == nil {
		return ""
	}
	return k.ID
}

// RequireContentType answers 415 unless the request's media type is one of
// types. A browser's page can send a cross-site POST only as a form or
// text/plain, or with no type, without asking first (CORS preflight).
func RequireContentType(r *http.Request, types ...string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
	}
	return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send %s with Content-Type: %s", strings.ToUpper(strings.TrimPrefix(types[0], "application/")), types[0])
}

// bodyless checks a POST that carries no body (resend, cancel): without
// an Authorization header (authentication off), which no cross-site page
// can add without a preflight, it must say Content-Type: application/json
// as well.
func (a *API) bodyless(r *http.Request) error {
	if r.Header.Get("Authorization") != "" {
		return nil
	}
	return RequireContentType(r, "application/json")
}

// decode reads a JSON body into v with the size limit; errors are 4xx.
// Unknown fields are refused (a typo must not pass as a default).
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := RequireContentType(r, "application/json"); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.svc.cfg.HTTP.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "invalid_json", "body has more than one JSON value")
	}
	return nil
}

// jsonError is the 4xx for a body that could not be read: no Go type
// names, no addresses, no library wording.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return apiErr(http.StatusRequestEntityTooLarge, "body_too_large", "body larger than %d bytes", mbe.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		return apiErr(http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time")
	case errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, "invalid_json", "body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(http.StatusBadRequest, "invalid_json", "body ends in the middle of its JSON")
	case errors.As(err, &se):
		return apiErr(http.StatusBadRequest, "invalid_json", "invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return apiErr(http.StatusBadRequest, "invalid_json", "send a JSON object")
		}
		return apiErr(http.StatusBadRequest, "invalid_json", "field %q must be %s", te.Field, jsonKind(te.Type))
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return apiErr(http.StatusBadRequest, "unknown_field", "unknown field %s", f)
	}
	return apiErr(http.StatusBadRequest, "invalid_json", "body is not a valid JSON object")
}

// jsonKind names a Go type as JSON does.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var e *APIError
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			e = apiErr(http.StatusServiceUnavailable, "unavailable", "request timed out")
			e.RetryAfter = time.Second
		case Unavailable(err):
			// Disk full, busy, or a sync that failed: try again later (or
			// on another instance); nothing of this request was kept,
			// except when not durable, where it may have been.
			e = apiErr(http.StatusServiceUnavailable, "store_unavailable", "the store cannot take writes now; try again shortly")
			e.RetryAfter = 5 * time.Second
		default:
			e = apiErr(http.StatusInternalServerError, "internal", "internal error")
		}
	}
	if k, ok := w.(causeKeeper); ok && e.Status >= 500 {
		k.keepCause(e.Code, err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// decodeForSend reads the body of a request that queues an SMS, which needs
// an SMSC bind up.
func (a *API) decodeForSend(w http.ResponseWriter, r *http.Request, v any) error {
	if err := a.decode(w, r, v); err != nil {
		return err
	}
	return a.unavailable()
}

// unavailable is the 503 for no SMSC bind.
func (a *API) unavailable() error {
	if a.ready() {
		return nil
	}
	e := apiErr(http.StatusServiceUnavailable, "smsc_unavailable", "no SMSC bind is up; try again shortly")
	e.RetryAfter = 5 * time.Second
	return e
}

type deliveryView struct {
	State      string    `json:"state"`
	MessageIDs []string  `json:"message_ids"`
	Segments   int       `json:"segments"`
	Stat       string    `json:"stat,omitempty"`
	Err        string    `json:"err,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func delivery(m *Message) *deliveryView {
	if m == nil {
		return nil
	}
	d := &deliveryView{State: m.State, MessageIDs: []string{}, Segments: m.Segments, Stat: m.Stat, Err: m.Err, Reason: m.Reason, UpdatedAt: m.UpdatedAt}
	if d.State == StateSending {
		d.State = StateQueued
	}
	for _, p := range m.Parts {
		d.MessageIDs = append(d.MessageIDs, p.SMSCID)
	}
	return d
}

type challengeView struct {
	ID           string        `json:"id"`
	Phone        string        `json:"phone"`
	Status       string        `json:"status"`
	ExpiresAt    time.Time     `json:"expires_at"`
	AttemptsLeft int           `json:"attempts_left"`
	Sends        int           `json:"sends"`
	Delivery     *deliveryView `json:"delivery,omitempty"`
}

func (a *API) view(c *Challenge, m *Message) challengeView {
	return challengeView{ID: c.ID, Phone: MaskPhone(c.Phone), Status: c.effectiveStatus(a.svc.now()), ExpiresAt: c.ExpiresAt,
		AttemptsLeft: max(0, c.MaxAttempts-c.Attempts), Sends: c.Sends, Delivery: delivery(m)}
}

func (a *API) createOTP(w http.ResponseWriter, r *http.Request, key *APIKey) {
	var req CreateRequest
	if err := a.decodeForSend(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	c, err := a.svc.Create(r.Context(), req, keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": c.ID, "phone": MaskPhone(c.Phone), "status": c.Status, "expires_at": c.ExpiresAt})
}

func (a *API) getOTP(w http.ResponseWriter, r *http.Request, key *APIKey) {
	c, m, err := a.svc.GetChallenge(r.Context(), r.PathValue("id"), keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(c, m))
}

func (a *API) verifyOTP(w http.ResponseWriter, r *http.Request, key *APIKey) {
	var req struct {
		Code json.RawMessage `json:"code"`
	}
	if err := a.decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	code := strings.Trim(string(req.Code), `"`) // a code sent as a number works too
	res, err := a.svc.Verify(r.Context(), r.PathValue("id"), code, keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) resendOTP(w http.ResponseWriter, r *http.Request, key *APIKey) {
	if err := a.bodyless(r); err != nil {
		writeError(w, err)
		return
	}
	if err := a.unavailable(); err != nil {
		writeError(w, err)
		return
	}
	c, err := a.svc.Resend(r.Context(), r.PathValue("id"), keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	_, m, _ := a.svc.GetChallenge(r.Context(), c.ID, keyID(key))
	writeJSON(w, http.StatusOK, a.view(c, m))
}

func (a *API) cancelOTP(w http.ResponseWriter, r *http.Request, key *APIKey) {
	if err := a.bodyless(r); err != nil {
		writeError(w, err)
		return
	}
	c, err := a.svc.Cancel(r.Context(), r.PathValue("id"), keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(c, nil))
}

type messageView struct {
	ID        string        `json:"id"`
	To        string        `json:"to"`
	From      string        `json:"from,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	Delivery  *deliveryView `json:"delivery"`
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, key *APIKey) {
	var req MessageRequest
	if err := a.decodeForSend(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	m, err := a.svc.SendMessage(r.Context(), req, keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, messageView{ID: m.ID, To: MaskPhone(m.Phone), From: m.Sender, CreatedAt: m.CreatedAt, Delivery: delivery(m)})
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request, key *APIKey) {
	m, err := a.svc.GetMessage(r.Context(), r.PathValue("id"), keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, messageView{ID: m.ID, To: MaskPhone(m.Phone), From: m.Sender, CreatedAt: m.CreatedAt, Delivery: delivery(m)})
}

// events streams delivery reports as server-sent events: the key's own
// (every key's for admin), filtered by ?state=a,b and ?phone= (the full
// number, compared in E.164).
func (a *API) events(w http.ResponseWriter, r *http.Request, key *APIKey) {
	all, err := a.svc.access(r.Context(), keyID(key), ScopeEvents)
	if err != nil {
		writeError(w, err)
		return
	}
	states := map[string]bool{}
	for _, s := range strings.Split(r.URL.Query().Get("state"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			states[s] = true
		}
	}
	phone := ""
	if p := r.URL.Query().Get("phone"); p != "" {
		pp, err := a.svc.parseRead(p)
		if err != nil {
			writeError(w, err)
			return
		}
		phone = pp.E164
	}
	kid := keyID(key)
	streamEvents(w, r, a.svc.events, "delivery", func(e Event) bool {
		return (all || e.keyID == kid) && (len(states) == 0 || states[e.State]) && (phone == "" || e.phone == phone)
	})
}
