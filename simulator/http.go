package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpd/otpd/api"
	"github.com/otpd/otpd/smpp"
)

// newHandler builds the HTTP API:
//
//	GET    /api/messages?to=&from=&system_id=&since=&limit=   {"messages": [...]}, newest first
//	       ...&wait=10s                           first waits (up to 1m) for a complete match
//	GET    /api/messages/latest?to=&...&since=&wait=   the match that completed last; 404 if none
//	DELETE /api/messages?to=&from=&system_id=&since=   forget the matches (all with no filter)
//	GET    /api/messages/{id}                     one message (any of its segments' ids)
//	DELETE /api/messages/{id}                     forget one message
//	POST   /api/messages/{id}/receipt {"stat","err","delay"}   send (or schedule) its receipt
//	POST   /api/mo {"from","to","text","system_id"}   a mobile-originated deliver_sm
//	GET    /api/sessions?system_id=               {"sessions": [...]}
//	DELETE /api/sessions/{id}?abrupt=1            unbind (or cut) one session
//	GET    /api/events?to=&from=&system_id=       server-sent events: message, receipt
//	GET    /api/faults, PUT /api/faults           the faults (PUT replaces, PATCH merges)
//	GET    /metrics, GET /healthz
//	GET    /openapi.yaml                               api/smscsim.yaml, which describes all of it
//	GET    /                                      the inbox page (assets under /static/)
//
// since is a message id (only messages that completed after it) or an
// RFC 3339 time (only messages received after it). Errors are
// {"error": {"code", "message"}} with a 4xx (or 5xx) status.
func (sim *Simulator) newHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(path string, methods map[string]http.HandlerFunc) {
		allow := make([]string, 0, len(methods))
		for m := range methods {
			allow = append(allow, m)
			sim.routes = append(sim.routes, m+" "+path)
		}
		sort.Strings(allow)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			h := methods[r.Method]
			if h == nil && r.Method == http.MethodHead {
				h = methods[http.MethodGet]
			}
			if h == nil {
				w.Header().Set("Allow", strings.Join(allow, ", "))
				writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s; use %s", r.Method, path, strings.Join(allow, " or ")))
				return
			}
			h(w, r)
		})
	}
	route("/api/messages", map[string]http.HandlerFunc{
		http.MethodGet:    sim.httpMessages,
		http.MethodDelete: sim.httpDeleteMessages,
	})
	route("/api/messages/latest", map[string]http.HandlerFunc{http.MethodGet: sim.httpLatest})
	route("/api/messages/{id}", map[string]http.HandlerFunc{
		http.MethodGet:    sim.httpMessage,
		http.MethodDelete: sim.httpDeleteMessage,
	})
	route("/api/messages/{id}/receipt", map[string]http.HandlerFunc{http.MethodPost: sim.httpReceipt})
	route("/api/mo", map[string]http.HandlerFunc{http.MethodPost: sim.httpMO})
	route("/api/sessions", map[string]http.HandlerFunc{http.MethodGet: sim.httpSessions})
	route("/api/sessions/{id}", map[string]http.HandlerFunc{http.MethodDelete: sim.httpCloseSession})
	route("/api/events", map[string]http.HandlerFunc{http.MethodGet: sim.httpEvents})
	route("/api/faults", map[string]http.HandlerFunc{
		http.MethodGet:   sim.httpFaults,
		http.MethodPut:   sim.httpSetFaults(false),
		http.MethodPatch: sim.httpSetFaults(true),
	})
	prom := promhttp.HandlerFor(sim.metrics.reg, promhttp.HandlerOpts{})
	route("/metrics", map[string]http.HandlerFunc{http.MethodGet: prom.ServeHTTP})
	route("/openapi.yaml", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(api.SMSCSim)
	}})
	route("/healthz", map[string]http.HandlerFunc{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}})
	sim.pageHandlers(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Routes are the method and pattern of each route of the HTTP API
// ("GET /api/messages"); api/smscsim.yaml documents each.
func (sim *Simulator) Routes() []string {
	r := append([]string(nil), sim.routes...)
	sort.Strings(r)
	return r
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encoding the response failed"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// maxWait bounds the long poll of GET /api/messages?wait=.
const maxWait = time.Minute

// filter reads the filter of a query: to, from, system_id, since, limit.
func (sim *Simulator) filter(w http.ResponseWriter, q url.Values) (Filter, bool) {
	f := Filter{To: q.Get("to"), From: q.Get("from"), SystemID: q.Get("system_id")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit %q: want a count >= 0", l))
			return f, false
		}
		f.Limit = n
	}
	if s := q.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			f.Since = t
		} else if _, ok := sim.ids.parse(s); ok {
			f.SinceID = s
		} else {
			writeError(w, http.StatusBadRequest, "invalid_since", fmt.Sprintf("since %q: want a message id (%s) or an RFC 3339 time (2006-01-02T15:04:05.999Z)", s, sim.cfg.MessageIDFormat))
			return f, false
		}
	}
	return f, true
}

// wait reads the wait parameter: 0 when absent.
func wait(w http.ResponseWriter, q url.Values) (time.Duration, bool) {
	ws := q.Get("wait")
	if ws == "" {
		return 0, true
	}
	d, err := time.ParseDuration(ws)
	if err != nil || d < 0 || d > maxWait {
		writeError(w, http.StatusBadRequest, "invalid_wait", fmt.Sprintf("wait %q: want a duration from 0 to %s", ws, maxWait))
		return 0, false
	}
	return d, true
}

func (sim *Simulator) httpMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, ok := sim.filter(w, q)
	if !ok {
		return
	}
	d, ok := wait(w, q)
	if !ok {
		return
	}
	if d > 0 {
		// Long poll: block until a complete message matches, at most d;
		// then (found, or time up) the list as without wait.
		ctx, cancel := context.WithTimeout(r.Context(), d)
		sim.WaitForMessage(ctx, f)
		cancel()
	}
	msgs := sim.Messages(f)
	if msgs == nil {
		msgs = []Message{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (sim *Simulator) httpLatest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, ok := sim.filter(w, q)
	if !ok {
		return
	}
	d, ok := wait(w, q)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	m, err := sim.WaitForMessage(ctx, f)
	cancel()
	if err != nil {
		msg := "no message matches"
		if d > 0 {
			msg += " after waiting " + d.String()
		}
		writeError(w, http.StatusNotFound, "not_found", msg)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (sim *Simulator) httpDeleteMessages(w http.ResponseWriter, r *http.Request) {
	f, ok := sim.filter(w, r.URL.Query())
	if !ok {
		return
	}
	if f.Limit != 0 {
		writeError(w, http.StatusBadRequest, "invalid_limit", "limit does not apply to DELETE")
		return
	}
	n, err := sim.DeleteMessages(f)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_since", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "deleted", "deleted": n})
}

func (sim *Simulator) httpMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, ok := sim.Message(id)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no message with id %q", id))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (sim *Simulator) httpDeleteMessage(w http.ResponseWriter, r *http.Request) {
	if err := sim.DeleteMessage(r.PathValue("id")); err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "deleted", "deleted": 1})
}

func (sim *Simulator) httpReceipt(w http.ResponseWriter, r *http.Request) {
	var req ReceiptRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	sr, err := sim.SendReceipt(r.PathValue("id"), req)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_receipt", err.Error())
	default:
		writeJSON(w, http.StatusAccepted, sr)
	}
}

func (sim *Simulator) httpCloseSession(w http.ResponseWriter, r *http.Request) {
	abrupt, _ := strconv.ParseBool(r.URL.Query().Get("abrupt"))
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	err := sim.CloseSession(ctx, r.PathValue("id"), abrupt)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		// The unbind was not answered in time: the connection was cut.
		writeJSON(w, http.StatusOK, map[string]string{"status": "cut", "reason": err.Error()})
	case abrupt:
		writeJSON(w, http.StatusOK, map[string]string{"status": "cut"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "unbound"})
	}
}

// heartbeat is the interval of the event stream's keep-alive comments.
const heartbeat = 15 * time.Second

func (sim *Simulator) httpEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := sim.filter(w, r.URL.Query())
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "no_streaming", "the connection cannot stream")
		return
	}
	ch, cancel := sim.Subscribe(f, 1024)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The first line tells a client that it is subscribed: what happens
	// from now on reaches it.
	io.WriteString(w, ": subscribed\n\n")
	fl.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return // simulator closed, or the client fell behind
			}
			buf.Reset()
			buf.WriteString("event: " + ev.Type + "\ndata: ")
			enc := json.NewEncoder(&buf) // Encode ends with the \n of the data line
			enc.SetEscapeHTML(false)
			if enc.Encode(ev.Message) != nil {
				continue
			}
			buf.WriteString("\n")
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			fl.Flush()
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (sim *Simulator) httpSessions(w http.ResponseWriter, r *http.Request) {
	all := sim.Sessions()
	out := all[:0:0]
	sys := r.URL.Query().Get("system_id")
	for _, s := range all {
		if sys == "" || s.SystemID == sys {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (sim *Simulator) httpFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, sim.Faults())
}

func (sim *Simulator) httpSetFaults(merge bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if merge {
			f = sim.Faults()
		}
		if !decodeBody(w, r, &f) {
			return
		}
		if err := f.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_faults", err.Error())
			return
		}
		sim.SetFaults(f)
		writeJSON(w, http.StatusOK, sim.Faults())
	}
}

// decodeBody reads one JSON object into v, answering 400 when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "request body: "+err.Error())
		return false
	}
	return true
}

// MO is a mobile-originated message to inject.
type MO struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Text     string `json:"text"`
	SystemID string `json:"system_id"`
}

func (sim *Simulator) httpMO(w http.ResponseWriter, r *http.Request) {
	var mo MO
	if !decodeBody(w, r, &mo) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	n, err := sim.injectMO(ctx, mo)
	var re *smpp.ResponseError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"status": "delivered", "parts": n})
	case errors.Is(err, ErrInvalidMO):
		writeError(w, http.StatusBadRequest, "invalid_mo", err.Error())
	case errors.Is(err, ErrNoReceiver):
		writeError(w, http.StatusConflict, "no_receiver", err.Error())
	case errors.As(err, &re):
		writeError(w, http.StatusBadGateway, "esme_error", err.Error())
	default:
		writeError(w, http.StatusBadGateway, "delivery_failed", err.Error())
	}
}
