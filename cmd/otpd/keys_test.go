package main

import (
	"net/url"
	"testing"
)

// TestTailURL: the filters are escaped as query values: a + in a number,
// an & or # in either cannot change the query.
func TestTailURL(t *testing.T) {
	u := tailURL("http://127.0.0.1:8080/", "delivered,failed", "+49 151&state=x#y")
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	if p.Path != "/v1/events" || q.Get("phone") != "+49 151&state=x#y" || q.Get("state") != "delivered,failed" || len(q) != 2 {
		t.Fatalf("%s: %v", u, q)
	}
	if u := tailURL("http://h", "", ""); u != "http://h/v1/events" {
		t.Fatalf("%s", u)
	}
}
