// Invariant checks, usable from every zone (header-only; no DPDK, no allocation).
//
// Zone: shared layout (the bottom layer: everything may include it).
//
//   GW_CHECK(cond, msg)   always compiled in; when cond is false prints file:line, the condition
//                         and msg to stderr and aborts. For what cannot happen after start-up:
//                         sizes and indexes the code computed itself, geometry it laid out,
//                         single-writer assumptions. Never on packet contents or configuration
//                         values: those are inputs, handled as errors (STYLE.md, "Errors").
//   GW_DCHECK(cond, msg)  the same in debug builds; under NDEBUG it compiles to nothing (cond is
//                         not evaluated). For the fast path, where a branch per packet costs.
//
// The failure path is cold and [[noreturn]]; the fast path only ever sees a predicted branch.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace gw::detail {

[[noreturn, gnu::cold, gnu::noinline]] inline void check_failed(const char* file, int line,
                                                                const char* cond,
                                                                const char* msg) noexcept {
  std::fprintf(stderr, "%s:%d: invariant violated: %s (%s)\n", file, line, cond, msg);
  std::fflush(stderr);
  std::abort();
}

}  // namespace gw::detail

#define GW_CHECK(cond, msg)                     \
  (__builtin_expect(static_cast<bool>(cond), 1) \
       ? static_cast<void>(0)                   \
       : ::gw::detail::check_failed(__FILE__, __LINE__, #cond, msg))

#ifdef NDEBUG
#define GW_DCHECK(cond, msg) static_cast<void>(sizeof(static_cast<bool>(cond)))
#else
#define GW_DCHECK(cond, msg) GW_CHECK(cond, msg)
#endif
