#!/usr/bin/env bash
# The fleet demo (run by tools/demo --fleet): two balancers behind a router's ECMP route, each
# announcing the VIP by BGP from its own BIRD, sharing their state in etcd. Live traffic while a
# drain set through lb-a holds on lb-b, then lb-a is taken out of service (quiesce `all`): the
# router's next hops before and after, the connections going on through lb-b with their hosts.
# Uses the end-to-end harness for set-up and teardown (also on Ctrl-C).
source "$(dirname "$0")/../tests/e2e/lib.sh"
source "$(dirname "$0")/../tests/e2e/lib_fleet.sh"
SCENARIO=demo-fleet
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '   $ %s\n' "$*"; "$@" | sed 's/^/   /'; }
next_hops() { printf '   router: ip route show 10.99.0.10\n'; on router ip route show 10.99.0.10 | sed 's/^/     /'; }

say "1. Building the fleet: a client, a router, balancers lb-a and lb-b, three back ends, etcd"
setup_fleet 3
start_fleet
both_ready() { fleet_ready a && fleet_ready b; }
wait_for 20 "both members connected to etcd, two members alive" both_ready
echo "   The router learns the VIP by BGP from both balancers, one next hop each (ECMP, L4 hash):"
next_hops
show ctl_on a status

say "2. 40 clients open long-lived connections (one message every 200 ms for 30 s)"
start_streams live 40 30
sleep 2
echo "   Each data plane carries part of them: lb-a $(conn_entries a), lb-b $(conn_entries b)" \
  "connection-table entries. Counts are fleet totals:"
show ctl_on a backends webapp

say "3. Maintenance of back_end_1, set through lb-a: gatewayctl drain webapp back_end_1"
show ctl_on a drain webapp back_end_1
echo "   lb-b applied it too:"
show ctl_on b backends webapp
echo "   New connections go through both balancers and never to back_end_1:"
for port in $(seq 45000 45005); do
  printf '   request from port %d via lb-%s answered by %s\n' "$port" "$(member_of_port "$port")" \
    "$(who_answers_port "$port")"
done

say "4. lb-a out of service: gatewayctl quiesce all (on lb-a)"
echo "   Before:"
next_hops
ctl_on a quiesce all >/dev/null
wait_for 10 "the router's route without lb-a" next_hops_are 10.99.5.2
echo "   After: lb-a's BIRD withdrew the VIP, the router sends every flow to lb-b"
next_hops
sleep 2
echo "   lb-b now carries $(conn_entries b) connections: those from lb-a kept their hosts"
echo "   (both members hold the same Maglev tables: tables_digest $(fleet_digests b))"
for port in $(seq 46000 46003); do
  printf '   new request from port %d answered by %s\n' "$port" "$(who_answers_port "$port")"
done

say "5. lb-a back: gatewayctl quiesce off (on lb-a)"
ctl_on a quiesce off >/dev/null
wait_for 10 "lb-a's next hop back" next_hops_are "10.99.1.2 10.99.5.2"
next_hops

say "6. back_end_1's fleet total drains as the clients finish: gatewayctl drain ... --wait (on lb-b)"
ctl_on b drain webapp back_end_1 --wait --timeout 60s || true
wait_streams live
echo "   The long-lived clients report:"
jq -c '{connections, exchanges, errors, hosts}' <<<"$STREAMS" | sed 's/^/   /'
[[ $STREAMS_RC == 0 ]] && echo "   no connection broke, none changed host" ||
  echo "   SOME CONNECTIONS BROKE: see the per-connection report above"

say "7. Tearing everything down (data planes, gatewayds, BIRD, etcd, namespaces)"
