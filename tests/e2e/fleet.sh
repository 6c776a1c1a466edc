#!/usr/bin/env bash
# Scenario: a fleet of two balancers behind the router's ECMP route (DESIGN.md, "Fleet";
# tools/topology fleet-up). A drain set through lb-a holds on lb-b, counts are fleet totals,
# lb-a taken out with quiesce `all` withdraws its BGP route while every long-lived connection
# goes on through lb-b with its host, and an etcd outage keeps forwarding, refuses changes with
# 503 fleet_unavailable, and converges when etcd is back.
#
# GW_FLEET_STANDALONE=1 runs the part that needs no fleet support in gatewayd (members without
# the `fleet:` key): topology, BGP, the ECMP route, both data planes forwarding.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_fleet.sh"

STREAMS_N=40
STREAMS_S=25
[[ $FLEET_STANDALONE == 1 ]] && STREAMS_S=6

setup_fleet 3
start_fleet

if [[ $FLEET_STANDALONE != 1 ]]; then
  wait_for 20 "lb-a connected to etcd with 2 members alive" fleet_ready a
  wait_for 20 "lb-b connected to etcd with 2 members alive" fleet_ready b
  # Both gatewayds keep their BIRD's gateway_vips enabled: the router hashes over both.
  wait_for 5 "the router's route via both balancers" next_hops_are "10.99.1.2 10.99.5.2"
  expect_eq "$(status_field a .fleet.member)" lb-a "lb-a's member name"
  expect_eq "$(status_field b .fleet.name)" "$P" "lb-b's fleet name"
  wait_for 10 "both members report the same tables_digest" digests_agree
  log "ok: one tables_digest for the fleet ($(fleet_digests a))"
  both_announcing() {
    [[ $(status_field a '[.fleet.members[] | select(.announcing)] | length') == 2 ]]
  }
  wait_for 5 "both members announcing the VIP, as lb-a sees them" both_announcing
fi
expect_eq "$(vip_next_hops)" "10.99.1.2 10.99.5.2" "the router's next hops for 10.99.0.10 (BGP, ECMP)"

# Long-lived connections, spread over both balancers by the router's L4 hash.
start_streams long "$STREAMS_N" "$STREAMS_S"
on_a=$(conn_entries a)
on_b=$(conn_entries b)
log "long-lived connections per data plane: lb-a $on_a, lb-b $on_b"
expect_gt "$on_a" 0 "long-lived connections through lb-a's data plane"
expect_gt "$on_b" 0 "long-lived connections through lb-b's data plane"
expect_eq "$((on_a + on_b))" "$STREAMS_N" "connection-table entries of both data planes together"

if [[ $FLEET_STANDALONE == 1 ]]; then
  for port in $(seq 41000 41009); do
    [[ $(who_answers_port "$port") == back_end_* ]] ||
      fail "a request from port $port (via lb-$(member_of_port "$port")) failed"
  done
  log "ok: 10 new requests through both balancers answered"
  wait_streams long
  streams_ok
  log "PASS (standalone members: the fleet assertions were not run)"
  exit 0
fi

# Per-member counts as the fleet reports them: each member's entry is its own data plane's.
members_match_planes() {
  [[ $(member_open a a webapp) == "$on_a" && $(member_open a b webapp) == "$on_b" &&
     $(member_open b a webapp) == "$on_a" && $(member_open b b webapp) == "$on_b" ]]
}
wait_for 10 "per-member counts equal to each data plane's entries (lb-a $on_a, lb-b $on_b)" \
  members_match_planes
open_b1=$(host_field_on a webapp back_end_1 .open_connections.total)
expect_gt "$open_b1" 0 "back_end_1 holds long-lived connections before the drain"
expect_eq "$(host_field_on a webapp back_end_1 \
  '[.members[].open_connections.total] | add')" "$open_b1" \
  "back_end_1's fleet total is the sum of its members' counts"
expect_eq "$(host_field_on b webapp back_end_1 .open_connections.total)" "$open_b1" \
  "back_end_1's fleet total as lb-b answers it"

# A drain through lb-a holds on both.
answer=$(ctl_on a --json drain webapp back_end_1) || fail "drain through lb-a failed: $answer"
expect_eq "$(jq -r '[.members[] | select(.applied)] | map(.member) | sort | join(",")' \
  <<<"$answer")" "lb-a,lb-b" "members that applied the drain"
expect_eq "$(host_field_on b webapp back_end_1 .mode)" NO_NEW_SESSIONS \
  "back_end_1's mode on lb-b"
expect_eq "$(host_field_on b webapp back_end_1 .effective)" draining \
  "back_end_1's effective state on lb-b"
wait_for 10 "the same tables_digest after the drain" digests_agree

# ~40 new HTTP connections from source ports the router spreads over both balancers: none
# reaches back_end_1, and each member's own count shows its data plane took some.
base_a=$(member_open a a webapp)
base_b=$(member_open b b webapp)
ports=$(seq 42000 42039)
via_a=0
for port in $ports; do [[ $(member_of_port "$port") == a ]] && via_a=$((via_a + 1)); done
log "the router sends $via_a of 40 new connections to lb-a, $((40 - via_a)) to lb-b"
expect_gt "$via_a" 0 "new connections hashed to lb-a"
expect_gt "$((40 - via_a))" 0 "new connections hashed to lb-b"
(for port in $ports; do who_answers_port "$port"; done >"$RUN.curls.out") &
curls=$!
max_a=$base_a
max_b=$base_b
while kill -0 "$curls" 2>/dev/null; do
  n=$(member_open a a webapp)
  ((n > max_a)) && max_a=$n
  n=$(member_open b b webapp)
  ((n > max_b)) && max_b=$n
  sleep 0.1
done
wait "$curls"
declare -A seen=()
while read -r h; do
  [[ $h == ERROR ]] && fail "a new HTTP request through the VIP failed"
  seen[$h]=$((${seen[$h]:-0} + 1))
done <"$RUN.curls.out"
log "new connections answered by: $(for h in "${!seen[@]}"; do printf '%s=%s ' "$h" "${seen[$h]}"; done)"
expect_eq "${seen[back_end_1]:-0}" 0 "new connections on the draining host"
expect_gt "${#seen[@]}" 1 "the other hosts share the new connections"
expect_gt "$max_a" "$base_a" "lb-a's data plane took new connections (its members[\"lb-a\"] count)"
expect_gt "$max_b" "$base_b" "lb-b's data plane took new connections (its members[\"lb-b\"] count)"
expect_eq "$(host_field_on a webapp back_end_1 .open_connections.total)" "$open_b1" \
  "back_end_1's fleet total while its clients are still connected"

# lb-a out of service: quiesce `all` withdraws its route; its flows go on through lb-b.
ctl_on a quiesce all >/dev/null || fail "quiesce all on lb-a failed"
wait_for 5 "the router's route without lb-a" next_hops_are 10.99.5.2
log "ok: the router's next hops after quiesce all on lb-a: $(vip_next_hops)"
a_not_announcing() {
  [[ $(status_field b '.fleet.members[] | select(.member == "lb-a") | .announcing') == false ]]
}
wait_for 5 "lb-b seeing lb-a not announcing" a_not_announcing
log "ok: lb-b sees lb-a quiesced and not announcing"
# Every long-lived connection now sends through lb-b: an established entry per flow (those
# from lb-a made from their first packet through lb-b, by the `established` table).
all_on_b() { (($(member_established b b webapp) >= STREAMS_N)); }
wait_for 10 "lb-b carrying all $STREAMS_N long-lived connections" all_on_b
for port in $(seq 43000 43004); do
  [[ $(who_answers_port "$port") == back_end_[23] ]] ||
    fail "a new request while lb-a is out was not answered by an active host"
done
log "ok: new requests while lb-a is out answered through lb-b"

ctl_on a quiesce off >/dev/null || fail "quiesce off on lb-a failed"
wait_for 5 "lb-a's next hop back in the router's route" next_hops_are "10.99.1.2 10.99.5.2"
log "ok: the router's next hops after quiesce off: $(vip_next_hops)"

wait_streams long
streams_ok
expect_eq "$(jq '.hosts.back_end_1 // 0' <<<"$STREAMS")" "$open_b1" \
  "long-lived connections that stayed on back_end_1 to the end (gw-testclient)"

# drain --wait returns on the fleet total.
ctl_on b drain webapp back_end_1 --wait --timeout 30s >/dev/null ||
  fail "drain --wait did not see back_end_1's fleet total reach 0"
b1_total_is_0() { [[ $(host_field_on a webapp back_end_1 .open_connections.total) == 0 ]]; }
wait_for 5 "back_end_1's fleet total 0 as lb-a answers it too" b1_total_is_0
log "ok: back_end_1's fleet total is 0 on both members"

# etcd unreachable: forwarding goes on, changes are refused, reads say so.
fleet_etcd_stop
for port in $(seq 44000 44009); do
  [[ $(who_answers_port "$port") == back_end_[23] ]] ||
    fail "a request through lb-$(member_of_port "$port") failed while etcd is down"
done
log "ok: 10 new requests through both balancers while etcd is down"
wait_for 15 "lb-a reporting fleet.connected false" fleet_connected_is a false
wait_for 15 "lb-b reporting fleet.connected false" fleet_connected_is b false
rc=0
err=$(ctl_on a --json mode webapp back_end_2 NO_NEW_SESSIONS) || rc=$?
expect_eq "$rc" 1 "gatewayctl's exit status for a change while etcd is down"
expect_eq "$(jq -r .error.code <<<"$err")" fleet_unavailable "the error code"
code=$(on lba curl -s -o /dev/null -w '%{http_code}' --unix-socket "$(member_sock a)" \
  -X POST -H 'Content-Type: application/json' \
  -d '{"host": "back_end_2", "mode": "NO_NEW_SESSIONS"}' \
  http://gatewayd/v1/backend-groups/webapp/host-mode)
expect_eq "$code" 503 "HTTP status of a change while etcd is down"
expect_eq "$(host_field_on a webapp back_end_2 .mode)" ACTIVE "back_end_2 unchanged on lb-a"

fleet_etcd_start
wait_for 30 "lb-a reconnected with 2 members alive" fleet_ready a
wait_for 30 "lb-b reconnected with 2 members alive" fleet_ready b
answer=$(ctl_on b --json mode webapp back_end_2 NO_NEW_SESSIONS) ||
  fail "a change through lb-b after etcd's return failed: $answer"
expect_eq "$(jq -r '[.members[] | select(.applied)] | length' <<<"$answer")" 2 \
  "members that applied the change through lb-b"
expect_eq "$(host_field_on a webapp back_end_2 .mode)" NO_NEW_SESSIONS \
  "back_end_2's mode on lb-a, changed through lb-b"
wait_for 10 "the same tables_digest after etcd's return" digests_agree
log "PASS"
