#!/usr/bin/env bash
# Scenario 6: state loss. The data plane is killed (SIGKILL) and restarted in the middle of a
# drain; long-lived connections to the draining host survive, and new connections still avoid it.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd
start_streams restart 45 12 6000
ctl drain webapp back_end_1 >/dev/null
open_b1=$(host_field webapp back_end_1 .open_connections.total)
expect_gt "$open_b1" 0 "back_end_1 holds connections when the drain starts"

sleep 2
log "killing gateway-dataplane (SIGKILL) mid-drain"
stop_dataplane KILL
start_dataplane
expect_eq "$(ctl --json status | jq .dataplane.restarts)" 1 "the data plane re-attached"
for _ in $(seq 20); do
  [[ $(who_answers) == back_end_1 ]] && fail "a new connection reached the draining host"
done
log "ok: new connections still avoid back_end_1 after the restart"

wait_streams restart
streams_ok
expect_eq "$(jq '.hosts.back_end_1 // 0' <<<"$STREAMS")" "$open_b1" \
  "long-lived connections on back_end_1 survived the restart"
ctl drain webapp back_end_1 --wait --timeout 30s >/dev/null || fail "drain did not finish"
log "PASS"
