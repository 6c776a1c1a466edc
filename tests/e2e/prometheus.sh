#!/usr/bin/env bash
# Scenario 5 (Prometheus watching drain progress): gatewayd serves /metrics on the lb namespace's
# management address, a real Prometheus server scrapes it every second (with conf/prometheus's
# rules loaded); long-lived connections on back_end_1, drain it, the clients finish. Then PromQL
# over Prometheus's HTTP API says what an operator's dashboard would: back_end_1's open
# connections were above 0 and are now 0, it took no new connection during the drain, and the
# other hosts' new-connection counters carried the new traffic.
source "$(dirname "$0")/lib.sh"

PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}
if [[ -z $PROMETHEUS ]]; then
  echo "skipped: no prometheus binary (Debian: apt-get install prometheus)"
  exit 77
fi
METRICS=10.99.4.2:9100
PROM_URL=http://127.0.0.1:9090

lbns() { ip netns exec "$P-lb" "$@"; }

# promql QUERY [TIME]: the value of the query's first sample (instant query), "none" without one.
promql() {
  local args=(--data-urlencode "query=$1")
  [[ -n ${2:-} ]] && args+=(--data-urlencode "time=$2")
  lbns curl -sf -m 5 "${args[@]}" "$PROM_URL/api/v1/query" |
    jq -r '.data.result[0].value[1] // "none"' 2>/dev/null || echo none
}

# Comparisons of PromQL values (floats in text).
num_cmp() { [[ $1 != none ]] && awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }
expect_cmp() {  # ACTUAL OP BOUND DESCRIPTION
  num_cmp "$1" "$2" "$3" || {
    [[ -f $RUN.prometheus.log ]] && { echo "--- $RUN.prometheus.log (last 15 lines)"; tail -15 "$RUN.prometheus.log"; }
    fail "$4: got $1, expected $2 $3"
  }
  log "ok: $4 ($1 $2 $3)"
}
promql_holds() { num_cmp "$(promql "$1")" "$2" "$3"; }  # QUERY OP BOUND

setup_topology 3
"$GW_ROOT/tools/topology" config -p "$P" -n 3 -m "$METRICS" >"$CFG"
start_dataplane
start_gatewayd
exposition=$(lbns curl -sf -m 3 "http://$METRICS/metrics") || fail "no /metrics on $METRICS"
grep -q '^gateway_backend_open_connections{' <<<"$exposition" ||
  fail "gatewayd's /metrics on $METRICS lacks gateway_backend_open_connections"
log "ok: gatewayd serves /metrics on $METRICS"

if command -v promtool >/dev/null; then
  promtool check rules "$GW_ROOT/conf/prometheus/gateway-rules.yml" >/dev/null ||
    fail "promtool check rules conf/prometheus/gateway-rules.yml"
  log "ok: promtool check rules conf/prometheus/gateway-rules.yml"
fi

cat >"$RUN/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$GW_ROOT/conf/prometheus/gateway-rules.yml"]
scrape_configs:
  - job_name: gateway
    static_configs: [{targets: ["$METRICS"]}]
EOF
lbns "$PROMETHEUS" --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prometheus" \
  --web.listen-address=127.0.0.1:9090 >"$RUN.prometheus.log" 2>&1 &
BG_PIDS+=($!)
wait_for 30 "prometheus ready" lbns curl -sf -m 2 -o /dev/null "$PROM_URL/-/ready"
wait_for 20 "prometheus scrapes gatewayd" promql_holds 'up{job="gateway"}' == 1
log "prometheus running (pid ${BG_PIDS[-1]}), scraping $METRICS every second"
expect_cmp "$(promql 'count(gateway_backend_mode{group="webapp"})')" == 12 \
  "mode series (3 hosts x 4 modes)"
expect_cmp "$(promql 'count(gateway_dataplane_drops_total)')" '>' 30 "drop-reason series"
expect_cmp "$(promql 'gateway_dataplane_heartbeat_age_seconds')" '<' 5 "data-plane heartbeat age"

# Long-lived connections; Prometheus sees back_end_1's share of them.
start_streams long 60 10
open_b1=$(host_field webapp back_end_1 .open_connections.total)
expect_cmp "$open_b1" '>' 0 "back_end_1 holds long-lived connections (API)"
wait_for 10 "prometheus sees back_end_1's open connections" \
  promql_holds 'gateway_backend_open_connections{group="webapp",host="back_end_1"}' == "$open_b1"

ctl drain webapp back_end_1 >/dev/null
wait_for 10 "prometheus sees back_end_1 draining" \
  promql_holds 'gateway_backend_mode{host="back_end_1",mode="NO_NEW_SESSIONS"}' == 1
others='sum(gateway_backend_new_connections_total{group="webapp",host!="back_end_1"})'
b1_new='gateway_backend_new_connections_total{group="webapp",host="back_end_1"}'
others_before=$(promql "$others")
b1_before=$(promql "$b1_new")
log "at the drain: other hosts' new connections $others_before, back_end_1's $b1_before"

# New clients while back_end_1 drains: they all land on the other hosts.
for _ in $(seq 30); do
  h=$(who_answers)
  [[ $h == ERROR ]] && fail "a new HTTP request through the VIP failed"
  [[ $h == back_end_1 ]] && fail "a new connection reached the draining back_end_1"
done

wait_streams long
streams_ok
expect_cmp "$(jq '.hosts.back_end_1 // 0' <<<"$STREAMS")" == "$open_b1" \
  "long-lived connections that stayed on back_end_1 to the end"
ctl drain webapp back_end_1 --wait --timeout 30s >/dev/null || fail "drain --wait did not finish"
wait_for 10 "prometheus sees back_end_1 at 0 open connections" \
  promql_holds 'gateway_backend_open_connections{group="webapp",host="back_end_1"}' == 0
sleep 1.5  # one more scrape

span="$((SECONDS + 60))s"  # the whole run
expect_cmp "$(promql "max_over_time(gateway_backend_open_connections{host=\"back_end_1\"}[$span])")" \
  '>' 0 "max_over_time of back_end_1's open connections"
expect_cmp "$(promql 'gateway_backend_open_connections{host="back_end_1"}')" == 0 \
  "back_end_1's open connections now"
expect_cmp "$(promql "$others")" '>=' "$(awk -v a="$others_before" 'BEGIN { print a + 30 }')" \
  "other hosts' new connections after 30 new clients during the drain (before: $others_before)"
expect_cmp "$(promql "$b1_new")" == "$b1_before" "back_end_1's new connections during the drain"
expect_cmp "$(promql "sum(increase(gateway_backend_new_connections_total{host!=\"back_end_1\"}[$span]))")" \
  '>' 0 "increase() of the other hosts' new connections over the run"
log "PASS"
