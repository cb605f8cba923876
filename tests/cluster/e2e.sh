#!/usr/bin/env bash
# Runs upstream's e2e.test (built by tests/cluster/build.sh) against the cluster of
# tests/cluster/kcluster.sh, and prints one line per spec:
#   PASS   12.3s  [sig-network] Services should serve a basic endpoint from pods [Conformance]
# then "N passed, N failed, N skipped". Exit 0 only if nothing failed.
#
#   e2e.sh [--selection NAME] [--focus REGEX] [--skip REGEX] [--procs N] [--out DIR]
# Selections (the issue's): services (Services conformance), netpol, pods (Networking Granular
# Checks: Pods), conntrack, hostport, endpointslice; "all" = every one of them (default).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STATE=${KRC_STATE:-/var/lib/krc}
# shellcheck disable=SC1091
. "$STATE/env" || { echo "e2e.sh: no cluster at $STATE" >&2; exit 1; }
selection=all focus="" procs=${KRC_E2E_PROCS:-$(nproc)} out=""
# Never in scope here: disruptive/serial specs (they restart nodes or need the whole cluster),
# features this kernel or cluster lacks (SCTP connectivity: no sctp module; IPv6DualStack: an
# IPv4-only cluster), and specs that need a cloud load balancer. See docs/testing.md.
skip='\[Serial\]|\[Disruptive\]|\[Feature:SCTPConnectivity\]|\[Feature:IPv6DualStack\]|\[LinuxOnly\].*IPv6|LoadBalancer|\[Feature:Example\]'
while [ $# -gt 0 ]; do
  case "$1" in
    --selection) selection=$2; shift 2 ;;
    --focus) focus=$2; shift 2 ;;
    --skip) skip="$skip|$2"; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$focus" ]; then
  services='\[sig-network\] Services .*\[Conformance\]'
  netpol='\[sig-network\] Netpol '
  pods='\[sig-network\] Networking Granular Checks: Pods'
  conntrack='\[sig-network\] Conntrack'
  hostport='\[sig-network\] HostPort'
  endpointslice='\[sig-network\] EndpointSlice'
  case "$selection" in
    all) focus="$services|$netpol|$pods|$conntrack|$hostport|$endpointslice" ;;
    services | netpol | pods | conntrack | hostport | endpointslice) focus=${!selection} ;;
    *) echo "e2e.sh: unknown selection $selection" >&2; exit 2 ;;
  esac
fi
out=${out:-$STATE/e2e-$(date +%s)}
mkdir -p "$out"
# (A report left by an earlier run into the same directory must never pass for this one.)
rm -f "$out/report.json" "$out/specs.tsv" "$out/failures.txt" "$out"/junit_*.xml
# The suite runs in the control plane's network namespace: it reaches the API server and the
# nodes there, and nothing it sends can leave for the machine's own network.
ip netns exec "${ID}cp" env KUBECONFIG="$STATE/pki/admin.kubeconfig" PATH="$PATH" \
  "$KRC_BIN/ginkgo" --procs="$procs" --timeout=3h --no-color --silence-skips \
  --focus="$focus" --skip="$skip" --json-report=report.json --output-dir="$out" \
  "$KRC_BIN/e2e.test" -- \
  --provider=local --kubeconfig="$STATE/pki/admin.kubeconfig" --report-dir="$out" \
  --disable-log-dump --dump-logs-on-failure=false --allowed-not-ready-nodes=0 \
  --e2e-verify-service-account=true --node-os-distro=debian >"$out/ginkgo.log" 2>&1
status=$?
if [ ! -s "$out/report.json" ]; then
  echo "e2e.sh: no report (ginkgo exit $status); last lines of $out/ginkgo.log:"
  tail -n 40 "$out/ginkgo.log"
  echo "0 passed, 1 failed"
  exit 1
fi
# Specs outside the focus are in the report as "skipped" without a message; a spec that skipped
# itself at run time (e2eskipper) carries its reason, and is listed with it.
jq -r '.[].SpecReports[] | select(.LeafNodeType == "It") |
  select(.State != "skipped" or ((.Failure.Message // "") != "")) |
  [(if .State == "passed" then "PASS" elif .State == "skipped" or .State == "pending" then "SKIP" else "FAIL" end),
   ((.RunTime / 1e9 * 10 | floor / 10 | tostring) + "s"),
   ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")) +
     (if .State == "skipped" then "  (skipped: " + ((.Failure.Message // "") | split("\n")[0]) + ")" else "" end)]
  | join("\t")' "$out/report.json" |
  sort -t$'\t' -k3 >"$out/specs.tsv"
awk -F'\t' '{printf "%-5s %7s  %s\n", $1, $2, $3}' "$out/specs.tsv"
p=$(grep -c '^PASS' "$out/specs.tsv") f=$(grep -c '^FAIL' "$out/specs.tsv") s=$(grep -c '^SKIP' "$out/specs.tsv")
# Failure messages, one paragraph each, for the log.
jq -r '.[].SpecReports[] | select(.LeafNodeType == "It" and .State != "passed" and .State != "skipped") |
  "--- " + .LeafNodeText + "\n" + ((.Failure.Message // "") | .[0:1500]) +
  # What the spec logged last: for a Netpol spec, the reachability matrices it judged.
  "\n... the log of the spec from its last judgement:\n" + ((.CapturedGinkgoWriterOutput // "") |
    ((rindex("reachability: correct:") // (length - 3000)) | if . < 0 then 0 else . end) as $i | .[$i:$i + 7000])' \
  "$out/report.json" >"$out/failures.txt"
[ "$f" -gt 0 ] && { echo "failure messages: $out/failures.txt"; head -c 16000 "$out/failures.txt"; }
echo "e2e report: $out"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
