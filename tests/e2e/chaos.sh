#!/usr/bin/env bash
# Scenario: crash at any moment. Twenty rounds of `kill -9` of gatewayd or gateway-dataplane at a
# random moment (engine xdp: `kill -9` of gatewayd, or an upgrade of the program through its
# pinned link, since the program runs in the kernel and has no process) while a host-mode change
# or a configuration activation is in flight, with long-lived connections running throughout.
# Afterwards: no long-lived connection broke (the chaos only drains and enables, so every host
# stays ACTIVE or draining), every host's mode is the one of its last answered change (or, after
# changes that were never answered, one of the modes they could have left), the active
# configuration version is complete (gatewayd starts from it and it carries exactly the tag one
# of the activations set), and the state equals the last answered activation whenever the last
# activation was answered. With xdp, every round also keeps the link on lb0 and every map.
source "$(dirname "$0")/lib.sh"

ROUNDS=${GW_CHAOS_ROUNDS:-20}
setup_topology 3
start_dataplane
start_gatewayd

# The long-lived connections outlast the rounds (each round takes about 2-3 s). A data-plane
# restart pauses them for a few seconds (TCP retransmits across it): a late answer is not a
# broken connection, a reset or a lost message is.
STREAM_TIMEOUT_MS=15000
start_streams chaos 30 $((ROUNDS * 3 + 20))

# What the operator was told, per host: the modes the host may have now. An answered change
# leaves exactly its mode; one that got no answer (its gatewayd was killed) may or may not have
# been written, so it adds its mode to the possible ones.
declare -A possible=([back_end_1]=ACTIVE [back_end_2]=ACTIVE)
# Configuration: the `round` tag of back_end_3 that each possible active version carries.
possible_rounds="none"
last_config_answered=yes
# Engine xdp: neither a gatewayd restart nor an upgrade may replace the link or a map.
if [[ $ENGINE == xdp ]]; then
  xdp_link=$(xdp_link_id)
  xdp_maps=$(xdp_map_ids)
fi

config_with_round() {  # ROUND: the topology's configuration with back_end_3 tagged round=ROUND
  sed "s/{name: back_end_3, address: 10.99.2.13, tags: {/&round: \"$1\", /" "$CFG"
}

change_mode() {  # HOST MODE OUTFILE: one mode change, its exit status in OUTFILE
  local rc=0
  case $2 in
    NO_NEW_SESSIONS) ctl drain webapp "$1" >/dev/null 2>&1 || rc=$? ;;
    ACTIVE) ctl enable webapp "$1" >/dev/null 2>&1 || rc=$? ;;
  esac
  echo "$rc" >"$3"
}

activate_round() {  # ROUND OUTFILE: load and activate a version tagged with ROUND
  local rc=0 file=$RUN/round-$1.yaml
  config_with_round "$1" >"$file"
  { ctl config load "$file" >/dev/null 2>&1 && ctl config activate >/dev/null 2>&1; } || rc=$?
  echo "$rc" >"$2"
}

for round in $(seq "$ROUNDS"); do
  out=$RUN/round.rc
  rm -f "$out"
  if ((RANDOM % 2 == 0)); then
    host=back_end_$((RANDOM % 2 + 1))
    if [[ ${possible[$host]} == ACTIVE ]]; then mode=NO_NEW_SESSIONS; else mode=ACTIVE; fi
    op="mode $host $mode"
    change_mode "$host" "$mode" "$out" &
  else
    op="config round $round"
    activate_round "$round" "$out" &
  fi
  op_pid=$!
  # A random moment: before, during or after the change.
  sleep "0.$((RANDOM % 6))$((RANDOM % 10))"
  # The XDP engine has no data-plane process: its program runs on in the kernel, so the other
  # event is its upgrade (another build through the pinned link) under gatewayd's feet.
  if ((RANDOM % 2 == 0)); then
    victim=gatewayd
    stop_gatewayd KILL
  elif [[ $ENGINE == xdp ]]; then
    victim=program
    prog=$(xdp_link_prog)
    xdp_swap_program
    [[ $(xdp_link_prog) != "$prog" ]] || fail "round $round: program $prog still on the link"
    [[ $(xdp_lb0_prog) == "$(xdp_link_prog)" ]] || fail "round $round: lb0 runs another program"
  else
    victim=gateway-dataplane
    stop_dataplane KILL
  fi
  wait "$op_pid" || true
  rc=$(cat "$out" 2>/dev/null || echo 99)
  case $victim in
    gatewayd) start_gatewayd >/dev/null ;;
    gateway-dataplane) start_dataplane >/dev/null ;;
  esac
  if [[ $ENGINE == xdp ]]; then
    [[ $(xdp_link_id) == "$xdp_link" ]] || fail "round $round: the link on lb0 was replaced"
    [[ $(xdp_map_ids) == "$xdp_maps" ]] || fail "round $round: maps changed: $(xdp_map_ids)"
    unused=$(xdp_prog_on_pinned_maps "$(xdp_link_prog)")
    [[ -z $unused ]] || fail "round $round: the program on lb0 does not use pinned maps $unused"
  fi
  answered=$([[ $rc == 0 ]] && echo yes || echo no)
  case $op in
    mode*)
      if [[ $answered == yes ]]; then
        possible[$host]=$mode
      elif [[ " ${possible[$host]} " != *" $mode "* ]]; then
        possible[$host]="${possible[$host]} $mode"
      fi
      ;;
    config*)
      if [[ $answered == yes ]]; then possible_rounds=$round; else possible_rounds+=" $round"; fi
      last_config_answered=$answered
      ;;
  esac
  if [[ $victim == program ]]; then what="program upgrade"; else what="kill -9 $victim"; fi
  log "round $round: $op, $what: answered=$answered"
done

# Every answered change is what gatewayd reports; unanswered ones left one of their outcomes.
for host in back_end_1 back_end_2; do
  mode=$(host_field webapp "$host" .mode)
  [[ " ${possible[$host]} " == *" $mode "* ]] ||
    fail "$host is $mode, the operator's changes allow only: ${possible[$host]}"
  log "ok: $host is $mode (allowed: ${possible[$host]})"
done
expect_eq "$(host_field webapp back_end_3 .mode)" ACTIVE "back_end_3 untouched"

history=$(ctl --json config history)
active=$(jq -r .active <<<"$history")
yaml=$(ctl --json config show | jq -r .yaml)
[[ $(ctl --json config show | jq -r .version) == "$active" ]] || fail "config show and history disagree"
round_now=$(ctl --json backends webapp | jq -r '.hosts[] | select(.name == "back_end_3") |
  .tags.round // "none"')
[[ " $possible_rounds " == *" $round_now "* ]] ||
  fail "active version $active carries round '$round_now', the activations allow: $possible_rounds"
grep -q "back_end_2" <<<"$yaml" || fail "active version $active is incomplete"
if [[ $last_config_answered == yes ]]; then
  expect_eq "$round_now" "$possible_rounds" "the active version is the last answered activation"
fi
log "ok: active version $active carries round $round_now (allowed: $possible_rounds)"
# Versions are numbered without gaps or repeats.
jq -e '[.versions[].version] as $v | $v == [range(1; ($v | length) + 1)]' <<<"$history" \
  >/dev/null || fail "version numbers are not 1..N: $(jq -c '[.versions[].version]' <<<"$history")"

# New connections still go where the modes say.
for _ in $(seq 10); do
  h=$(who_answers)
  [[ $h == ERROR ]] && fail "a new connection failed after the chaos"
  [[ $(host_field webapp "$h" .mode) == ACTIVE ]] || fail "a new connection reached draining $h"
done
log "ok: new connections reach active hosts only"

ctl enable webapp back_end_1 >/dev/null
ctl enable webapp back_end_2 >/dev/null
wait_streams chaos
streams_ok
log "PASS"
