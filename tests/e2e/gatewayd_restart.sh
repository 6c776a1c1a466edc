#!/usr/bin/env bash
# Scenario 7: gatewayd killed (SIGKILL) and restarted mid-drain: forwarding never stops, and the
# host modes are kept.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd
# back_end_3 is disabled before the clients connect (disabling moves a host's connections).
ctl disable webapp back_end_3 >/dev/null
start_streams gwd 30 10
ctl drain webapp back_end_1 >/dev/null

log "killing gatewayd (SIGKILL)"
stop_gatewayd KILL
for _ in $(seq 20); do
  h=$(who_answers)
  [[ $h == back_end_2 ]] || fail "while gatewayd was down a new connection got '$h'"
done
log "ok: 20 requests served by back_end_2 while gatewayd was down"

start_gatewayd
expect_eq "$(host_field webapp back_end_1 .mode)" NO_NEW_SESSIONS "back_end_1 still draining"
expect_eq "$(host_field webapp back_end_3 .mode)" DISABLED "back_end_3 still disabled"
expect_eq "$(host_field webapp back_end_2 .mode)" ACTIVE "back_end_2 still active"

wait_streams gwd
streams_ok
ctl drain webapp back_end_1 --wait --timeout 30s >/dev/null || fail "drain did not finish"
log "PASS"
