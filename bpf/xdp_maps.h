/* The XDP engine's maps: the contract between bpf/gateway.bpf.c (the program) and gatewayd's
 * loader (ctl/xdp), both of which include this header.
 *
 * Zone: shared layout. Plain C11 (also C++20, also clang -target bpf -ffreestanding). The records
 * the DPDK engine keeps in /dev/shm (dataplane/shm/layout.h) are reused here wherever the program
 * can read them as they are, so both engines hold one meaning for every field:
 *
 *   gw_snap      ARRAY, BPF_F_MMAPABLE, GW_XDP_PAGE-byte values: two struct gw_snapshot slots laid
 *                end to end as raw bytes (slot s starts at page s * GW_XDP_SNAP_PAGES). gatewayd
 *                mmaps it and builds snapshots in place exactly as it does in shared memory. The
 *                program reads groups, hosts and Maglev entries from it (page = offset / 4096;
 *                none of those records crosses a page), never the services (see gw_svc).
 *   gw_state     ARRAY, BPF_F_MMAPABLE, one struct gw_xdp_state: which slot is published, the
 *                ports, the connection timeouts. Written by gatewayd only.
 *   gw_svc       HASH: (address, port, protocol, family, slot) -> struct gw_service, one entry per
 *                service per snapshot slot, plus one per VIP with port 0 and protocol 0 (tells
 *                "no service on this port" from "not for us"); reserved[0..1] of the value hold the
 *                service's index in the snapshot (little-endian), which connection entries name
 *                as the DPDK engine's do. gatewayd writes the unpublished
 *                slot's entries, then publishes; stale keys of that slot are deleted first.
 *   gw_conns     ARRAY, BPF_F_MMAPABLE: the connection table, gw_state.conn_slots struct gw_xdp_conn
 *                entries of 16 bytes, four to a cache line, shared by every CPU (a veth, generic
 *                XDP or a NIC whose RSS moves a flow hands its packets to more than one CPU; one
 *                table keeps one entry per flow). An entry holds what an established packet needs
 *                (the key's 64-bit signature, host, state, idle time, admission generation) and
 *                nothing else, so such a packet reads one line of this table and nothing of
 *                gw_conn_info. A key's home slot is gw_flow_hash64(key, GW_CONN_SEED) &
 *                (conn_slots - 1); it may live in any of the GW_XDP_CONN_PROBE slots that are the
 *                four of its home line (from the home slot on, wrapping in the line) and then the
 *                four of the next line. A slot is free when its state is GW_CONN_EMPTY or its
 *                entry has idled past its state's timeout. An insert that finds no free slot
 *                among them takes the longest idle CLOSING entry's slot for a new flow (counted),
 *                else fails: the flow is forwarded statelessly (counted); an established flow
 *                never loses its entry to another. Two CPUs inserting two flows into the same
 *                free slot at the same instant leave one of them without an entry: its next
 *                packet goes by the `established` table (the same host while no mode changes),
 *                as after a lost table. Matching is by signature: gw_flow_hash64 of the key with
 *                GW_XDP_SIG_SEED, a seed independent of the home slot's, so two live flows of
 *                one probe range are taken for each other with probability 2^-63 per pair.
 *   gw_conn_info ARRAY, BPF_F_MMAPABLE, conn_slots struct gw_xdp_conn_info: the key, service and
 *                creation time of the entry with the same index, written when the entry is
 *                created and read only by gatewayd (listings). gatewayd maps both tables
 *                read-only and never writes them; it takes an entry as consistent when the
 *                signature of its info's key is the entry's, skips free slots by the rule above
 *                and applies the staleness rule of gw_xdp_conn_stale().
 *   gw_sessions  LRU_HASH: struct gw_xdp_session_key -> struct gw_session (state GW_SESSION_LIVE).
 *   gw_stats     PERCPU_ARRAY, one struct gw_xdp_cpu_stats per CPU.
 *   gw_host_stats PERCPU_ARRAY, GW_MAX_HOSTS struct gw_xdp_host_stats per CPU.
 *
 * Publication. gatewayd fills slot s (gw_snap pages and gw_svc keys with slot s) while the program
 * reads slot 1 - s, then stores gw_state.published = generation << 1 | s. The program loads
 * `published` once per packet. gatewayd writes a slot again only GW_XDP_RETIRE_MS after it
 * stopped being published: one program run is far shorter (it runs under RCU within one NAPI poll).
 *
 * Time: bpf_ktime_get_ns() is CLOCK_MONOTONIC, the clock of every *_ms and *_s field of
 * layout.h, so gatewayd compares entry times with its own monotonic clock.
 *
 * A change to any record here bumps GW_XDP_LAYOUT_VERSION; gatewayd refuses pinned maps of
 * another version (gw_state.layout_version) and says which.
 */
#ifndef GW_BPF_XDP_MAPS_H
#define GW_BPF_XDP_MAPS_H

#include "dataplane/core/reason_lists.h"
#include "dataplane/shm/layout.h"

#ifndef __cplusplus
/* gw::DropReason and gw::Degraded, numbered alike (C++ has them from drop_reason.h, degraded.h). */
enum gw_drop_reason {
#define GW_X(name, label, help) GW_DROP_##name,
  GW_DROP_REASONS(GW_X)
#undef GW_X
  GW_DROP_COUNT
};
enum gw_degraded {
#define GW_X(name, label, help) GW_DEGRADED_##name,
  GW_DEGRADED_REASONS(GW_X)
#undef GW_X
  GW_DEGRADED_COUNT
};
#endif

#define GW_XDP_LAYOUT_VERSION 2u
#define GW_XDP_PAGE 4096u
#define GW_XDP_SNAP_PAGES ((sizeof(struct gw_snapshot) + GW_XDP_PAGE - 1) / GW_XDP_PAGE)
#define GW_XDP_RETIRE_MS 10u
#define GW_XDP_CONN_PROBE 8u /* slots a key may occupy: its home line's four, the next line's */
#define GW_XDP_CONN_WAYS 4u  /* gw_xdp_conn entries per cache line */
#define GW_XDP_SIG_SEED 0x7369u /* gw_xdp_conn.sig; independent of GW_CONN_SEED's home slot */

/* struct gw_xdp_port.flags [ctl] */
#define GW_XDP_PORT_IN_USE 0x01u
#define GW_XDP_PORT_NH_VALID 0x02u /* nh_mac holds the next hop's MAC */
#define GW_XDP_PORT_HAS4 0x04u     /* addr4 is the port's own IPv4 address */
#define GW_XDP_PORT_HAS6 0x08u     /* addr6 is the port's own IPv6 address */

struct gw_xdp_port {             /* 64 bytes; index = position in dataplane.ports */
  uint32_t ifindex;              /* [ctl] the interface the program is attached to */
  uint16_t mtu;                  /* [ctl] IP MTU towards the hosts */
  uint8_t flags;                 /* [ctl] GW_XDP_PORT_* */
  uint8_t reserved0;
  uint8_t mac[6];                /* [ctl] the interface's MAC: source of encapsulated frames */
  uint8_t nh_mac[6];             /* [ctl] next hop's MAC (configured, or from the kernel's
                                    neighbour table) */
  uint8_t addr4[4];              /* [ctl] own IPv4: outer source of IPIP */
  uint8_t addr6[16];             /* [ctl] own IPv6: outer source of IP6IP6 */
  uint8_t reserved1[24];
};

struct gw_xdp_state {
  uint32_t layout_version;       /* [ctl] GW_XDP_LAYOUT_VERSION */
  uint32_t n_ports;              /* [ctl] ports[0 .. n_ports) */
  uint64_t published;            /* [ctl] generation << 1 | slot; 0 = nothing published: XDP_PASS */
  uint32_t syn_ms;               /* [ctl] connection timeouts, dataplane.conn_table */
  uint32_t established_ms;
  uint32_t closing_ms;
  uint32_t udp_ms;
  uint32_t syn_share_percent;    /* [ctl] the half-open share: SYN-state entries may hold this
                                    percentage of a key's GW_XDP_CONN_PROBE slots (at least one) */
  uint32_t conn_slots;           /* [ctl] gw_conns (and gw_conn_info) entries, a power of two
                                    >= 8; fixed while the maps live (their sizes depend on it) */
  uint64_t ctl_heartbeat_ms;     /* [ctl] CLOCK_MONOTONIC ms of gatewayd's last pass */
  uint64_t created_ms;           /* [ctl] CLOCK_REALTIME ms when the maps (and every counter in
                                    them) were created */
  uint32_t too_big_rate;          /* [ctl] dataplane.icmp_too_big: answers a second per CPU */
  uint32_t too_big_burst;         /* [ctl] and at most this many at once */
  struct gw_xdp_port ports[GW_MAX_PORTS];
};

struct gw_xdp_svc_key {          /* 24 bytes */
  uint8_t addr[16];              /* VIP, wire order (IPv4 in addr[0..3], rest zero) */
  uint16_t port;                 /* network order; 0 with proto 0: the VIP-only entry */
  uint8_t proto;                 /* 6, 17; 0 for the VIP-only entry */
  uint8_t family;                /* 4 or 6 */
  uint32_t slot;                 /* snapshot slot, 0 or 1 */
};

/* The flow key of hash_c.h: src, dst, ports (network order), proto, family, two zero pad bytes.
 * The first 38 bytes of struct gw_conn are the same fields. */
struct gw_flow_key {             /* 40 bytes */
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t src_port;
  uint16_t dst_port;
  uint8_t proto;
  uint8_t family;
  uint8_t pad[2];
};

/* gw_xdp_conn.word */
#define GW_XDP_CONN_HOST 0x0fffu       /* host id; GW_MAX_HOSTS is 4096 */
#define GW_XDP_CONN_STATE_SHIFT 12     /* GW_CONN_* in bits 12-14 */
#define GW_XDP_CONN_TOMBSTONE 0x8000u  /* GW_CONN_F_TOMBSTONE of the DPDK entry */

struct gw_xdp_conn {             /* 16 bytes, four per cache line; written by the program only */
  uint64_t sig;                  /* gw_flow_hash64(key, GW_XDP_SIG_SEED) | 1; 0: never used */
  uint32_t last_ms;              /* CLOCK_MONOTONIC ms, wrapping; compare as differences */
  uint16_t word;                 /* host | state << GW_XDP_CONN_STATE_SHIFT | tombstone */
  uint16_t gen;                  /* low 16 bits of the snapshot generation under which the entry
                                    was last admitted (created, moved, or a packet kept); see
                                    gw_xdp_conn_stale() */
};

struct gw_xdp_conn_info {        /* 48 bytes; written by the program when the entry is created */
  struct gw_flow_key key;
  uint32_t created_s;            /* CLOCK_MONOTONIC seconds */
  uint16_t service;              /* service index at creation */
  uint16_t reserved;
};

static inline uint16_t gw_xdp_conn_host(uint16_t word) { return word & GW_XDP_CONN_HOST; }
static inline uint8_t gw_xdp_conn_state(uint16_t word) {
  return (uint8_t)((word >> GW_XDP_CONN_STATE_SHIFT) & 7u);
}
static inline uint16_t gw_xdp_conn_word(uint16_t host, uint8_t state, int tombstone) {
  return (uint16_t)((host & GW_XDP_CONN_HOST) | (uint16_t)(state & 7u) << GW_XDP_CONN_STATE_SHIFT |
                    (tombstone ? GW_XDP_CONN_TOMBSTONE : 0u));
}

/* The DPDK engine's rule "an entry older than its host's last disable (gw_conn.gen <
 * gw_host.disabled_gen) no longer keeps it" over the entry's 16 generation bits. An entry's gen
 * is refreshed whenever a packet is admitted to its host, so it lags the published generation
 * by the publications of one idle period at most; a disable more than 32767 generations back is
 * older than every entry that could still be stale by it. */
static inline int gw_xdp_conn_stale(uint16_t gen, uint64_t disabled_gen, uint64_t generation) {
  if (disabled_gen == 0 || generation - disabled_gen >= 0x8000u) return 0;
  return (int16_t)(uint16_t)(gen - (uint16_t)disabled_gen) < 0;
}

struct gw_xdp_session_key {      /* 20 bytes */
  uint8_t client[16];
  uint16_t group;
  uint8_t family;
  uint8_t pad;
};

/* Packets handed to the kernel (XDP_PASS) by why; not drops. */
#define GW_XDP_PASS_NOT_FOR_US 0u  /* destination is no VIP: the host's own traffic */
#define GW_XDP_PASS_OWN 1u         /* ARP, ND, echo and other packets to the port's own address */
#define GW_XDP_PASS_UNPUBLISHED 2u /* nothing published yet */
#define GW_XDP_PASS_REASONS 4u

struct gw_xdp_cpu_stats {
  struct gw_port_counters ports[GW_MAX_PORTS]; /* rx: every packet seen; tx: XDP_TX/redirect */
  uint64_t drops[GW_MAX_DROP_REASONS];         /* by gw::DropReason */
  uint64_t degraded[GW_MAX_DEGRADED];          /* by gw::Degraded */
  uint64_t passed[GW_XDP_PASS_REASONS];        /* by GW_XDP_PASS_* */
  uint64_t conn_stateless;       /* flows forwarded without an entry (no free slot) */
  uint64_t conn_inserts;         /* entries created */
  uint64_t conn_evicted;         /* CLOSING entries whose slot a new flow took (none was free) */
  uint64_t conn_syn_refused;     /* SYNs refused an entry by the half-open share */
  uint64_t conn_syn_evicted;     /* SYN-state entries replaced by newer SYNs (half-open share) */
  uint64_t icmp_too_big_sent;
  uint64_t last_ms;              /* CLOCK_MONOTONIC ms of this CPU's last packet */
  uint64_t seen_generation;      /* snapshot generation of this CPU's last packet */
  uint64_t ip_id;                /* the outer IPv4 identification, advanced per packet */
  uint64_t too_big_milli_tokens; /* this CPU's token bucket for too-big answers (forward.h's
                                    TokenBucket): thousandths of an answer */
  uint64_t too_big_last_ms;      /* its last refill, CLOCK_MONOTONIC ms; 0: not primed */
};

struct gw_xdp_host_stats {       /* 32 bytes, per CPU per host id */
  uint64_t new_conns;            /* entries created and stateless new flows */
  uint64_t packets;              /* packets forwarded to the host */
  uint64_t bytes;                /* inner IP bytes forwarded to the host */
  uint64_t reserved;
};

GW_STATIC_ASSERT(sizeof(struct gw_xdp_port) == 64, "gw_xdp_port");
GW_STATIC_ASSERT(sizeof(struct gw_xdp_svc_key) == 24, "gw_xdp_svc_key");
GW_STATIC_ASSERT(sizeof(struct gw_flow_key) == 40, "gw_flow_key");
GW_STATIC_ASSERT(sizeof(struct gw_xdp_session_key) == 20, "gw_xdp_session_key");
GW_STATIC_ASSERT(sizeof(struct gw_xdp_host_stats) == 32, "gw_xdp_host_stats");
GW_STATIC_ASSERT(sizeof(struct gw_xdp_conn) == 16, "gw_xdp_conn: four per cache line");
GW_STATIC_ASSERT(sizeof(struct gw_xdp_conn_info) == 48, "gw_xdp_conn_info");
GW_STATIC_ASSERT(GW_MAX_HOSTS - 1 <= GW_XDP_CONN_HOST, "host ids fit gw_xdp_conn.word");
GW_STATIC_ASSERT(offsetof(struct gw_snapshot, groups) % 16 == 0 &&
                     offsetof(struct gw_snapshot, hosts) % 32 == 0 &&
                     offsetof(struct gw_snapshot, maglev) % 2 == 0,
                 "groups, hosts and Maglev entries never cross a gw_snap page");

#endif /* GW_BPF_XDP_MAPS_H */
