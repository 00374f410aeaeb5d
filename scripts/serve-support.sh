# Sourced by the loopback checks of `megafs serve` (load-check.sh, server-attack.sh).
# start_megafs_server LOG MODELS [serve flags...]: builds the CLI if $MEGAFS_BIN (default
# .build/release/megafs) is missing, starts the server on a random port writing LOG, stops it on
# exit, and waits until it is ready. Sets $port and $server (its PID).
start_megafs_server() {
  local log=$1 models=$2; shift 2
  local bin=${MEGAFS_BIN:-.build/release/megafs}
  [ -x "$bin" ] || swift build -c release --product megafs
  mkdir -p "$(dirname "$log")"
  port=$(( 20000 + RANDOM % 20000 ))
  "$bin" serve --models "$models" --port "$port" "$@" > "$log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 600); do
    if curl -fs "http://127.0.0.1:$port/readyz" > /dev/null 2>&1; then return 0; fi
    kill -0 "$server" 2>/dev/null || { echo "server exited; see $log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready after 120 s; see $log" >&2
  exit 1
}
