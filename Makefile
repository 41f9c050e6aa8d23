# otpd: SMS one-time passwords over SMPP 3.4.
#
#   make run     start the daemon on its embedded default
#   make test    set up what the tests need, vet, run every test with -race
#                (the store's on SQLite and again on PostgreSQL),
#                then every fuzz target for TEST_FUZZTIME inputs each
#   make bench   codec and session benchmarks (figures go in README.md)
#   make fuzz    run every fuzz target for FUZZTIME each
#   make chaos   the long fault suite (a short one runs in make test)
#   make lint    gofmt and go vet

GO       ?= go
FUZZTIME ?= 30s
# make test (and so CI) fuzzes each target for this many inputs: a bounded
# search for new crashers on every run, beyond the seed corpus go test
# replays (a count, not a duration: see scripts/fuzz.sh).
TEST_FUZZTIME ?= 50000x
NODE_DIR := integration/node

.PHONY: run test setup bench fuzz lint chaos

run:
	$(GO) run ./cmd/otpd serve

# The interop tests drive the npm package smpp; npm ci installs it from the
# committed lock file.
setup: $(NODE_DIR)/node_modules/.package-lock.json

$(NODE_DIR)/node_modules/.package-lock.json: $(NODE_DIR)/package-lock.json
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error

# -count=1: the integration tests build and run the binaries themselves, so
# go test's cache cannot tell when the code under them changed; never reuse
# a result.
# The store's tests run on PostgreSQL as well, on the server at
# OTPD_TEST_POSTGRES_DSN (this machine's, by default); a server that does
# not answer fails them. The otpd package then runs a second time with
# every test daemon's store on PostgreSQL.
OTPD_TEST_POSTGRES_DSN ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export OTPD_TEST_POSTGRES_DSN

test: setup
	$(GO) vet ./...
	OTPD_INTEROP_REQUIRED=1 $(GO) test -race -count=1 -timeout 10m ./...
	OTPD_TEST_STORE=postgres $(GO) test -race -count=1 -timeout 10m ./otpd/
	GO=$(GO) scripts/fuzz.sh $(TEST_FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./smpp/...

# scripts/fuzz.sh says what a failure leaves behind.
fuzz:
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

chaos:
	OTPD_CHAOS=long OTPD_INTEROP_REQUIRED=1 $(GO) test -race -count=1 -run Chaos -timeout 30m ./integration/ -v
