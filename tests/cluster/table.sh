#!/usr/bin/env bash
# Merges the per-spec results of several e2e.sh runs into one Markdown table (for docs/testing.md):
#   table.sh "agent=/var/lib/krc.e2e-agent" "kube-proxy=/var/lib/krc.e2e-baseline" ...
# A spec a run did not include shows "—"; when one column has several runs, the last one counts.
set -euo pipefail
cols=() files=()
for a in "$@"; do cols+=("${a%%=*}"); files+=("${a#*=}"); done
{
  for k in "${!files[@]}"; do
    for d in ${files[$k]//,/ }; do
      [ -f "$d/specs.tsv" ] && awk -F'\t' -v c="$k" '{ sub(/  \(skipped: .*/, "", $3); print c "\t" $1 "\t" $3 }' "$d/specs.tsv"
    done
  done
} | gawk -F'\t' -v n="${#cols[@]}" -v names="$(IFS='|'; echo "${cols[*]}")" '
  { r[$3, $1] = $2; specs[$3] = 1 }
  END {
    split(names, h, "|")
    printf "| spec |"; for (i = 1; i <= n; i++) printf " %s |", h[i]; printf "\n|---|"
    for (i = 1; i <= n; i++) printf "---|"; printf "\n"
    m = asorti(specs, s)
    for (j = 1; j <= m; j++) {
      name = s[j]; sub(/^\[sig-network\] /, "", name)
      printf "| %s |", name
      for (i = 1; i <= n; i++) { v = r[s[j], i - 1]; printf " %s |", (v == "" ? "—" : v) }
      printf "\n"
    }
  }'
