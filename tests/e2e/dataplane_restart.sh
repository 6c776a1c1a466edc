#!/usr/bin/env bash
# Scenario 6: state loss. The data plane is killed (SIGKILL) and restarted in the middle of a
# drain; long-lived connections to the draining host survive, and new connections still avoid it.
# With the XDP engine the data plane is the program gatewayd attached: gatewayd is killed, the
# pinned program forwards on alone, and the gatewayd that starts again replaces the program with
# the one it loads (bpf_link_update on the pinned link, as an upgrade does) while keeping every map.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd
start_streams restart 45 12 6000
ctl drain webapp back_end_1 >/dev/null
open_b1=$(host_field webapp back_end_1 .open_connections.total)
expect_gt "$open_b1" 0 "back_end_1 holds connections when the drain starts"

sleep 2
if [[ $ENGINE == xdp ]]; then
  PIN=/sys/fs/bpf/gateway/$P
  prog_id() { on lb ip -j -d link show dev lb0 | jq '.[0].xdp.prog.id // 0'; }
  map_id() { bpftool -j map show pinned "$PIN/$1" | jq .id; }
  prog_before=$(prog_id)
  maps_before="$(map_id gw_conns) $(map_id gw_conn_info) $(map_id gw_sessions) $(map_id gw_snap)"
  expect_gt "$prog_before" 0 "an XDP program on lb0"
  log "killing gatewayd (SIGKILL) mid-drain: the pinned program forwards alone"
  stop_gatewayd KILL
  for _ in $(seq 10); do
    [[ $(who_answers) == back_end_1 ]] && fail "a new connection reached the draining host"
  done
  start_gatewayd
  expect_ne "$(prog_id)" "$prog_before" "the program on lb0 (replaced through the pinned link)"
  expect_eq "$(map_id gw_conns) $(map_id gw_conn_info) $(map_id gw_sessions) $(map_id gw_snap)" \
    "$maps_before" "the maps (connections, sessions, snapshots) after the replacement"
else
  log "killing gateway-dataplane (SIGKILL) mid-drain"
  stop_dataplane KILL
  start_dataplane
  expect_eq "$(ctl --json status | jq .dataplane.restarts)" 1 "the data plane re-attached"
fi
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
