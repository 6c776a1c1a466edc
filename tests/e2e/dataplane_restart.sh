#!/usr/bin/env bash
# Scenario 6: state loss. The data plane is killed (SIGKILL) and restarted in the middle of a
# drain; long-lived connections to the draining host survive, and new connections still avoid it.
# With the XDP engine the data plane is the program gatewayd attached, and its state-loss events
# are two: (a) gatewayd is killed mid-drain (the pinned program forwards alone) and started again,
# which replaces the program with its own build through the pinned link; (b) a program upgrade:
# another build of the program is swapped in through the same link while the clients talk. Both
# keep the link and every map (the same ids: connection entries and modes are not copied, they
# are the same maps), and change the program the interface runs.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd
# The clients outlast both XDP events, so the upgrade happens under their traffic.
start_streams restart 45 "$([[ $ENGINE == xdp ]] && echo 20 || echo 12)" 6000
ctl drain webapp back_end_1 >/dev/null
open_b1=$(host_field webapp back_end_1 .open_connections.total)
expect_gt "$open_b1" 0 "back_end_1 holds connections when the drain starts"

sleep 2
if [[ $ENGINE == xdp ]]; then
  link=$(xdp_link_id)
  maps=$(xdp_map_ids)
  prog=$(xdp_link_prog)
  expect_eq "$(xdp_lb0_prog)" "$prog" "lb0 runs the program of the pinned link"
  log "killing gatewayd (SIGKILL) mid-drain: the pinned program forwards alone"
  stop_gatewayd KILL
  for _ in $(seq 10); do
    [[ $(who_answers) == back_end_1 ]] && fail "a new connection reached the draining host"
  done
  start_gatewayd
  expect_eq "$(xdp_link_id)" "$link" "the link on lb0 after the gatewayd restart"
  expect_eq "$(xdp_map_ids)" "$maps" "the pinned maps after the gatewayd restart"
  expect_ne "$(xdp_link_prog)" "$prog" "the program (gatewayd replaced it through the link)"
  gatewayd_prog=$(xdp_link_prog)
  expect_eq "$(xdp_lb0_prog)" "$gatewayd_prog" "lb0 runs the program gatewayd loaded"
  expect_eq "$(xdp_prog_on_pinned_maps "$gatewayd_prog")" "" \
    "pinned maps the restarted gatewayd's program does not use"

  log "upgrading the program through the pinned link while the clients talk"
  xdp_swap_program
  expect_eq "$(xdp_link_id)" "$link" "the link on lb0 after the upgrade"
  expect_eq "$(xdp_map_ids)" "$maps" "the pinned maps after the upgrade"
  expect_ne "$(xdp_link_prog)" "$gatewayd_prog" "the program after the upgrade"
  expect_eq "$(xdp_lb0_prog)" "$(xdp_link_prog)" "lb0 runs the upgraded program"
  expect_eq "$(xdp_prog_on_pinned_maps "$(xdp_link_prog)")" "" \
    "pinned maps the upgraded program does not use"
  # Another build, not the same instructions loaded twice.
  expect_ne "$(xdp_prog_tag "$(xdp_link_prog)")" "$(xdp_prog_tag "$gatewayd_prog")" \
    "the upgraded program's tag"
  # The requests below run on the upgraded program: the drain gatewayd published into the kept
  # maps still steers them.
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
