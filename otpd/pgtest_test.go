package otpd

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"
)

// testPostgresURL gives the URL of a fresh schema on the PostgreSQL server
// of OTPD_TEST_POSTGRES_DSN, dropped at cleanup. Without the variable the
// test skips (a developer's machine); with it, a server that does not
// answer fails the test (CI sets it: .ci/run).
func testPostgresURL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("OTPD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("OTPD_TEST_POSTGRES_DSN is not set (CI sets it; e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "otpd_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("PostgreSQL at OTPD_TEST_POSTGRES_DSN: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// testOnPostgres says whether this run puts every test daemon's store on
// PostgreSQL (OTPD_TEST_STORE=postgres: make test runs the package so too).
func testOnPostgres() bool { return os.Getenv("OTPD_TEST_STORE") == "postgres" }
