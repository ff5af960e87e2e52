#!/bin/sh
# Compares a Jupyter static asset served directly with the same asset
# through cohort's proxy (host dispatch, token check, session lookup,
# reverse proxy to the notebook's unix socket), with wrk from Debian's
# packages. The direct server is a second Jupyter of the same version on a
# TCP port (wrk cannot dial a unix socket). Alternates the two, twice.
# Usage: make build && sh scripts/bench-proxy.sh
set -eu
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
bin=bin/cohort
addr=127.0.0.1:18099
direct=18098
dir=$(mktemp -d)
chmod 711 "$dir"
$bin serve --data-dir "$dir/data" --sessions-dir "$dir/sessions" --session-uids off --addr $addr --log-level warn 2>"$dir/serve.log" &
server=$!
nbtoken=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir "$dir/direct"
/usr/bin/jupyter-notebook --no-browser --allow-root --ip=127.0.0.1 --port=$direct --NotebookApp.token="$nbtoken" \
	--notebook-dir="$dir/direct" >"$dir/direct.log" 2>&1 &
jupyter=$!
trap 'COHORT_URL=http://$addr $bin session stop "$session" >/dev/null 2>&1; sleep 2; kill $server $jupyter; rm -rf "$dir"' EXIT
sleep 2
export COHORT_URL=http://$addr COHORT_TOKEN="$($bin token create --data-dir "$dir/data" --email bench@example.org --role instructor)"
class=$($bin class create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
$bin session start --class "$class" --wait >/dev/null 2>&1
session=$($bin session list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
host=$(echo "$session" | tr _ -).localhost:${addr##*:}
asset=/static/base/images/logo.png
for round in 1 2; do
	printf 'round %s direct: ' $round
	wrk -t2 -c32 -d8s -H "Authorization: token $nbtoken" "http://127.0.0.1:$direct$asset" | awk '/Requests\/sec/ {print $2 " req/s"}'
	printf 'round %s proxy:  ' $round
	wrk -t2 -c32 -d8s -H "Host: $host" -H "Authorization: Bearer $COHORT_TOKEN" "http://$addr$asset" | awk '/Requests\/sec/ {print $2 " req/s"}'
done
