#!/usr/bin/env bash
# End-to-end OTPs per second through otpd instances sharing one store, on
# one smscsim: the figure of the README's "several instances" line.
#
#   scripts/bench-instances.sh [-n OTPS] [-i INSTANCES] [-d DATABASE_URL]
#
# Without -d the store is SQLite (one instance only). With -d every
# instance uses that PostgreSQL database: it must be empty or otpd's, and
# the run leaves its rows there. Builds the binaries into a temporary
# directory; the limits are off, as the figure measures the pipeline.
set -euo pipefail

n=20000
instances=1
db=""
while getopts "n:i:d:" o; do
	case $o in
	n) n=$OPTARG ;;
	i) instances=$OPTARG ;;
	d) db=$OPTARG ;;
	*) echo "usage: $0 [-n OTPS] [-i INSTANCES] [-d DATABASE_URL]" >&2; exit 2 ;;
	esac
done
if [[ -z $db && $instances -ne 1 ]]; then
	echo "$0: several instances need a shared store: -d postgres://..." >&2
	exit 2
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

cd "$(dirname "$0")/.."
go build -o "$tmp/otpd" ./cmd/otpd
go build -o "$tmp/smscsim" ./cmd/smscsim

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smpp=127.0.0.1:$(port)
"$tmp/smscsim" --smpp "$smpp" --http off --dlr-delay 1ms --log-level warn >"$tmp/smscsim.log" 2>&1 &
pids+=($!)

store=()
[[ -n $db ]] && store=(--database "$db")
mkdir -p "$tmp/d1"
key=$("$tmp/otpd" keys create --data "$tmp/d1" "${store[@]}" --name bench)

urls=()
for i in $(seq "$instances"); do
	addr=127.0.0.1:$(port)
	# Every instance of one store has the same secret.key: the first's.
	mkdir -p "$tmp/d$i"
	[[ $i -gt 1 ]] && cp "$tmp/d1/secret.key" "$tmp/d$i/"
	"$tmp/otpd" serve --http "$addr" --data "$tmp/d$i" "${store[@]}" \
		--smsc "$smpp" --system-id otpd --password bench --source-addr OTPD --window 100 \
		--limit-phone off --limit-global off --limit-country off --limit-key off --limit-prefix off \
		>"$tmp/otpd$i.log" 2>&1 &
	pids+=($!)
	urls+=(--url "http://$addr")
	for _ in $(seq 100); do
		curl -sf "http://$addr/readyz" >/dev/null && break
		sleep 0.1
	done
done

"$tmp/otpd" bench otp "${urls[@]}" --key "$key" --n "$n" --concurrency 32 --no-verify
