# Fleet helpers for the end-to-end scenarios, sourced after lib.sh: the two-balancer topology of
# `tools/topology fleet-up` (members lb-a and lb-b behind the router's ECMP route, BIRD on each,
# etcd in the router), a data plane and a gatewayd per member, and helpers that ask each member
# as an operator would. Everything started here is stopped by the EXIT trap (the teardown below
# replaces lib.sh's), also on failure.
#
# GW_FLEET_STANDALONE=1: the members get configurations without the `fleet:` key (each gatewayd
# alone, BIRD still announcing both): a check of the topology and both data planes that does not
# need gatewayd's fleet support.

for tool in bird birdc etcd; do
  if ! command -v "$tool" >/dev/null; then
    echo "skipped: the fleet scenarios need $tool (Debian bird2, etcd-server)"
    exit 77
  fi
done

FLEET_STANDALONE=${GW_FLEET_STANDALONE:-0}
declare -A MEMBER_DP_PID=() MEMBER_GWD_PID=()

member_cfg() { echo "$RUN.$1.yaml"; }
member_sock() { echo "$RUN/gatewayd-$1.sock"; }
member_dp_address() { [[ $1 == a ]] && echo 10.99.1.2 || echo 10.99.5.2; }

dump_logs() {
  for m in a b; do
    for f in "$RUN.dataplane-$m.log" "$RUN.gatewayd-$m.log" "$RUN/bird-lb$m.log"; do
      [[ -f $f ]] && { echo "--- $f (last 30 lines)"; tail -30 "$f"; }
    done
  done
  for f in "$RUN/bird-router.log" "$RUN/etcd.log"; do
    [[ -f $f ]] && { echo "--- $f (last 10 lines)"; tail -10 "$f"; }
  done
  echo "--- router: ip route show 10.99.0.10"
  on router ip route show 10.99.0.10 2>/dev/null
  return 0
}

stop_pid() {  # PID: TERM, up to 5 s, then KILL
  local pid=$1
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  return 0
}

teardown() {
  local rc=$?
  set +e
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for m in a b; do stop_pid "${MEMBER_GWD_PID[$m]:-}"; done
  for m in a b; do stop_pid "${MEMBER_DP_PID[$m]:-}"; done
  # BIRD, etcd, the back ends and anything left inside the namespaces.
  "$GW_ROOT/tools/topology" fleet-down -p "$P" >/dev/null 2>&1
  for m in a b; do
    rm -rf "/dev/shm/gateway.$P$m" "/var/run/dpdk/$P$m" "$(member_cfg $m)" \
      "/sys/fs/bpf/gateway/$P$m" \
      $(awk -v f="gateway.$P$m" '$3 == "hugetlbfs" {print $2 "/" f}' /proc/mounts)
  done
  rm -f "$RUN".*.log "$RUN".*.json "$RUN".*.err "$RUN".*.ready
  rm -rf "$RUN"
  exit $rc
}
trap teardown EXIT

setup_fleet() {  # [BACKENDS]
  local n=${1:-3} standalone=
  [[ $FLEET_STANDALONE == 1 ]] && standalone=-s
  "$GW_ROOT/tools/topology" fleet-up -p "$P" -n "$n" -b "$GW_BUILD" -e "$ENGINE" >/dev/null
  for m in a b; do
    "$GW_ROOT/tools/topology" fleet-config -p "$P" -n "$n" -m $m -e "$ENGINE" $standalone \
      >"$(member_cfg $m)"
  done
  log "fleet topology $P up with $n back ends (router next hops: $(vip_next_hops))"
}

start_member_dataplane() {  # a|b
  if [[ $ENGINE == xdp ]]; then
    log "lb-$1: engine xdp: the data plane is gatewayd's XDP program"
    return 0
  fi
  local m=$1 addr
  addr=$(member_dp_address "$m")
  ip netns exec "$P-lb$m" "$GW_BUILD/dataplane/gateway-dataplane" --config "$(member_cfg "$m")" \
    >>"$RUN.dataplane-$m.log" 2>&1 &
  MEMBER_DP_PID[$m]=$!
  for _ in $(seq 100); do
    if on client ping -c1 -W1 -q "$addr" >/dev/null 2>&1; then
      log "lb-$m: gateway-dataplane running (pid ${MEMBER_DP_PID[$m]})"
      return 0
    fi
    kill -0 "${MEMBER_DP_PID[$m]}" 2>/dev/null || fail "lb-$m: gateway-dataplane exited"
    sleep 0.2
  done
  fail "lb-$m: gateway-dataplane did not answer ping on $addr"
}

start_member_gatewayd() {  # a|b
  local m=$1
  if [[ $ENGINE == xdp ]]; then  # the network namespace only (lib.sh, start_gatewayd)
    nsenter --net="/run/netns/$P-lb$m" "$GW_BUILD/ctl/gatewayd" --config "$(member_cfg "$m")" \
      --foreground >>"$RUN.gatewayd-$m.log" 2>&1 &
  else
    ip netns exec "$P-lb$m" "$GW_BUILD/ctl/gatewayd" --config "$(member_cfg "$m")" --foreground \
      >>"$RUN.gatewayd-$m.log" 2>&1 &
  fi
  MEMBER_GWD_PID[$m]=$!
  for _ in $(seq 100); do
    ctl_on "$m" status >/dev/null 2>&1 && { log "lb-$m: gatewayd running (pid ${MEMBER_GWD_PID[$m]})"; return 0; }
    kill -0 "${MEMBER_GWD_PID[$m]}" 2>/dev/null || fail "lb-$m: gatewayd exited"
    sleep 0.1
  done
  fail "lb-$m: gatewayd did not answer on $(member_sock "$m")"
}

start_fleet() {
  start_member_dataplane a
  start_member_dataplane b
  start_member_gatewayd a
  start_member_gatewayd b
}

# ctl_on a|b ARGS...: gatewayctl on that member's socket (from its namespace).
ctl_on() {
  local m=$1
  shift
  on "lb$m" "$GW_BUILD/ctl/gatewayctl" --socket "$(member_sock "$m")" "$@"
}

# host_field_on a|b GROUP HOST JQ_PATH: a host's field as that member answers it.
host_field_on() {
  ctl_on "$1" --json backends "$2" | jq -r --arg h "$3" ".hosts[] | select(.name == \$h) | $4"
}

# status_field a|b JQ_PATH: a field of that member's `gatewayctl --json status`.
status_field() { ctl_on "$1" --json status | jq -r "$2"; }

# The router's next hops for the VIP, sorted, on one line ("" when it has no route).
vip_next_hops() {
  on router ip route show 10.99.0.10 | grep -o 'via [0-9.]*' | awk '{print $2}' | sort | paste -sd' '
}
next_hops_are() { [[ $(vip_next_hops) == "$1" ]]; }

# fleet_ready a|b: the member is connected to etcd and sees both members alive.
fleet_ready() {
  [[ $(ctl_on "$1" --json status 2>/dev/null |
    jq -r '.fleet.connected == true and ([.fleet.members[] | select(.alive)] | length) == 2') == true ]]
}
fleet_connected_is() {  # a|b true|false
  [[ $(ctl_on "$1" --json status 2>/dev/null | jq -r '.fleet.connected') == "$2" ]]
}

# The tables_digest of every member as member M reports them (sorted, distinct, one line).
fleet_digests() {
  ctl_on "$1" --json status | jq -r '[.fleet.members[].tables_digest] | unique | join(" ")'
}
digests_agree() {
  local a b
  a=$(fleet_digests a)
  b=$(fleet_digests b)
  [[ -n $a && $a != *" "* && $a == "$b" ]]
}

# conn_entries a|b: the entries of that member's own data plane (status is per member).
conn_entries() { status_field "$1" .dataplane.conn_table.entries; }

# member_open ASKED MEMBER GROUP: sum over the group's hosts of
# members["lb-MEMBER"].open_connections.total as member ASKED answers it.
member_open() {
  ctl_on "$1" --json backends "$3" |
    jq --arg m "lb-$2" '[.hosts[].members[$m].open_connections.total // 0] | add'
}

# member_established ASKED MEMBER GROUP: the same for open_connections.established.
member_established() {
  ctl_on "$1" --json backends "$3" |
    jq --arg m "lb-$2" '[.hosts[].members[$m].open_connections.established // 0] | add'
}

# The back end answering one HTTP request through the VIP from client source port PORT.
who_answers_port() {
  on client curl -s -m 3 --local-port "$1" http://10.99.0.10/ || echo "ERROR"
}

# Which member the router sends a client flow from source port PORT to (ECMP, L4 hash).
member_of_port() {
  local via
  via=$(on router ip route get 10.99.0.10 from 10.99.3.2 iif r-client ipproto tcp sport "$1" \
    dport 80 | grep -o 'via [0-9.]*' | awk '{print $2}')
  case $via in
    10.99.1.2) echo a ;;
    10.99.5.2) echo b ;;
    *) echo "?" ;;
  esac
}

fleet_etcd_stop() { "$GW_ROOT/tools/topology" etcd-stop -p "$P"; log "etcd stopped"; }
fleet_etcd_start() { "$GW_ROOT/tools/topology" etcd-start -p "$P"; log "etcd started"; }
