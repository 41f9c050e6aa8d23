package otpd

import (
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/otpd/otpd/smpp/coding"
)

// The Twilio-shaped doors: the Messages API (and Restcomm's copy of it)
// and Verify v2 (door_verify.go). Each answers in Twilio's own forms.

const twilioAPIVersion = "2010-04-01"

// twilioError is Twilio's JSON error: {"code", "message", "more_info", "status"}.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`

	retryAfter time.Duration
}

func (e *twilioError) Error() string { return e.Message }

func twErr(status, code int, format string, a ...any) *twilioError {
	return &twilioError{Code: code, Message: fmt.Sprintf(format, a...), MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), Status: status}
}

// twilioCode maps the service's errors onto Twilio's codes for the
// Messages API.
func twilioFromAPI(err error) *twilioError {
	var te *twilioError
	if errors.As(err, &te) {
		return te
	}
	var e *APIError
	if !errors.As(err, &e) {
		return twErr(http.StatusInternalServerError, 20500, "Internal Server Error")
	}
	var t *twilioError
	switch e.Code {
	case "unauthorized":
		t = twErr(http.StatusUnauthorized, 20003, "Authenticate")
	case "forbidden":
		t = twErr(http.StatusForbidden, 20003, "%s", e.Message)
	case "invalid_phone":
		t = twErr(http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: %s", e.Message)
	case "country_not_allowed":
		t = twErr(http.StatusBadRequest, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: %s", e.Message)
	case "text_too_long":
		t = twErr(http.StatusBadRequest, 21617, "The concatenated message body exceeds the length limit: %s", e.Message)
	case "invalid_text":
		t = twErr(http.StatusBadRequest, 21602, "Message body is required: %s", e.Message)
	case "invalid_sender":
		t = twErr(http.StatusBadRequest, 21212, "Invalid From Number (caller ID): %s", e.Message)
	case "invalid_callback_url":
		t = twErr(http.StatusBadRequest, 21609, "Invalid StatusCallback URL: %s", e.Message)
	case "rate_limited":
		t = twErr(http.StatusTooManyRequests, 20429, "Too Many Requests: %s", e.Message)
	case "smsc_unavailable", "unavailable":
		t = twErr(http.StatusServiceUnavailable, 20503, "Service Unavailable: %s", e.Message)
	case "not_found":
		t = twErr(http.StatusNotFound, 20404, "The requested resource was not found")
	case "body_too_large":
		t = twErr(http.StatusRequestEntityTooLarge, 20001, "%s", e.Message)
	default:
		if e.Status >= 500 {
			t = twErr(e.Status, 20500, "Internal Server Error")
		} else {
			t = twErr(e.Status, 20001, "%s", e.Message)
		}
	}
	t.retryAfter = e.RetryAfter
	return t
}

func writeTwilioError(w http.ResponseWriter, err error) {
	t := twilioFromAPI(err)
	if t.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((t.retryAfter+time.Second-1)/time.Second)))
	}
	if t.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	writeJSON(w, t.Status, t)
}

// sidFromID turns an otpd id (prefix_ and 26 base32 characters, 128 bits)
// into a Twilio sid: two letters and the same 128 bits in hex.
func sidFromID(sidPrefix, id string) string {
	_, enc, ok := strings.Cut(id, "_")
	if !ok {
		return ""
	}
	b, err := idEncoding.DecodeString(enc)
	if err != nil || len(b) != 16 {
		return ""
	}
	return sidPrefix + hex.EncodeToString(b)
}

// idFromSid is sidFromID's inverse; "" for anything not such a sid.
func idFromSid(sidPrefix, idPrefix, sid string) string {
	if len(sid) != 34 || !strings.HasPrefix(sid, sidPrefix) {
		return ""
	}
	b, err := hex.DecodeString(strings.ToLower(sid[2:]))
	if err != nil {
		return ""
	}
	return idPrefix + "_" + idEncoding.EncodeToString(b)
}

// twilioStatus is a delivery state as Twilio names a message's status.
func twilioStatus(state string) string {
	switch state {
	case StateQueued, StateSending:
		return "queued"
	case StateSubmitted:
		return "sent"
	case StateDelivered:
		return "delivered"
	case StateUndeliverable, StateExpired, StateRejected:
		return "undelivered"
	}
	return "failed"
}

// twilioErrorCode is the error_code Twilio gives a message that was not
// delivered: 30003 unreachable handset, 30007 filtered by the carrier,
// 30008 unknown.
func twilioErrorCode(state string) (int, string) {
	switch state {
	case StateUndeliverable, StateExpired:
		return 30003, "Unreachable destination handset"
	case StateRejected:
		return 30007, "Message filtered"
	case StateFailed:
		return 30008, "Unknown error"
	}
	return 0, ""
}

// twilioStatusForm is the StatusCallback's form for a message.
func twilioStatusForm(messageID string, c *callbackTarget, at time.Time) url.Values {
	sid := sidFromID("SM", messageID)
	st := twilioStatus(c.State)
	f := url.Values{}
	f.Set("MessageSid", sid)
	f.Set("SmsSid", sid)
	f.Set("MessageStatus", st)
	f.Set("SmsStatus", st)
	f.Set("AccountSid", c.AccountSid)
	f.Set("From", c.Sender)
	f.Set("To", c.Phone)
	f.Set("ApiVersion", twilioAPIVersion)
	if code, _ := twilioErrorCode(c.State); code != 0 {
		f.Set("ErrorCode", strconv.Itoa(code))
	}
	f.Set("RawDlrDoneDate", at.UTC().Format("0601021504"))
	return f
}

// twilioMessage is Twilio's Message resource.
type twilioMessage struct {
	AccountSid          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                string            `json:"from"`
	MessagingServiceSid *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	Sid                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

// rfc2822 is the form of Twilio's dates: "Thu, 03 Dec 2026 20:20:44 +0000".
const rfc2822 = "Mon, 02 Jan 2006 15:04:05 -0700"

// twilioDoor is one of the two shapes of the Messages resource.
type twilioDoor struct {
	base    string // "/2010-04-01" or "/restcomm/2012-04-24"
	coll    string // "Messages" or "SMS/Messages"
	restcom bool
}

var (
	twilioMessages   = twilioDoor{base: "/2010-04-01", coll: "Messages"}
	restcommMessages = twilioDoor{base: "/restcomm/2012-04-24", coll: "SMS/Messages", restcom: true}
)

func (d twilioDoor) uri(account, sid string) string {
	u := d.base + "/Accounts/" + account + "/" + d.coll
	if sid != "" {
		u += "/" + sid
	}
	return u + ".json"
}

func (a *API) twilioResource(d twilioDoor, account string, m *Message, body string, segments int, messagingService string) twilioMessage {
	sid := sidFromID("SM", m.ID)
	st := twilioStatus(m.State)
	from := m.Sender
	if from == "" {
		from = a.svc.cfg.SMSC.SourceAddr
	}
	if m.Segments > 0 {
		segments = m.Segments
	}
	r := twilioMessage{AccountSid: account, APIVersion: twilioAPIVersion, Body: body, DateCreated: m.CreatedAt.Format(rfc2822),
		DateUpdated: m.UpdatedAt.Format(rfc2822), Direction: "outbound-api", From: from, NumMedia: "0", NumSegments: strconv.Itoa(segments),
		PriceUnit: "USD", Sid: sid, Status: st, To: m.Phone, URI: d.uri(account, sid),
		SubresourceURIs: map[string]string{"media": d.base + "/Accounts/" + account + "/" + d.coll + "/" + sid + "/Media.json"}}
	if messagingService != "" {
		r.MessagingServiceSid = &messagingService
	}
	if len(m.Parts) > 0 && !m.Parts[0].SubmittedAt.IsZero() {
		s := m.Parts[0].SubmittedAt.Format(rfc2822)
		r.DateSent = &s
	}
	if code, msg := twilioErrorCode(m.State); code != 0 && finalState(m.State) {
		r.ErrorCode, r.ErrorMessage = &code, &msg
	}
	return r
}

// twilioAuth checks HTTP basic auth: any account sid (or API key sid) as
// the user, the otpd API key as the password (Twilio's auth token).
func (a *API) twilioAuth(r *http.Request) (*APIKey, string, error) {
	_, pass, ok := r.BasicAuth()
	if !ok && a.authRequired {
		return nil, "", twErr(http.StatusUnauthorized, 20003, "Authenticate")
	}
	key, err := a.authenticate(r, pass)
	if err != nil {
		return nil, "", twilioFromAPI(err)
	}
	return key, pass, nil
}

// twilioForm reads a form body (Twilio's SDKs send
// application/x-www-form-urlencoded) within the body limit.
func (a *API) twilioForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, a.svc.cfg.HTTP.MaxBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return twErr(http.StatusRequestEntityTooLarge, 20001, "body larger than %d bytes", mbe.Limit)
		}
		return twErr(http.StatusBadRequest, 20001, "the body is not a form: %v", err)
	}
	return nil
}

func (a *API) registerTwilio() {
	for _, d := range []twilioDoor{twilioMessages, restcommMessages} {
		a.door("POST "+d.base+"/Accounts/{AccountSid}/"+d.coll+".json", func(w http.ResponseWriter, r *http.Request) { a.twilioCreate(w, r, d, true) })
		a.door("GET "+d.base+"/Accounts/{AccountSid}/"+d.coll+".json", func(w http.ResponseWriter, r *http.Request) { a.twilioList(w, r, d) })
		a.door("GET "+d.base+"/Accounts/{AccountSid}/"+d.coll+"/{file}", func(w http.ResponseWriter, r *http.Request) { a.twilioGet(w, r, d) })
	}
	// Restcomm answers XML where the path has no .json.
	a.door("POST "+restcommMessages.base+"/Accounts/{AccountSid}/"+restcommMessages.coll, func(w http.ResponseWriter, r *http.Request) {
		a.twilioCreate(w, r, restcommMessages, false)
	})
}

// twilioWrite answers a resource as JSON, or as Restcomm's XML.
func twilioWrite(w http.ResponseWriter, status int, asJSON bool, v twilioMessage) {
	if asJSON {
		writeJSON(w, status, v)
		return
	}
	type smsXML struct {
		Sid         string
		DateCreated string
		DateUpdated string
		DateSent    string
		AccountSid  string
		From        string
		To          string
		Body        string
		Status      string
		Direction   string
		Price       string
		PriceUnit   string
		APIVersion  string `xml:"ApiVersion"`
		URI         string `xml:"Uri"`
	}
	x := smsXML{Sid: v.Sid, DateCreated: v.DateCreated, DateUpdated: v.DateUpdated, AccountSid: v.AccountSid, From: v.From, To: v.To,
		Body: v.Body, Status: v.Status, Direction: v.Direction, PriceUnit: v.PriceUnit, APIVersion: v.APIVersion, URI: strings.TrimSuffix(v.URI, ".json")}
	if v.DateSent != nil {
		x.DateSent = *v.DateSent
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"RestcommResponse"`
		SMS     smsXML   `xml:"SMSMessage"`
	}{SMS: x})
}

func twilioWriteError(w http.ResponseWriter, asJSON bool, err error) {
	if asJSON {
		writeTwilioError(w, err)
		return
	}
	t := twilioFromAPI(err)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(t.Status)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"RestcommResponse"`
		Exc     struct {
			Code     int
			Message  string
			MoreInfo string
			Status   int
		} `xml:"RestException"`
	}{Exc: struct {
		Code     int
		Message  string
		MoreInfo string
		Status   int
	}{t.Code, t.Message, t.MoreInfo, t.Status}})
}

func (a *API) twilioCreate(w http.ResponseWriter, r *http.Request, d twilioDoor, asJSON bool) {
	key, token, err := a.twilioAuth(r)
	if err != nil {
		twilioWriteError(w, asJSON, err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		twilioWriteError(w, asJSON, err)
		return
	}
	if err := a.twilioForm(w, r); err != nil {
		twilioWriteError(w, asJSON, err)
		return
	}
	account := r.PathValue("AccountSid")
	to, from, body := strings.TrimSpace(r.PostForm.Get("To")), strings.TrimSpace(r.PostForm.Get("From")), r.PostForm.Get("Body")
	switch {
	case to == "":
		twilioWriteError(w, asJSON, twErr(http.StatusBadRequest, 21604, "A 'To' phone number is required."))
		return
	case strings.TrimSpace(body) == "":
		twilioWriteError(w, asJSON, twErr(http.StatusBadRequest, 21602, "Message body is required."))
		return
	}
	if strings.HasPrefix(from, "+") {
		from = from[1:] // an E.164 From is an international S_ADDR
	}
	req := MessageRequest{To: to, Text: body, From: from}
	if vp := r.PostForm.Get("ValidityPeriod"); vp != "" {
		n, err := strconv.Atoi(vp)
		if err != nil || n < 1 || n > 36000 {
			twilioWriteError(w, asJSON, twErr(http.StatusBadRequest, 21623, "ValidityPeriod must be 1 to 36000 seconds"))
			return
		}
		req.ttl = time.Duration(n) * time.Second
	}
	kid := keyID(key)
	req.after.add(func(tx *Tx, _ string, m *Message) error {
		return insertDoorMessage(tx, m.ID, kid, account, m.CreatedAt)
	})
	if cb := r.PostForm.Get("StatusCallback"); cb != "" {
		if err := checkCallbackURL(cb); err != nil {
			twilioWriteError(w, asJSON, err)
			return
		}
		a.svc.registerCallback(&req.after, callbackTwilio, cb, token, account, kid)
	}
	if err := a.unavailable(); err != nil {
		twilioWriteError(w, asJSON, err)
		return
	}
	m, err := a.svc.SendMessage(r.Context(), req, kid)
	if err != nil {
		twilioWriteError(w, asJSON, err)
		return
	}
	segments := 1
	if sr, err := coding.Split(body, coding.SplitOptions{Auto: true, Method: coding.ConcatUDH8}); err == nil {
		segments = len(sr.Segments)
	}
	status := http.StatusCreated
	if d.restcom {
		status = http.StatusOK
	}
	twilioWrite(w, status, asJSON, a.twilioResource(d, account, m, body, segments, r.PostForm.Get("MessagingServiceSid")))
}

// twilioLoad reads a message by its sid for the account and key.
func (a *API) twilioLoad(r *http.Request, account, sid string, key *APIKey) (*Message, string, error) {
	id := idFromSid("SM", "msg", sid)
	if id == "" {
		return nil, "", twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
	}
	m, err := a.svc.GetMessage(r.Context(), id, keyID(key))
	if err != nil {
		return nil, "", err
	}
	acc, err := a.svc.store.doorMessageAccount(r.Context(), id)
	if err != nil {
		return nil, "", err
	}
	if acc != account {
		return nil, "", twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
	}
	body := ""
	if m.Sealed != nil { // the text is kept only until it is submitted
		body, _ = a.svc.sec.Open(m.ID, m.Sealed)
	}
	return m, body, nil
}

func (a *API) twilioGet(w http.ResponseWriter, r *http.Request, d twilioDoor) {
	key, _, err := a.twilioAuth(r)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		writeTwilioError(w, err)
		return
	}
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		writeTwilioError(w, twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path))
		return
	}
	account := r.PathValue("AccountSid")
	m, body, err := a.twilioLoad(r, account, sid, key)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.twilioResource(d, account, m, body, 1, ""))
}

func (a *API) twilioList(w http.ResponseWriter, r *http.Request, d twilioDoor) {
	key, _, err := a.twilioAuth(r)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeMessages); err != nil {
		writeTwilioError(w, err)
		return
	}
	account := r.PathValue("AccountSid")
	q := r.URL.Query()
	size, page := 50, 0
	if v := q.Get("PageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 1000 {
			writeTwilioError(w, twErr(http.StatusBadRequest, 20001, "PageSize must be 1 to 1000"))
			return
		}
	}
	if v := q.Get("Page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 0 || page > 100000 {
			writeTwilioError(w, twErr(http.StatusBadRequest, 20001, "Page must be a number from 0"))
			return
		}
	}
	ids, err := a.svc.store.listDoorMessages(r.Context(), keyID(key), account, size+1, page*size)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	more := len(ids) > size
	if more {
		ids = ids[:size]
	}
	list := make([]twilioMessage, 0, len(ids))
	for _, id := range ids {
		m, err := a.svc.GetMessage(r.Context(), id, keyID(key))
		if err != nil {
			continue // gone with retention
		}
		body := ""
		if m.Sealed != nil {
			body, _ = a.svc.sec.Open(m.ID, m.Sealed)
		}
		list = append(list, a.twilioResource(d, account, m, body, 1, ""))
	}
	pageURI := func(p int) string { return fmt.Sprintf("%s?PageSize=%d&Page=%d", d.uri(account, ""), size, p) }
	var next, prev *string
	if more {
		s := pageURI(page + 1)
		next = &s
	}
	if page > 0 {
		s := pageURI(page - 1)
		prev = &s
	}
	start := page * size
	end := start + len(list) - 1
	if len(list) == 0 {
		end = start
	}
	out := map[string]any{"messages": list, "end": end, "first_page_uri": pageURI(0), "next_page_uri": next, "page": page,
		"page_size": size, "previous_page_uri": prev, "start": start, "uri": pageURI(page)}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}
