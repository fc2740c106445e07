#!/usr/bin/env bash
# Runs every benchmark and prints the tables quoted in the issues' closing notes.
# Needs ../shared/corpus for the edit comparison (skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet --disable-pip-version-check ruamel.yaml==0.19.1
cases="$(mktemp)"
trap 'rm -f "$cases"' EXIT
out="$(GITOPS_FLOW_EDIT_CASES="$cases" cargo bench --locked --bench flow 2>/dev/null)"
echo "$out"
if [ -s "$cases" ]; then
  ours="$(echo "$out" | sed -n 's/.*gitops-flow: [0-9]* edits, \([0-9.]*\) µs per edit.*/\1/p')"
  theirs_out="$(.venv/bin/python bench/ruamel_compare.py "$cases")"
  echo
  echo "$theirs_out" | grep -v RUAMEL_US
  theirs="$(echo "$theirs_out" | sed -n 's/RUAMEL_US_PER_EDIT=//p')"
  python3 -c "print(f'gitops-flow is {float(\"$theirs\") / float(\"$ours\"):.1f}x faster per edit than ruamel.yaml (same files, same run)')"
fi

# The editor's property test, long: generated YAML and mutated corpus files.
echo
echo "### edit property test (long pass)"
PROPTEST_CASES="${PROPTEST_CASES:-20000}" cargo test --locked --release --test edit_props -- --nocapture 2>&1 \
  | grep -E "edit properties:|SKIPPED|test result"
