package otpd

import (
	"net/http"
	"strconv"
	"strings"
)

// registerDoors adds the front doors for identity platforms.
func (a *API) registerDoors() {
	a.registerTwilio()
	a.registerVerify()
	a.registerGateways()
}

// door adds a front door's route. Unlike route, it leaves authentication
// to the door, which answers a bad credential in its own shape. Routes
// lists it, so api/openapi.yaml must document it.
func (a *API) door(pattern string, h http.HandlerFunc) {
	route := pattern[strings.Index(pattern, " ")+1:]
	a.routes = append(a.routes, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		defer func() {
			a.svc.metrics.HTTP.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		}()
		h(rec, r)
	})
}
