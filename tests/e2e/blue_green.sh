#!/usr/bin/env bash
# Scenario 4: blue-green. A tag selector drains every version=v1 host while version=v2 serves;
# established connections on v1 finish undisturbed, then v1 is disabled.
source "$(dirname "$0")/lib.sh"

setup_topology 4  # back_end_1, 3: version v1; back_end_2, 4: version v2
start_dataplane
start_gatewayd
start_streams bg 40 8
ctl --json backends webapp | jq -e '[.hosts[] | select(.tags.version == "v1")] | length == 2' \
  >/dev/null || fail "expected two v1 hosts"

ctl drain webapp --selector version=v1 >/dev/null
for h in back_end_1 back_end_3; do
  expect_eq "$(host_field webapp $h .mode)" NO_NEW_SESSIONS "$h (v1) draining"
done
for h in back_end_2 back_end_4; do
  expect_eq "$(host_field webapp $h .mode)" ACTIVE "$h (v2) active"
done
for _ in $(seq 30); do
  h=$(who_answers)
  [[ $h == back_end_2 || $h == back_end_4 ]] || fail "a new connection reached $h during blue-green"
done
log "ok: 30 new connections all on v2"

wait_streams bg
streams_ok
v1_streams=$(jq '(.hosts.back_end_1 // 0) + (.hosts.back_end_3 // 0)' <<<"$STREAMS")
expect_gt "$v1_streams" 0 "long-lived connections that finished on v1 hosts"
ctl drain webapp --selector version=v1 --wait --timeout 30s >/dev/null || fail "v1 did not drain"
ctl disable webapp --selector version=v1 >/dev/null
for h in back_end_1 back_end_3; do
  expect_eq "$(host_field webapp $h .open_connections.total)" 0 "$h drained"
  expect_eq "$(host_field webapp $h .mode)" DISABLED "$h disabled"
done
log "PASS"
