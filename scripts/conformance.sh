#!/usr/bin/env bash
# Runs the shared conformance cases (../shared/conformance, kept outside the project) against the
# current build and prints one line per case and date. Developer tool; not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED:-../shared}/conformance"
if [ ! -f "$shared/compare.py" ]; then
  echo "skipped: the conformance cases are not here ($shared; set SHARED=... to the folder holding conformance/)"
  exit 0
fi
cargo build --quiet
target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target/debug/incentives"
failed=0
for case in "$shared"/s*/; do
  name=$(basename "$case")
  out=$(mktemp -d)
  args=()
  [ -f "$case/args.txt" ] && read -r -a args < "$case/args.txt"
  while read -r d; do
    [ -n "$d" ] || continue
    "$bin" run -q --input "$case/landing" --programs "$case/pipelines" --date "$d" --output "$out" "${args[@]}" || true
    result=$(python3 "$shared/compare.py" "$case/expected" "$out" --date "$d" | tail -1)
    echo "$name $d: $result"
    case "$result" in *" 0 failed"*) ;; *) failed=1 ;; esac
  done < "$case/dates.txt"
  rm -rf "$out"
done
exit $failed
