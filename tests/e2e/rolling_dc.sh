#!/usr/bin/env bash
# Scenario 5: a rolling change by data centre with a rollback to the previous configuration
# version: dc1 drained and disabled while dc2 serves, then the reverse; a new configuration
# version is activated and rolled back with one call.
source "$(dirname "$0")/lib.sh"

setup_topology 4  # dc1: back_end_1, 3; dc2: back_end_2, 4
start_dataplane
start_gatewayd

for dc in dc1 dc2; do
  ctl drain webapp --selector dc=$dc --wait --timeout 30s >/dev/null || fail "$dc did not drain"
  ctl disable webapp --selector dc=$dc >/dev/null
  for _ in $(seq 20); do
    h=$(who_answers)
    [[ $h == ERROR ]] && fail "request failed while $dc was out"
    ctl --json backends webapp | jq -e --arg h "$h" \
      '.hosts[] | select(.name == $h) | .tags.dc != "'$dc'"' >/dev/null ||
      fail "$h of $dc answered while $dc was disabled"
  done
  log "ok: $dc out, the other data centre served 20 requests"
  ctl enable webapp --selector dc=$dc >/dev/null
done

# Version 2 removes back_end_4; then a rollback brings version 1's hosts back.
sed '/name: back_end_4/d' "$CFG" >"$RUN/v2.yaml"
ctl config load "$RUN/v2.yaml" >/dev/null
ctl config activate >/dev/null
expect_eq "$(ctl --json config history | jq .active)" 2 "version 2 active"
expect_eq "$(ctl --json backends webapp | jq '.hosts | length')" 3 "version 2 has three hosts"
for _ in $(seq 20); do
  [[ $(who_answers) == back_end_4 ]] && fail "a removed host answered"
done
ctl config rollback 1 >/dev/null
expect_eq "$(ctl --json config history | jq .active)" 3 "the rollback is version 3"
expect_eq "$(ctl --json config history | jq '.versions[-1].rollback_of')" 1 "version 3 rolls back to 1"
expect_eq "$(ctl --json backends webapp | jq '.hosts | length')" 4 "version 1's four hosts are back"
seen4=0
for _ in $(seq 40); do [[ $(who_answers) == back_end_4 ]] && seen4=1 && break; done
expect_eq "$seen4" 1 "back_end_4 serves again after the rollback"
log "PASS"
