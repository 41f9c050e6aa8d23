package simulator

import (
	"embed"
	"io/fs"
	"net/http"
)

// The inbox page at / and its assets: plain HTML, CSS and JavaScript,
// embedded, with nothing from elsewhere (it works offline).
//
//go:embed inbox
var inboxFS embed.FS

// pageCSP allows the page only its own script, style and API: no inline
// script, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
}

func (sim *Simulator) pageHandlers(mux *http.ServeMux) {
	sub, _ := fs.Sub(inboxFS, "inbox")
	files := http.FileServerFS(sub)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		http.ServeFileFS(w, r, sub, "favicon.svg")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		if r.URL.Path == "" || r.URL.Path == "index.html" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
}
