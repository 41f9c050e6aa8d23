package otpd

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The custom-gateway doors of identity platforms: Mosaic's API-key
// gateway, ExSign's token gateway and the generic HTTP sender of NetIQ
// Advanced Authentication and privacyIDEA.

func (a *API) registerGateways() {
	a.door("POST /gateway/mosaic", a.mosaicSend)
	a.door("GET /gateway/mosaic", a.mosaicValidate)
	a.door("POST /gateway/exsign", a.exsignSend)
	a.door("GET /gateway/http", a.httpSend)
	a.door("POST /gateway/http", a.httpSend)
}

// mosaicSend takes Mosaic's {"phone_number", "sender_id", "message"} with
// X-API-Key and answers 200 once the SMS is queued.
func (a *API) mosaicSend(w http.ResponseWriter, r *http.Request) {
	key, err := a.authenticate(r, r.Header.Get("X-API-Key"))
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		PhoneNumber string `json:"phone_number"`
		SenderID    string `json:"sender_id"`
		Message     string `json:"message"`
	}
	if err := a.decodeForSend(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	m, err := a.svc.SendMessage(r.Context(), MessageRequest{To: a.svc.gatewayPhone(req.PhoneNumber), Text: req.Message, From: req.SenderID}, keyID(key))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": m.ID, "status": StateQueued})
}

// mosaicValidate answers Mosaic's check of the gateway: the
// X-Verification-Key echoed as {"key"} when the API key is right, 400
// otherwise.
func (a *API) mosaicValidate(w http.ResponseWriter, r *http.Request) {
	vk := r.Header.Get("X-Verification-Key")
	presented := r.Header.Get("X-API-Key")
	_, err := a.authenticate(r, presented)
	if err != nil || vk == "" || (a.authRequired && presented == "") {
		msg := "X-API-Key does not match"
		if err == nil {
			msg = "X-Verification-Key is required"
		}
		writeError(w, apiErr(http.StatusBadRequest, "validation_failed", "%s", msg))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"key": vk})
}

// exsignKey reads "Authorization: token <base64 of the key>", the bare
// key after "token", or the bare key alone.
func exsignKey(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(v) > 6 && strings.EqualFold(v[:6], "token ") {
		v = strings.TrimSpace(v[6:])
	}
	if strings.HasPrefix(v, "otpd_") {
		return v
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && utf8.Valid(b) {
		return strings.TrimSpace(string(b))
	}
	return v
}

type exsignAnswer struct {
	IsSuccess    bool   `json:"IsSuccess"`
	ErrorDetails string `json:"ErrorDetails"`
}

// exsignSend takes ExSign's {"MobileNumber", "MessageText"}; the answer is
// always HTTP 200, success or not in IsSuccess.
func (a *API) exsignSend(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) {
		msg := "internal error"
		var e *APIError
		if errors.As(err, &e) {
			msg = e.Message
		}
		writeJSON(w, http.StatusOK, exsignAnswer{ErrorDetails: msg})
	}
	key, err := a.authenticate(r, exsignKey(r))
	if err != nil {
		fail(err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		fail(err)
		return
	}
	var req struct {
		MobileNumber string `json:"MobileNumber"`
		MessageText  string `json:"MessageText"`
	}
	if err := a.decodeForSend(w, r, &req); err != nil {
		fail(err)
		return
	}
	if _, err := a.svc.SendMessage(r.Context(), MessageRequest{To: a.svc.gatewayPhone(req.MobileNumber), Text: req.MessageText}, keyID(key)); err != nil {
		fail(err)
		return
	}
	writeJSON(w, http.StatusOK, exsignAnswer{IsSuccess: true})
}

// gatewayPhone reads a number as platforms send it: E.164 with or
// without +, 00 and the country code, or national in the default region.
// Digits without a prefix are read as international first when that
// gives a valid number.
func (s *Service) gatewayPhone(raw string) string {
	v := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
			return -1
		}
		return r
	}, strings.TrimSpace(raw))
	if v == "" || v[0] == '+' || strings.HasPrefix(v, "00") || v[0] == '0' {
		return v
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return v
		}
	}
	if _, err := parsePhone("+"+v, "", true); err == nil {
		return "+" + v
	}
	if s.cfg.OTP.DefaultRegion == "" {
		return "+" + v // nothing else to read it in: the error names the number as given
	}
	return v
}

// Default parameter names of /gateway/http.
var (
	defaultPhoneParams  = []string{"to", "phone", "number"}
	defaultTextParams   = []string{"text", "message", "body"}
	defaultSenderParams = []string{"from", "sender"}
)

// clickatellCode is the error number of /gateway/http's failure answer,
// after Clickatell's HTTP API (001 authentication, 101 bad parameter,
// 105 bad destination, 113 too many parts, ...).
func clickatellCode(e *APIError) string {
	switch e.Code {
	case "unauthorized", "forbidden":
		return "001"
	case "invalid_phone", "country_not_allowed":
		return "105"
	case "text_too_long":
		return "113"
	case "rate_limited":
		return "116"
	case "smsc_unavailable", "unavailable":
		return "114"
	case "internal":
		return "901"
	}
	return "101"
}

// httpSend is the generic HTTP sender: GET or POST, query, form or JSON
// parameters, basic auth (the key as password) or Bearer; a plain-text
// answer in the key's success and failure forms.
func (a *API) httpSend(w http.ResponseWriter, r *http.Request) {
	presented := bearer(r)
	if presented == "" {
		_, presented, _ = r.BasicAuth()
	}
	key, err := a.authenticate(r, presented)
	ks := KeySettings{}
	if err == nil && key != nil {
		ks, err = a.svc.keySettings(r.Context(), key.ID)
	}
	answer := func(status int, err error, id string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err == nil {
			w.WriteHeader(status)
			tmpl := ks.Success
			if tmpl == "" {
				tmpl = "ID: {id}"
			}
			fmt.Fprintln(w, strings.ReplaceAll(tmpl, "{id}", id))
			return
		}
		var e *APIError
		if !errors.As(err, &e) {
			e = apiErr(http.StatusInternalServerError, "internal", "internal error")
		}
		if e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="otpd"`)
		}
		w.WriteHeader(e.Status)
		tmpl := ks.Failure
		if tmpl == "" {
			tmpl = "ERR: {code}, {reason}"
		}
		fmt.Fprintln(w, strings.NewReplacer("{code}", clickatellCode(e), "{reason}", e.Message).Replace(tmpl))
	}
	if err != nil {
		answer(0, err, "")
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		answer(0, err, "")
		return
	}
	params, err := a.gatewayParams(w, r)
	if err != nil {
		answer(0, err, "")
		return
	}
	pick := func(names, defaults []string) string {
		if len(names) == 0 {
			names = defaults
		}
		for _, n := range names {
			if v, ok := params[strings.ToLower(n)]; ok && v != "" {
				return v
			}
		}
		return ""
	}
	to, text := pick(ks.PhoneParams, defaultPhoneParams), pick(ks.TextParams, defaultTextParams)
	if to == "" {
		answer(0, apiErr(http.StatusBadRequest, "invalid_phone", "no number in any of the parameters %s", strings.Join(orDefault(ks.PhoneParams, defaultPhoneParams), ", ")), "")
		return
	}
	if text == "" {
		answer(0, apiErr(http.StatusBadRequest, "invalid_text", "no text in any of the parameters %s", strings.Join(orDefault(ks.TextParams, defaultTextParams), ", ")), "")
		return
	}
	if err := a.unavailable(); err != nil {
		answer(0, err, "")
		return
	}
	m, err := a.svc.SendMessage(r.Context(), MessageRequest{To: a.svc.gatewayPhone(to), Text: text, From: pick(nil, defaultSenderParams)}, keyID(key))
	if err != nil {
		answer(0, err, "")
		return
	}
	answer(http.StatusOK, nil, m.ID)
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}

// gatewayParams reads the query, a form body or a JSON object body into
// one map of lower-cased names; body values win over the query's.
func (a *API) gatewayParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, a.svc.cfg.HTTP.MaxBody)
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			out[strings.ToLower(k)] = v[0]
		}
	}
	if r.Method != http.MethodPost {
		return out, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tooLarge := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErr(http.StatusRequestEntityTooLarge, "body_too_large", "body larger than %d bytes", mbe.Limit)
		}
		return nil
	}
	switch mt {
	case "application/json":
		var obj map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			if e := tooLarge(err); e != nil {
				return nil, e
			}
			return nil, apiErr(http.StatusBadRequest, "invalid_json", "the body is not a JSON object: %v", err)
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				out[strings.ToLower(k)] = v
			case json.Number:
				out[strings.ToLower(k)] = v.String()
			}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data", "":
		if err := r.ParseMultipartForm(a.svc.cfg.HTTP.MaxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			if e := tooLarge(err); e != nil {
				return nil, e
			}
			return nil, apiErr(http.StatusBadRequest, "invalid_form", "the body is not a form: %v", err)
		}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				out[strings.ToLower(k)] = v[0]
			}
		}
	default:
		return nil, apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send a form, JSON or query parameters")
	}
	return out, nil
}
