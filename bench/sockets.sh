#!/usr/bin/env bash
# bench/sockets.sh [--quick]: what the socket, DNS and HTTP hooks cost.
#
#   1. a read on an fd the hooks do not know (a pipe): ns per call, with the
#      system call, and without it (bench/nosyscall.c preloaded below the
#      shim, and alone for the untraced run): the hook's own cost
#   2. a ping-pong on a TCP socket that is not HTTP: us per round trip
#      (2 sends, 2 receives)
#   3. a keep-alive HTTP request, client and server in one process: us per
#      request (a CLIENT and a SERVER span, a traceparent inserted); and the
#      server side alone as nginx serves wrk, on a socket whose recv and
#      writev make no system call (libnosyscall.so): ns per request
#   4. redis-server under redis-benchmark (-c 50 -t set,get): requests/s
#   5. nginx (1 worker, `return 200`) under wrk (-t1 -c32): requests/s
# each untraced (no LD_PRELOAD) and traced (the shim preloaded, always_on,
# OTLP to bench/sink), interleaved run by run; medians of REPEATS runs, the
# traced/untraced ratios side by side. Servers run under `timeout` and are
# stopped by pid. Builds a release shim into build-bench (OTLPAUTO_BENCH_BUILD
# picks another directory). The machine has 2 shared cores: trust ratios.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${OTLPAUTO_BENCH_BUILD:-$ROOT/build-bench}
if [[ ${1:-} == --quick ]]; then
	REPEATS=3 PIPE_N=1000000 PING_N=20000 HTTP_N=20000 REDIS_N=50000 WRK_SECONDS=3
else
	REPEATS=5 PIPE_N=5000000 PING_N=50000 HTTP_N=50000 REDIS_N=200000 WRK_SECONDS=10
fi
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(OTEL_|OTLPAUTO_|LD_PRELOAD$)' || true)
for tool in redis-server redis-benchmark nginx wrk; do
	command -v "$tool" >/dev/null || {
		echo "bench/sockets.sh: $tool is missing (apt-get install redis-server redis-tools nginx-light wrk)" >&2
		exit 1
	}
done

if [[ ! -f $BUILD/build.ninja ]]; then
	meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Db_lto=true -Dtests=false >&2
fi
ninja -C "$BUILD" libotlpauto.so bench/bench_sockets bench/libnosyscall.so bench/sink >&2
LIB=$BUILD/libotlpauto.so
B=$BUILD/bench

T=$(mktemp -d /tmp/otlpauto-bench-sockets.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT

rec() { echo "$2" >>"$T/$1"; }
med() { sort -g "$T/$1" | awk '{v[NR]=$1} END {print NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
calc() { awk "BEGIN {printf \"%.${2:-2}f\", $1}"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $1" >&2
	exit 1
}
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
# untraced first on odd runs, traced first on even ones
ordered() { if (($1 % 2)); then echo untraced traced; else echo traced untraced; fi; }

timeout 3600 "$B/sink" 0 >"$T/sink.out" &
PIDS+=($!)
for _ in $(seq 100); do grep -q port= "$T/sink.out" && break; sleep 0.05; done
SINK_PORT=$(field port <"$T/sink.out")
TRACED=(LD_PRELOAD="$LIB" OTEL_TRACES_SAMPLER=always_on
	OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT")
with_mode() { if [[ $1 == traced ]]; then env "${TRACED[@]}" "${@:2}"; else "${@:2}"; fi; }

micro_once() {
	local mode=$1 below=$B/libnosyscall.so
	rec "pipe.$mode" "$(with_mode "$mode" "$B/bench_sockets" pipe "$PIPE_N" | field ns_per_call)"
	if [[ $mode == traced ]]; then
		rec "hook.$mode" "$(env "${TRACED[@]}" LD_PRELOAD="$LIB $below" "$B/bench_sockets" pipe \
			$((PIPE_N * 20)) | field ns_per_call)"
	else
		rec "hook.$mode" "$(LD_PRELOAD=$below "$B/bench_sockets" pipe $((PIPE_N * 20)) |
			field ns_per_call)"
	fi
	rec "ping.$mode" "$(with_mode "$mode" "$B/bench_sockets" ping "$PING_N" | field us_per_roundtrip)"
	rec "http.$mode" "$(with_mode "$mode" "$B/bench_sockets" http "$HTTP_N" | field us_per_request)"
	if [[ $mode == traced ]]; then
		rec "served.$mode" "$(env "${TRACED[@]}" LD_PRELOAD="$LIB $below" "$B/bench_sockets" \
			served "$HTTP_N" | field ns_per_request)"
	else
		rec "served.$mode" "$(LD_PRELOAD=$below "$B/bench_sockets" served "$HTTP_N" |
			field ns_per_request)"
	fi
}

# Servers run as `timeout N env VARS server`: only the server gets the
# preload, and it stops by itself if this script dies.
redis_once() {
	local mode=$1 port pid out env=()
	port=$(free_port)
	[[ $mode == traced ]] && env=("${TRACED[@]}")
	timeout 600 env "${env[@]}" redis-server --bind 127.0.0.1 --port "$port" --save '' \
		--appendonly no --logfile "$T/redis.log" &
	pid=$!
	PIDS+=("$pid")
	wait_port "$port"
	out=$(redis-benchmark -h 127.0.0.1 -p "$port" -n "$REDIS_N" -c 50 -t set,get --csv)
	rec "redis.set.$mode" "$(awk -F'"' '$2 == "SET" {print $4}' <<<"$out")"
	rec "redis.get.$mode" "$(awk -F'"' '$2 == "GET" {print $4}' <<<"$out")"
	stop "$pid"
}

mkdir -p "$T/nginx"
nginx_once() {
	local mode=$1 port pid out env=()
	port=$(free_port)
	[[ $mode == traced ]] && env=("${TRACED[@]}")
	cat >"$T/nginx.conf" <<-EOF
		worker_processes 1;
		user nobody nogroup;
		pid $T/nginx/nginx.pid;
		error_log $T/nginx/error.log warn;
		events { worker_connections 1024; }
		http {
		    access_log off;
		    server {
		        listen 127.0.0.1:$port;
		        location / { return 200 "ok\n"; }
		    }
		}
	EOF
	timeout 600 env "${env[@]}" nginx -p "$T/nginx" -e "$T/nginx/error.log" -c "$T/nginx.conf" \
		-g 'daemon off;' &
	pid=$!
	PIDS+=("$pid")
	wait_port "$port"
	out=$(wrk -t1 -c32 -d"${WRK_SECONDS}s" "http://127.0.0.1:$port/")
	rec "nginx.$mode" "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
	stop "$pid"
}

for r in $(seq "$REPEATS"); do
	echo "run $r/$REPEATS" >&2
	for m in $(ordered "$r"); do micro_once "$m"; done
	for m in $(ordered "$r"); do redis_once "$m"; done
	for m in $(ordered "$r"); do nginx_once "$m"; done
done

ratio() { calc "$(med "$1.traced") / $(med "$1.untraced")" 3; }
verdict() { awk "BEGIN {print ($1 >= 0.95) ? \"met\" : \"missed\"}"; }
echo
echo "Socket hooks, medians of $REPEATS runs ($(nproc) cores, $(date -u +%F))"
echo
echo "| Measure | untraced | traced | added | traced/untraced |"
echo "|---|---|---|---|---|"
printf '| read() on a pipe, ns per call | %s | %s | %s ns | |\n' "$(med pipe.untraced)" \
	"$(med pipe.traced)" "$(calc "$(med pipe.traced) - $(med pipe.untraced)" 1)"
printf '| read() hook alone (no system call), ns per call | %s | %s | %s ns | |\n' \
	"$(med hook.untraced)" "$(med hook.traced)" "$(calc "$(med hook.traced) - $(med hook.untraced)" 2)"
printf '| non-HTTP TCP ping-pong, us per round trip (4 hooked calls) | %s | %s | %s us | |\n' \
	"$(med ping.untraced)" "$(med ping.traced)" "$(calc "$(med ping.traced) - $(med ping.untraced)" 2)"
printf '| HTTP request, client and server traced, us per request | %s | %s | %s us | |\n' \
	"$(med http.untraced)" "$(med http.traced)" "$(calc "$(med http.traced) - $(med http.untraced)" 2)"
printf '| HTTP request served (recv, writev; no system call), ns per request | %s | %s | %s ns | |\n' \
	"$(med served.untraced)" "$(med served.traced)" "$(calc "$(med served.traced) - $(med served.untraced)" 1)"
for key in redis.set redis.get nginx; do
	label=${key/redis.set/redis SET req\/s}
	label=${label/redis.get/redis GET req\/s}
	label=${label/nginx/nginx+wrk req\/s}
	r=$(ratio "$key")
	printf '| %s | %s | %s | | %s (target >= 0.95: %s) |\n' "$label" "$(med "$key.untraced")" \
		"$(med "$key.traced")" "$r" "$(verdict "$r")"
done
