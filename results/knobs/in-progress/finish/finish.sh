#!/bin/bash
# The finishing step of issue 25, once `suite run suites/knobs.yaml --store STORE` has all
# 120 units: render results/knobs from STORE, keep the records, put the knobs prose under
# its README block and the README test that covers both suites in place. Run from the
# repository root: bash results/knobs/in-progress/finish/finish.sh STORE
set -euo pipefail
store=${1:?usage: finish.sh STORE}/suites/knobs
here=results/knobs/in-progress/finish
n=$(cd "$store" && find units -name "*.json" | grep -vc trials.json)
[ "$n" = 120 ] || { echo "only $n of 120 units in $store" >&2; exit 1; }
tmp=$(mktemp -d)
cp "$here"/* "$tmp"/
git rm -rq --cached results/knobs/in-progress
rm -rf results/knobs/in-progress
mkdir -p results/knobs/records
cp -r "$store/units" results/knobs/records/
cp "$store/sessions.jsonl" "$store/suite.lock.json" "$store/suite.yaml" results/knobs/records/
cp "$tmp/records_README.md" results/knobs/records/README.md
RAY_USAGE_STATS_ENABLED=0 .venv/bin/actmix-study suite report suites/knobs.yaml \
  --store "${1}" --out results/knobs --readme README.md
.venv/bin/python "$tmp/readme_prose.py.next"
cp "$tmp/test_readme_results.py.next" tests/test_readme_results.py
rm -rf "$tmp"
echo "now: read results/knobs/report.md, check the prose under the knobs block against it,"
echo "then .venv/bin/pytest tests/test_readme_results.py tests/test_knobs_suite.py; make lint"
