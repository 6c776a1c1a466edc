/* The layout of the shared-memory object gateway.<instance>: /dev/shm/gateway.<instance> (tmpfs)
 * or <hugetlbfs mount>/gateway.<instance> (huge pages; dataplane/shm/backing.h).
 *
 * Zone: shared layout. Plain fixed-width structs, no pointers (offsets from the start of the
 * object only), every size pinned below. This header is C11 and C++20 so that bpf/ can use the
 * record layouts too. Every field's comment names its single writer:
 *   [ctl]  gatewayd only            [dp]  gateway-dataplane only (the process)
 *   [wN]   data-plane worker N only (one lcore)       [any-w] any worker, by compare-and-swap
 *   [create] whichever process created the object, before publishing the magic
 *
 * Regions, in this order, each starting on a 4 KiB boundary:
 *   header             gw_shm_header
 *   snapshots[2]       gw_snapshot: control -> data, double-buffered (see "publication")
 *   workers[W]         gw_worker: data -> control, one per worker lcore
 *   conn tables[W]     per worker: buckets then entries (gw_conn_bucket, gw_conn)
 *   session table      shared by all workers (gw_session_bucket)
 *
 * Publication (QSBR across processes): gatewayd fills the snapshot nobody reads, then stores
 * header.published = generation << 1 | index with release order. A worker loads it with acquire
 * once per pass, uses that snapshot for the whole pass, and at the end of the pass stores the
 * generation it used into its gw_worker.seen_generation (release). gatewayd writes into a
 * snapshot slot again only when every live worker's seen_generation has reached the generation
 * that retired the slot. Workers whose heartbeat stopped are not waited for: on restart they
 * start from the newest published index.
 *
 * A layout change bumps GW_SHM_LAYOUT_VERSION; attach refuses any other version.
 */
#ifndef GW_SHM_LAYOUT_H
#define GW_SHM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define GW_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define GW_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#define GW_SHM_MAGIC 0x314d485357544147ull /* "GATWSHM1" little-endian */
#define GW_SHM_LAYOUT_VERSION                                  \
  5u /* 2: gw_worker.degraded; gw_conn session_ms, gen, flags; \
        gw_host.disabled_gen. 3: gw_worker.lifetimes.          \
        4: gw_worker.conn_syn_*, icmp_too_big_sent;            \
        gw_conn_bucket.sig bit 0 marks SYN state.              \
        5: gw_shm_header backing, fallback, page_size */

#define GW_MAX_WORKERS 64u
#define GW_MAX_PORTS 8u
#define GW_MAX_SERVICES 256u
#define GW_SERVICE_SLOTS 1024u /* open-addressed (vip, port, proto) lookup, power of two */
#define GW_MAX_GROUPS 64u
#define GW_MAX_HOSTS 4096u
#define GW_MAGLEV_SIZE 65537u /* prime */
#define GW_MAX_DROP_REASONS 64u
#define GW_MAX_DEGRADED 16u /* gw_worker.degraded: room for gw::Degraded (append-only list) */
#define GW_NO_HOST 0xffffu
#define GW_NO_SERVICE 0xffffu

#define GW_CONN_WAYS 15u    /* entries per connection-table bucket */
#define GW_LIFETIME_BUCKETS 128u /* gw_host_lifetimes: log-scale buckets of whole seconds */
#define GW_SESSION_WAYS 8u  /* entries per session-table bucket */

/* ---- control -> data ----------------------------------------------------------------------- */

/* gw_host.flags [ctl]: what the host admits now, computed by gatewayd from mode, health, drain
 * policy and group failover (gw::host_admission in dataplane/core/mode.h, the one place where
 * DESIGN.md's mode table lives). The fast path reads bits only. */
#define GW_HOST_IN_USE 0x01u      /* slot holds a configured host */
#define GW_HOST_NEW 0x02u         /* may receive new flows (it is in the `new` table) */
#define GW_HOST_ESTABLISHED 0x04u /* its established flows keep reaching it */
#define GW_HOST_SESSIONS 0x08u    /* clients with a live persistence session keep reaching it */
#define GW_HOST_DROP_ON_DISABLE 0x10u /* flows of a host that lost ESTABLISHED are dropped, not
                                       * rescheduled (group on_disable: drop) */

struct gw_host {                 /* 32 bytes; index = stable host id assigned by gatewayd */
  uint8_t addr[16];              /* [ctl] wire order; IPv4 in addr[0..3] */
  uint8_t family;                /* [ctl] 4 or 6; 0 when the slot is free */
  uint8_t mode;                  /* [ctl] gw::HostMode, for reporting */
  uint8_t flags;                 /* [ctl] GW_HOST_* */
  uint8_t healthy;               /* [ctl] 1 or 0, for reporting */
  uint16_t group;                /* [ctl] group id */
  uint16_t weight;               /* [ctl] */
  /* [ctl] generation of the snapshot in which this host last lost GW_HOST_ESTABLISHED (it was
   * disabled, or its slot stopped being in use); 0 = never. Set and carried over by the snapshot
   * writer (shm::carry_disabled_generations) from the snapshot published before, so it survives a
   * gatewayd restart. A connection entry with gen < disabled_gen predates that loss: it is stale
   * and never takes a packet to this host again, whatever the host's flags are later. */
  uint64_t disabled_gen;
};

/* gw_service.flags [ctl] */
#define GW_SERVICE_IN_USE 0x01u
#define GW_SERVICE_PERSIST 0x02u /* source-IP persistence on */

struct gw_service {              /* 48 bytes; index = position in gw_snapshot.services */
  uint8_t vip[16];               /* [ctl] wire order */
  uint8_t family;                /* [ctl] 4 or 6 */
  uint8_t proto;                 /* [ctl] 6 tcp, 17 udp */
  uint16_t port;                 /* [ctl] host order */
  uint16_t group;                /* [ctl] group id: selects the Maglev tables */
  uint8_t flags;                 /* [ctl] GW_SERVICE_* */
  uint8_t reserved0;
  uint32_t persist_timeout_s;    /* [ctl] session lifetime after the last packet */
  uint32_t service_id;           /* [ctl] stable id, for counters and logs */
  uint8_t reserved[16];
};

struct gw_group {                /* 16 bytes; index = stable group id */
  uint16_t n_hosts_new;          /* [ctl] hosts in the `new` table (0: the table is all NO_HOST) */
  uint16_t n_hosts_established;  /* [ctl] hosts in the `established` table */
  uint8_t in_use;                /* [ctl] */
  uint8_t reserved[11];
};

/* gw_snapshot.quiesce [ctl] */
#define GW_QUIESCE_DESIGNTIME 0x01u /* configuration frozen; no effect on forwarding */
#define GW_QUIESCE_ALL 0x02u        /* no new flows on any service */

struct gw_snapshot {
  uint64_t generation;           /* [ctl] equals the generation published with this slot */
  uint64_t config_generation;    /* [ctl] active configuration version */
  uint32_t quiesce;              /* [ctl] GW_QUIESCE_* */
  uint32_t n_services;           /* [ctl] services[0 .. n_services) are valid */
  uint32_t hash_seed;            /* [ctl] seed of flow_hash for Maglev slots */
  uint8_t reserved[36];
  /* (vip, port, proto) -> service index + 1; 0 = empty. Probed linearly from
   * flow_hash-of-(vip,port,proto) & (GW_SERVICE_SLOTS - 1). */
  uint16_t service_slots[GW_SERVICE_SLOTS];             /* [ctl] */
  /* vip -> index + 1 of some service on that address (same probing, hash with port 0 and
   * proto 0): tells "no service on this port" from "not for us" in one probe. */
  uint16_t vip_slots[GW_SERVICE_SLOTS];                 /* [ctl] */
  struct gw_service services[GW_MAX_SERVICES];          /* [ctl] */
  struct gw_group groups[GW_MAX_GROUPS];                /* [ctl] */
  struct gw_host hosts[GW_MAX_HOSTS];                   /* [ctl] */
  /* Per group: [0] = `new` table, [1] = `established` table; entries are host ids. */
  uint16_t maglev[GW_MAX_GROUPS][2][GW_MAGLEV_SIZE];    /* [ctl] */
};

/* ---- data -> control ----------------------------------------------------------------------- */

struct gw_host_counters {        /* 64 bytes, per worker per host id */
  int64_t open_conns;            /* [wN] +1 insert, -1 expiry/removal; sum over workers exact */
  int64_t open_established;      /* [wN] entries in state ESTABLISHED */
  int64_t open_closing;          /* [wN] entries in state CLOSING */
  int64_t sessions;              /* [wN] +1 session insert, -1 session reclaim by this worker; the
                                    per-worker value may be negative, the sum is exact */
  uint64_t new_conns;            /* [wN] connection entries created, and stateless new flows */
  uint64_t packets;              /* [wN] packets forwarded to the host */
  uint64_t bytes;                /* [wN] inner IP bytes forwarded to the host */
  uint64_t reserved;
};

/* How long this worker's connections of one host lasted: from the entry's creation to its removal
 * when the connection ended on its own (idle expiry, found expired by a lookup, or its client
 * reusing the port), in whole seconds of CLOCK_MONOTONIC (removal second - gw_conn.created_s).
 * Entries removed by force (their host disabled, rescheduled without a host, tombstones) and
 * entries moved to another host are not recorded. n[b] counts lifetimes in bucket b of
 * gw::dp::lifetime_bucket (dataplane/core/lifetime.h): whole seconds 0..15, then 8 buckets per
 * doubling up to 2^18 s; longer lifetimes land in the last bucket. A bucket never exceeds
 * 2^31: before one would, the worker halves all of that host's buckets (the shape is kept, the
 * past weighs half). Readers sum over workers; a reader may see a halving half done. */
struct gw_host_lifetimes {         /* 512 bytes, per worker per host id */
  uint32_t n[GW_LIFETIME_BUCKETS]; /* [wN] */
};

struct gw_port_counters {        /* 64 bytes, per worker per port */
  uint64_t rx_packets;           /* [wN] */
  uint64_t rx_bytes;             /* [wN] */
  uint64_t tx_packets;           /* [wN] */
  uint64_t tx_bytes;             /* [wN] */
  uint64_t reserved[4];
};

struct gw_worker {
  /* line 0: liveness and QSBR */
  uint64_t heartbeat_ms;         /* [wN] CLOCK_MONOTONIC ms at the last loop pass; 0 = never ran */
  uint64_t seen_generation;      /* [wN] snapshot generation of the last completed pass */
  uint32_t lcore_id;             /* [wN] DPDK lcore running this worker */
  uint32_t running;              /* [wN] 1 while the loop runs, 0 after a clean stop */
  uint64_t conn_entries;         /* [wN] live entries in this worker's connection table */
  uint64_t conn_stateless;       /* [wN] new flows forwarded without an entry (table full) */
  uint64_t polls;                /* [wN] loop passes */
  uint64_t busy_polls;           /* [wN] passes that received at least one packet */
  uint64_t reserved0;
  struct gw_port_counters ports[GW_MAX_PORTS];          /* [wN] */
  uint64_t drops[GW_MAX_DROP_REASONS];                  /* [wN] by gw::DropReason */
  /* [wN] by gw::Degraded (dataplane/core/degraded.h): packets handled with less state than
   * designed (no persistence session could be made, a table held a host id out of range). Not
   * drops: the packet is still forwarded, and counted under drops only if it is dropped later. */
  uint64_t degraded[GW_MAX_DEGRADED];
  struct gw_host_counters hosts[GW_MAX_HOSTS];          /* [wN] */
  struct gw_host_lifetimes lifetimes[GW_MAX_HOSTS];     /* [wN] by host id */
  /* line: the half-open bound (dataplane/core/conn_table.h, "Half-open share"), and the
   * answers the worker originated */
  uint64_t conn_syn_entries;     /* [wN] live entries in state SYN (tombstones not counted) */
  uint64_t conn_syn_refused;     /* [wN] SYNs given no entry because half-open entries held their
                                    share (bucket or table); forwarded statelessly, so also
                                    counted in conn_stateless */
  uint64_t conn_syn_evicted;     /* [wN] SYN-state entries replaced by a newer SYN's entry */
  /* [wN] ICMP "fragmentation needed" (IPv4 with DF) and ICMPv6 "packet too big" sent for packets
   * too big for their port once encapsulated (the ones withheld by the rate limit are counted
   * under drops[TooBigRateLimited]) */
  uint64_t icmp_too_big_sent;
  uint64_t reserved1[4];
};

/* ---- connection table (one per worker) ----------------------------------------------------- */

/* gw_conn.state [wN] */
#define GW_CONN_EMPTY 0u
#define GW_CONN_SYN 1u         /* TCP SYN seen, handshake not confirmed by a client ACK */
#define GW_CONN_ESTABLISHED 2u /* TCP: the client sent a non-SYN packet */
#define GW_CONN_CLOSING 3u     /* TCP: the client sent FIN or RST */
#define GW_CONN_UDP 4u         /* UDP flow */

/* gw_conn.flags [wN] */
#define GW_CONN_F_TOMBSTONE 0x01u /* its host was disabled with on_disable: drop. Not a connection
                                   * any more (uncounted, skipped by readers); it stays until it
                                   * idles out so that the flow's packets keep being dropped */

struct gw_conn {                 /* 64 bytes: one cache line */
  uint8_t src[16];               /* [wN] client address, wire order */
  uint8_t dst[16];               /* [wN] VIP */
  uint16_t src_port;             /* [wN] wire order */
  uint16_t dst_port;             /* [wN] wire order */
  uint8_t proto;                 /* [wN] */
  uint8_t family;                /* [wN] 4 or 6 */
  uint8_t state;                 /* [wN] GW_CONN_* */
  uint8_t flags;                 /* [wN] GW_CONN_F_* */
  uint16_t host;                 /* [wN] host id */
  uint16_t service;              /* [wN] service index at creation */
  uint32_t created_s;            /* [wN] CLOCK_MONOTONIC seconds */
  uint32_t last_ms;              /* [wN] CLOCK_MONOTONIC ms, wrapping; compare as differences */
  uint32_t session_ms;           /* [wN] ms (wrapping) when this flow last refreshed its client's
                                    persistence session: rate-limits those shared-table writes */
  uint64_t gen;                  /* [wN] snapshot generation the worker used when it created the
                                    entry or moved it to its host (see gw_host.disabled_gen) */
};

struct gw_conn_bucket {          /* 64 bytes: one cache line */
  uint32_t seq;                  /* [wN] odd while the worker changes this bucket's entries;
                                    lock-free readers retry when it was odd or moved */
  uint32_t sig[GW_CONN_WAYS];    /* [wN] 0 = way empty, else a 32-bit key signature (never 0)
                                    whose bit 0 is set while the entry is in state SYN and not a
                                    tombstone (dataplane/core/conn_table.h, kSigSyn) */
};

/* ---- session table (source-IP persistence, shared by all workers) -------------------------- */

/* gw_session.state word [any-w]: bits 0-1 state, bits 16-31 key tag (hash bits) */
#define GW_SESSION_FREE 0u
#define GW_SESSION_BUSY 1u  /* claimed by a writer that is filling or reclaiming it */
#define GW_SESSION_LIVE 2u

struct gw_session {              /* 32 bytes */
  uint32_t state;                /* [any-w] CAS only */
  uint16_t group;                /* [any-w] written while BUSY */
  uint16_t host;                 /* [any-w] written while BUSY */
  uint8_t client[16];            /* [any-w] written while BUSY */
  uint8_t family;                /* [any-w] written while BUSY */
  uint8_t reserved;
  uint16_t timeout_s;            /* [any-w] written while BUSY; lifetime after last_ms (<= 18 h) */
  uint32_t last_ms;              /* [any-w] relaxed stores; the newest packet's time wins */
};

struct gw_session_bucket {       /* 256 bytes: four cache lines */
  struct gw_session e[GW_SESSION_WAYS];
};

/* ---- header -------------------------------------------------------------------------------- */

/* gw_shm_header.backing [create] */
#define GW_SHM_BACKING_TMPFS 1u     /* /dev/shm: 4 KiB pages */
#define GW_SHM_BACKING_HUGETLBFS 2u /* a hugetlbfs mount: huge pages, reserved at creation */

/* gw_shm_header.fallback [create]: why backing auto put the object on tmpfs */
#define GW_SHM_FALLBACK_NONE 0u     /* it did not fall back (or backing was tmpfs by choice) */
#define GW_SHM_FALLBACK_NO_MOUNT 1u /* no hugetlbfs mount found (or the directory is not one) */
#define GW_SHM_FALLBACK_POOL 2u     /* too few free huge pages (ENOMEM / ENOSPC) */
#define GW_SHM_FALLBACK_FAILED 3u   /* another failure making the file (fallback_errno) */

struct gw_shm_header {
  uint64_t magic;                /* [create] stored last, with release order */
  uint32_t layout_version;       /* [create] */
  uint32_t header_size;          /* [create] sizeof(struct gw_shm_header) */
  uint64_t total_size;           /* [create] bytes of the whole object */
  char instance[32];             /* [create] NUL-terminated */
  /* geometry [create]: both processes derive it from the configuration and attach refuses a
   * mismatch, printing both values */
  uint32_t n_workers;
  uint32_t conn_buckets;         /* per worker, power of two */
  uint32_t conn_capacity;        /* per worker: live entries allowed */
  uint32_t session_buckets;      /* power of two */
  uint32_t session_capacity;     /* live sessions allowed */
  uint32_t reserved0;
  uint64_t off_snapshots[2];
  uint64_t off_workers;
  uint64_t worker_stride;
  uint64_t off_conn_tables;
  uint64_t conn_table_stride;    /* buckets then entries (entries at + conn_buckets*64) */
  uint64_t off_sessions;
  uint64_t created_ms;           /* [create] CLOCK_REALTIME ms */
  /* backing [create]: where the pages come from, and why backing auto ended on tmpfs, so that
   * the process that attaches (gatewayd, when the data plane created it) reports the same
   * warning as the creator logged (shm::backing_warning) */
  uint32_t backing;              /* GW_SHM_BACKING_* */
  uint32_t fallback;             /* GW_SHM_FALLBACK_*; NONE when backing was not a fallback */
  uint64_t page_size;            /* bytes of the pages behind the object (4096 on tmpfs) */
  int32_t fallback_errno;        /* errno of the hugetlbfs step that failed (POOL, FAILED) */
  uint32_t reserved_b;
  uint64_t fallback_page_size;   /* huge page size of the mount tried; 0 when none was found */
  uint8_t reserved1[16];
  /* line: publication [ctl] */
  uint64_t published;            /* generation << 1 | snapshot index; 0 = nothing published */
  uint64_t ctl_pid;              /* [ctl] */
  uint64_t ctl_heartbeat_ms;     /* [ctl] CLOCK_MONOTONIC ms */
  uint8_t reserved2[40];
  /* line: data plane process [dp] */
  uint64_t dp_pid;               /* [dp] */
  uint64_t dp_started_ms;        /* [dp] CLOCK_REALTIME ms */
  uint64_t dp_heartbeat_ms;      /* [dp] CLOCK_MONOTONIC ms, main thread */
  uint64_t dp_restarts;          /* [dp] attaches to an existing object */
  uint8_t reserved3[32];
};

GW_STATIC_ASSERT(sizeof(struct gw_host) == 32, "gw_host");
GW_STATIC_ASSERT(sizeof(struct gw_service) == 48, "gw_service");
GW_STATIC_ASSERT(sizeof(struct gw_group) == 16, "gw_group");
GW_STATIC_ASSERT(sizeof(struct gw_host_counters) == 64, "gw_host_counters");
GW_STATIC_ASSERT(sizeof(struct gw_port_counters) == 64, "gw_port_counters");
GW_STATIC_ASSERT(sizeof(struct gw_host_lifetimes) == 512, "gw_host_lifetimes");
GW_STATIC_ASSERT(sizeof(struct gw_conn) == 64, "gw_conn is one cache line");
GW_STATIC_ASSERT(sizeof(struct gw_conn_bucket) == 64, "gw_conn_bucket is one cache line");
GW_STATIC_ASSERT(sizeof(struct gw_session) == 32, "gw_session");
GW_STATIC_ASSERT(sizeof(struct gw_session_bucket) == 256, "gw_session_bucket");
GW_STATIC_ASSERT(sizeof(struct gw_shm_header) == 320, "gw_shm_header");
GW_STATIC_ASSERT(offsetof(struct gw_shm_header, backing) == 144, "backing after created_ms");
GW_STATIC_ASSERT(offsetof(struct gw_shm_header, fallback_page_size) == 168, "backing fields");
GW_STATIC_ASSERT(offsetof(struct gw_shm_header, published) == 192, "publication line");
GW_STATIC_ASSERT(offsetof(struct gw_shm_header, dp_pid) == 256, "data-plane line");
GW_STATIC_ASSERT(offsetof(struct gw_snapshot, service_slots) == 64, "snapshot head");
GW_STATIC_ASSERT(offsetof(struct gw_worker, ports) == 64, "worker line 0");
GW_STATIC_ASSERT(offsetof(struct gw_worker, hosts) % 64 == 0, "host counters aligned");
GW_STATIC_ASSERT(offsetof(struct gw_worker, lifetimes) ==
                     offsetof(struct gw_worker, hosts) + 64 * GW_MAX_HOSTS,
                 "lifetimes follow the host counters, line aligned");
GW_STATIC_ASSERT(offsetof(struct gw_worker, conn_syn_entries) ==
                     offsetof(struct gw_worker, lifetimes) + 512 * GW_MAX_HOSTS,
                 "half-open counters follow the lifetimes, line aligned");
GW_STATIC_ASSERT(offsetof(struct gw_conn, session_ms) == 52, "gw_conn.session_ms");
GW_STATIC_ASSERT(offsetof(struct gw_conn, gen) == 56, "gw_conn.gen");
GW_STATIC_ASSERT(offsetof(struct gw_host, disabled_gen) == 24, "gw_host.disabled_gen");
GW_STATIC_ASSERT(offsetof(struct gw_worker, icmp_too_big_sent) ==
                     offsetof(struct gw_worker, conn_syn_entries) + 24,
                 "icmp_too_big_sent shares the half-open counters' line");
GW_STATIC_ASSERT(sizeof(struct gw_worker) % 64 == 0, "worker stride");

#endif /* GW_SHM_LAYOUT_H */
