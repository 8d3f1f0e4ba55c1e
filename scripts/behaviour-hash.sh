#!/usr/bin/env bash
# Behaviour-preservation fingerprint: for every scenario in scenarios/ and each of its pinned
# seeds, prints `scenario seed outcome history_hash events_sha256`, one line per run, sorted.
#
#   scripts/behaviour-hash.sh [OUT_FILE]     (default: stdout)
#
# Run it before and after a refactoring that must not change behaviour and diff the two
# outputs: any line that differs is a run whose client history or event log changed. It uses a
# copy of the release binary (built first), so rebuilding while it runs changes nothing. On 2
# cores it takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp target/release/ksim "$tmp/ksim"
out=${1:-/dev/stdout}
{
  for file in scenarios/*.toml; do
    name=$(basename "$file" .toml)
    seeds=$(sed -n 's/^seeds *= *\[\(.*\)\]/\1/p' "$file" | tr -d ' ' | tr ',' ' ')
    for seed in $seeds; do
      dir="$tmp/$name-$seed"
      "$tmp/ksim" run "$file" --seed "$seed" --out "$dir" > /dev/null 2>&1 || true
      outcome=$(sed -n 's/^  "outcome": "\(.*\)",/\1/p' "$dir/summary.json")
      history=$(sed -n 's/^  "history_hash": "\(.*\)",*/\1/p' "$dir/summary.json")
      events=$(sha256sum "$dir/events.jsonl" | cut -d' ' -f1)
      echo "$name $seed $outcome $history $events"
    done
  done
} | sort > "$out"
