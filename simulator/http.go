package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
//	GET    /api/messages?to=&from=&system_id=&limit=   {"messages": [...]}, newest first
//	       ...&wait=10s                                 first waits (up to 1m) for a complete match
//	DELETE /api/messages                               forget all messages
//	GET    /api/messages/{id}                          one message (any of its segments' ids)
//	POST   /api/mo {"from","to","text","system_id"}    a mobile-originated deliver_sm
//	GET    /api/sessions                               {"sessions": [...]}
//	GET    /api/faults, PUT /api/faults                the faults (PUT replaces, PATCH merges)
//	GET    /metrics, GET /healthz
//	GET    /openapi.yaml                               api/smscsim.yaml, which describes all of it
//
// Errors are {"error": {"code", "message"}} with a 4xx (or 5xx) status.
func (sim *Simulator) newHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(path string, methods map[string]http.HandlerFunc) {
		allow := make([]string, 0, len(methods))
		for m := range methods {
			allow = append(allow, m)
			sim.routes = append(sim.routes, m+" "+path)
		}
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
		http.MethodDelete: sim.httpReset,
	})
	route("/api/messages/{id}", map[string]http.HandlerFunc{http.MethodGet: sim.httpMessage})
	route("/api/mo", map[string]http.HandlerFunc{http.MethodPost: sim.httpMO})
	route("/api/sessions", map[string]http.HandlerFunc{http.MethodGet: sim.httpSessions})
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

func (sim *Simulator) httpMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{To: q.Get("to"), From: q.Get("from"), SystemID: q.Get("system_id")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid_limit", fmt.Sprintf("limit %q: want a count >= 0", l))
			return
		}
		f.Limit = n
	}
	if ws := q.Get("wait"); ws != "" {
		// Long poll: block until a complete message matches, at most wait.
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, "invalid_wait", fmt.Sprintf("wait %q: want a duration from 0 to %s", ws, maxWait))
			return
		}
		// Then (found, or time up) the list as without wait.
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

func (sim *Simulator) httpReset(w http.ResponseWriter, r *http.Request) {
	sim.Reset()
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
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

func (sim *Simulator) httpSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sessions": sim.Sessions()})
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
