#!/usr/bin/env bash
# Runs a command with one shared etcd + kube-apiserver up for its whole duration:
#   tests/servers/with-apiserver.sh deno test -A --parallel
# Starts tests/servers/run-apiserver.ts, waits until it is ready, exports KR_TEST_KUBECONFIG (read
# by sharedApiServer() in tests/fixtures/apiserver.ts), runs the command, then stops the servers.
# Exits with the command's status; if the servers cannot start, says why and exits 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deno=${DENO:-deno}
envfile=$(mktemp /tmp/kr-apiserver-env.XXXXXX)
log=$(mktemp /tmp/kr-apiserver-run.XXXXXX)
rm -f "$envfile"
"$deno" run -A "$here/run-apiserver.ts" start --env-file "$envfile" >"$log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -f "$envfile" "$log"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  [ -s "$envfile" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "with-apiserver: the API server did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done
if [ ! -s "$envfile" ]; then
  echo "with-apiserver: the API server was not ready after 120 s:" >&2
  cat "$log" >&2
  exit 1
fi
# shellcheck disable=SC1090
. "$envfile"
echo "with-apiserver: KR_TEST_KUBECONFIG=$KR_TEST_KUBECONFIG" >&2
"$@"
