#!/usr/bin/env bash
# Events and quiesce as operators' automation sees them: a signed webhook receives each event of a
# maintenance once (mode changes, drain completed, quiesce completed); quiesce `all` reports
# `success` while long-lived connections are still open and they keep flowing to their end; a
# DISABLED host's open connections reach 0 within a second although its flows still send.
source "$(dirname "$0")/lib.sh"

setup_topology 3
# The receiver runs beside gatewayd, on the balancer namespace's loopback.
on lb ip link set lo up
printf 'hook-secret-0123456789\n' >"$RUN/hook.key"
HOOKS=$RUN/hooks.jsonl
: >"$HOOKS"
on lb "$GW_BUILD/tools/gw-hook-receiver" --listen tcp:127.0.0.1:0 --out "$HOOKS" \
  --secret-file "$RUN/hook.key" --fail-first 1 --port-file "$RUN/hook.port" \
  >"$RUN.hooks.log" 2>&1 &
BG_PIDS+=($!)
wait_for 10 "the webhook receiver listens" test -s "$RUN/hook.port"
hook_port=$(cat "$RUN/hook.port")
# control.webhooks, every event, signed.
sed -i "s|^  state_dir: \(.*\)$|  state_dir: \1\n  webhooks:\n    - {url: \"http://127.0.0.1:$hook_port/hooks\", secret_file: $RUN/hook.key}|" "$CFG"
grep -qF "url: \"http://127.0.0.1:$hook_port/hooks\"" "$CFG" || fail "could not add the webhook to $CFG"
start_dataplane
start_gatewayd

# events_of TYPE: how many events of TYPE the receiver got.
events_of() { jq -s --arg t "$1" '[.[] | select(.event == $t)] | length' "$HOOKS"; }

# 1. A drain through the API: host.mode_changed (the first POST is refused by the receiver and
#    retried), then drain.completed once back_end_1 has nothing left.
ctl drain webapp back_end_1 >/dev/null
wait_for 15 "host.mode_changed delivered (after one retry)" \
  bash -c "[[ \$(jq -s '[.[] | select(.event == \"host.mode_changed\")] | length' $HOOKS) -ge 1 ]]"
wait_for 15 "drain.completed for back_end_1" \
  bash -c "[[ \$(jq -s '[.[] | select(.event == \"drain.completed\" and .body.payload.host == \"back_end_1\")] | length' $HOOKS) -ge 1 ]]"
ctl enable webapp back_end_1 >/dev/null

# 2. Quiesce `all` with long-lived connections open: success once the block is in force and the
#    counters are flushed, not when the clients leave.
start_streams q 30 8
open_before=$(ctl --json quiesce status | jq .open_connections)
expect_gt "$open_before" 0 "open connections before the quiesce"
ctl quiesce all >/dev/null
wait_for 5 "quiesce all in force" \
  bash -c "[[ \$(ip netns exec $P-lb $GW_BUILD/ctl/gatewayctl --socket $SOCK --json quiesce status | jq -r .status) == success ]]"
q=$(ctl --json quiesce status)
expect_gt "$(jq .open_connections <<<"$q")" 0 "connections still open while quiesce all is in force"
expect_eq "$(jq -c .flush <<<"$q")" '["counters"]' "what the quiesce flushed"
test -s "$RUN/state/counters.json" || fail "counters.json was not written"
expect_eq "$(on client curl -s -m 2 http://10.99.0.10/ || echo refused)" refused \
  "a new connection while quiesce all is in force"
wait_streams q
streams_ok
wait_for 15 "quiesce.completed delivered" \
  bash -c "[[ \$(jq -s '[.[] | select(.event == \"quiesce.completed\")] | length' $HOOKS) -ge 1 ]]"
ctl quiesce off >/dev/null

# 3. DISABLED while long-lived flows keep sending: the host's count is 0 within a second.
start_streams d 60 6
open_b2=$(host_field webapp back_end_2 .open_connections.total)
expect_gt "$open_b2" 0 "back_end_2 holds long-lived connections"
ctl disable webapp back_end_2 >/dev/null
sleep 1.2
expect_eq "$(host_field webapp back_end_2 .open_connections.total)" 0 \
  "back_end_2's open connections 1.2 s after DISABLED, its flows still sending"
wait_streams d
ctl enable webapp back_end_2 >/dev/null

# Each event arrived once (ids unique; the refused first POST was retried, not duplicated), and
# every one was signed with the secret.
sleep 2
total=$(jq -s 'length' "$HOOKS")
unique=$(jq -s '[.[].id] | unique | length' "$HOOKS")
expect_eq "$unique" "$total" "events received once each (unique ids)"
expect_eq "$(jq -s '[.[] | select(.signature_ok != true)] | length' "$HOOKS")" 0 \
  "events with a bad or missing signature"
expect_eq "$(events_of drain.completed)" 1 "drain.completed events"
expect_eq "$(events_of quiesce.completed)" 1 "quiesce.completed events"
# drain, enable, disable, enable: one event each.
expect_eq "$(events_of host.mode_changed)" 4 "host.mode_changed events"
expect_eq "$(jq -s -r '[.[].body.instance] | unique | join(",")' "$HOOKS")" "$P" \
  "the instance named in every event"
expect_eq "$(ctl --json events | jq '.webhooks[0].retried')" 1 "retries gatewayd counted"
expect_eq "$(ctl --json events | jq '.webhooks[0].failed')" 0 "deliveries given up"
log "PASS"
