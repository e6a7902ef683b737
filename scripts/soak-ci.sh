#!/usr/bin/env bash
# Runs .ci/run N times, each from a fresh clone of this repository's HEAD
# (what CI would check out), one after another. Prints each run's summary
# line, then how many runs passed and the name of every test that failed with
# the start of its failure message, read from each run's vitest JSON report.
# The clones are removed at the end, also when interrupted.
# Usage: scripts/soak-ci.sh N
set -uo pipefail

n=${1:-}
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/soak-ci.sh N   (N >= 1: how many fresh-clone runs of .ci/run)" >&2
  exit 2
fi

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d "${TMPDIR:-/tmp}/meshlet-soak-XXXXXX")
# Tests run Envoy as the proxy uid; like the checkout CI makes, the clone must be traversable.
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "note: uncommitted changes are not soaked; running HEAD $head"
fi

passed=0
failures="$work/failures.txt"
: >"$failures"
for i in $(seq 1 "$n"); do
  clone="$work/run-$i"
  if ! git clone -q --no-hardlinks "$repo" "$clone" || ! git -C "$clone" checkout -q --detach "$head"; then
    echo "run $i/$n: could not clone $repo at $head"
    echo "run $i: (clone failed)" >>"$failures"
    continue
  fi
  log="$work/run-$i.log"
  start=$(date +%s)
  (cd "$clone" && .ci/run) >"$log" 2>&1
  code=$?
  summary=$(tail -n 1 "$log")
  echo "run $i/$n: exit $code, $(( $(date +%s) - start )) s: $summary"
  report="$clone/.vitest-report.json"
  if [ "$code" -eq 0 ]; then
    passed=$((passed + 1))
  elif [ -s "$report" ]; then
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const path = require("path");
      for (const f of r.testResults ?? []) {
        const file = path.relative(process.argv[2], f.name);
        const failed = (f.assertionResults ?? []).filter((a) => a.status === "failed");
        if (f.status === "failed" && failed.length === 0) console.log(`run ${process.argv[3]}: ${file} (failed to load: ${(f.message ?? "").split("\n")[0]})`);
        for (const a of failed) {
          console.log(`run ${process.argv[3]}: ${file} > ${a.fullName}`);
          // The clone is removed below, so keep enough of the failure to tell a flake from a bug: its start, and its
          // end too when it is long (a custom message such as a child process output ends with its stderr).
          const lines = (a.failureMessages ?? []).join("\n").split("\n").filter((l) => l.trim() !== "");
          const kept = lines.length <= 45 ? lines : [...lines.slice(0, 25), "…", ...lines.slice(-20)];
          for (const l of kept) console.log(`      ${l.slice(0, 300)}`);
        }
      }
    ' "$report" "$clone" "$i" >>"$failures"
  else
    echo "run $i: (no test report; last lines of its log follow)" >>"$failures"
    tail -n 5 "$log" | sed 's/^/    /' >>"$failures"
  fi
  # Keep the disk bounded: a finished clone is not needed any more.
  rm -rf "$clone"
done

echo "failed tests:"
if [ -s "$failures" ]; then sed 's/^/  /' "$failures"; else echo "  none"; fi
echo "$passed of $n runs passed"
[ "$passed" -eq "$n" ]
