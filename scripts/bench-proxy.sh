#!/bin/sh
# Compares a Jupyter static asset served directly with the same asset
# through cohort's proxy (token check, session lookup, reverse proxy), with
# wrk from Debian's packages. Alternates the two, twice, in one run.
# Usage: make build && sh scripts/bench-proxy.sh
set -eu
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
bin=bin/cohort
addr=127.0.0.1:18099
dir=$(mktemp -d)
$bin serve --data-dir "$dir" --addr $addr --log-level warn 2>"$dir/serve.log" &
server=$!
trap 'COHORT_URL=http://$addr $bin session stop "$session" >/dev/null 2>&1; sleep 2; kill $server; rm -rf "$dir"' EXIT
sleep 1.5
export COHORT_URL=http://$addr COHORT_TOKEN="$($bin token create --data-dir "$dir" --email bench@example.org --role instructor)"
class=$($bin class create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
$bin session start --class "$class" --wait >/dev/null 2>&1
session=$(ls "$dir/sessions")
port=$(python3 -c "import json; print(json.load(open('$dir/sessions/$session/instance.json'))['port'])")
nbtoken=$(python3 -c "import json; print(json.load(open('$dir/sessions/$session/jupyter/jupyter_notebook_config.json'))['NotebookApp']['token'])")
asset=/s/$session/static/base/images/logo.png
for round in 1 2; do
	printf 'round %s direct: ' $round
	wrk -t2 -c32 -d8s -H "Authorization: token $nbtoken" "http://127.0.0.1:$port$asset" | awk '/Requests\/sec/ {print $2 " req/s"}'
	printf 'round %s proxy:  ' $round
	wrk -t2 -c32 -d8s -H "Authorization: Bearer $COHORT_TOKEN" "http://$addr$asset" | awk '/Requests\/sec/ {print $2 " req/s"}'
done
