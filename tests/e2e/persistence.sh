#!/usr/bin/env bash
# Scenario 3: with source-IP persistence, a client with a live session keeps reaching the
# draining host on new connections; a new client does not.
source "$(dirname "$0")/lib.sh"

setup_topology 3
# The web service gets persistence (10 minutes).
sed -i 's/  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: webapp}/  - {name: web, vip: 10.99.0.10, port: 80, protocol: tcp, backend_group: webapp,\n     persistence: {type: source_ip, timeout: 600s}}/' "$CFG"
# The guard names the service's own key: every generated configuration already contains the word
# "persistence" (conn_table.persistence_capacity), so a bare grep could never fail.
grep -qF 'persistence: {type: source_ip, timeout: 600s}' "$CFG" ||
  fail "could not enable persistence on service web in $CFG"
add_client_addresses 10 40
start_dataplane
start_gatewayd

# Clients 10.99.3.10..25 each connect once; remember where each landed.
declare -A home=()
for i in $(seq 10 25); do home[$i]=$(who_answers_from "10.99.3.$i"); done
sticky=
for i in "${!home[@]}"; do [[ ${home[$i]} == back_end_1 ]] && sticky=$i && break; done
[[ -n $sticky ]] || fail "no client landed on back_end_1: ${home[*]}"
for i in "${!home[@]}"; do
  for _ in 1 2 3; do
    expect_eq "$(who_answers_from "10.99.3.$i")" "${home[$i]}" "client .$i stays on its host"
  done
done
expect_gt "$(host_field webapp back_end_1 .sessions)" 0 "back_end_1 has live sessions"

ctl drain webapp back_end_1 >/dev/null
for _ in $(seq 6); do
  expect_eq "$(who_answers_from "10.99.3.$sticky")" back_end_1 \
    "client .$sticky with a live session reaches the draining host on a new connection"
done
for i in $(seq 26 40); do
  expect_ne "$(who_answers_from "10.99.3.$i")" back_end_1 "new client .$i avoids the draining host"
done

# --sessions expire: the sticky client's next connection goes elsewhere.
ctl drain webapp back_end_1 --sessions expire >/dev/null
expect_ne "$(who_answers_from "10.99.3.$sticky")" back_end_1 \
  "with --sessions expire the client moves"
log "PASS"
