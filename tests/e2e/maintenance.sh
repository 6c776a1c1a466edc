#!/usr/bin/env bash
# Scenario 1 (the seeds' maintenance): long-lived connections on back_end_1, drain it; every new
# connection lands elsewhere, every long-lived one keeps exchanging data, back_end_1's open
# connections fall to exactly 0 as they close; then DISABLED: no packet reaches back_end_1.
source "$(dirname "$0")/lib.sh"

setup_topology 3
start_dataplane
start_gatewayd

# 60 long-lived connections for 12 s; Maglev puts about a third on each host.
start_streams long 60 12
open_b1=$(host_field webapp back_end_1 .open_connections.total)
expect_gt "$open_b1" 0 "back_end_1 holds long-lived connections before the drain"

ctl drain webapp back_end_1 >/dev/null
expect_eq "$(host_field webapp back_end_1 .mode)" NO_NEW_SESSIONS "back_end_1 is draining"
expect_eq "$(host_field webapp back_end_1 .effective)" draining "effective state"

# New connections never reach the draining host.
declare -A seen=()
for _ in $(seq 40); do
  h=$(who_answers)
  [[ $h == ERROR ]] && fail "a new HTTP request through the VIP failed"
  seen[$h]=$((${seen[$h]:-0} + 1))
done
log "new connections answered by: $(for h in "${!seen[@]}"; do printf '%s=%s ' "$h" "${seen[$h]}"; done)"
expect_eq "${seen[back_end_1]:-0}" 0 "new connections on the draining host"
expect_gt "${#seen[@]}" 1 "the other hosts share the new connections"

# While the streams run, back_end_1 keeps its count (its connections are still open).
expect_eq "$(host_field webapp back_end_1 .open_connections.total)" "$open_b1" \
  "back_end_1's open connections while its clients are still connected"

wait_streams long
summary=$STREAMS
[[ $STREAMS_RC == 0 ]] || fail "long-lived clients saw errors: $summary"
errors=$(jq .errors <<<"$summary")
expect_eq "$errors" 0 "errors seen by the long-lived clients"
expect_gt "$(jq .exchanges <<<"$summary")" 1000 "data exchanged on the long-lived connections"
on_b1=$(jq '.hosts.back_end_1 // 0' <<<"$summary")
expect_eq "$on_b1" "$open_b1" "long-lived connections that stayed on back_end_1 to the end"

# The clients closed: the count falls to exactly 0 and drain --wait says so.
ctl drain webapp back_end_1 --wait --timeout 30s >/dev/null || fail "drain --wait did not finish"
expect_eq "$(host_field webapp back_end_1 .open_connections.total)" 0 "back_end_1 drained"

# DISABLED: not one packet reaches back_end_1 any more.
ctl disable webapp back_end_1 >/dev/null
expect_eq "$(host_field webapp back_end_1 .mode)" DISABLED "back_end_1 disabled"
before=$(on be1 "$GW_ROOT/tools/gw-decap" stats eth0 | awk '$1 == "ipip" {print $2}')
for _ in $(seq 30); do
  [[ $(who_answers) == back_end_1 ]] && fail "a disabled host answered"
done
after=$(on be1 "$GW_ROOT/tools/gw-decap" stats eth0 | awk '$1 == "ipip" {print $2}')
expect_eq "$after" "$before" "encapsulated packets that reached back_end_1 after DISABLED"

ctl enable webapp back_end_1 >/dev/null
wait_for 10 "back_end_1 answers again after enable" bash -c \
  'for i in $(seq 30); do [[ $(ip netns exec '"$P"'-client curl -s -m 2 http://10.99.0.10/) == back_end_1 ]] && exit 0; done; exit 1'
log "PASS"
