#include "dataplane/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstdio>

namespace gw::dp {

void log_line(std::string_view text) {
  std::fprintf(stderr, "gateway-dataplane: %.*s\n", static_cast<int>(text.size()), text.data());
}

void log_warning(std::string_view text) {
  std::fprintf(stderr, "gateway-dataplane: warning: %.*s\n", static_cast<int>(text.size()),
               text.data());
}

std::string dpdk_error(std::string_view what, int negative_errno) {
  const int e = negative_errno < 0 ? -negative_errno : negative_errno;
  return std::string(what) + ": " + rte_strerror(e) + " (" + std::to_string(-e) + ")";
}

bool eal_args_choose_lcores(const std::vector<std::string>& eal) {
  for (const std::string& a : eal) {
    if (a == "--lcores" || a.starts_with("--lcores=") || a.starts_with("-l") ||
        a.starts_with("-c")) {
      return true;
    }
  }
  return false;
}

unsigned pick_main_lcore(const std::vector<unsigned>& workers) {
  unsigned id = 0;
  while (std::find(workers.begin(), workers.end(), id) != workers.end()) {
    ++id;
  }
  return id;
}

std::vector<std::string> eal_arguments(std::string_view program, std::string_view instance,
                                       const std::vector<std::string>& eal,
                                       const std::vector<unsigned>& workers) {
  std::vector<std::string> args;
  args.emplace_back(program);
  args.insert(args.end(), eal.begin(), eal.end());
  if (!eal_args_choose_lcores(eal)) {
    const unsigned main_lcore = pick_main_lcore(workers);
    std::vector<unsigned> all = workers;
    all.push_back(main_lcore);
    std::sort(all.begin(), all.end());
    std::string list;
    for (unsigned id : all) {
      list += (list.empty() ? "" : ",") + std::to_string(id);
    }
    args.emplace_back("-l");
    args.push_back(list);
    args.emplace_back("--main-lcore");
    args.push_back(std::to_string(main_lcore));
  }
  const bool has_prefix = std::any_of(eal.begin(), eal.end(), [](const std::string& a) {
    return a == "--file-prefix" || a.starts_with("--file-prefix=");
  });
  if (!has_prefix) {
    args.push_back("--file-prefix=gateway-" + std::string(instance));
  }
  return args;
}

Result<void> eal_init(const std::vector<std::string>& args, const std::vector<unsigned>& workers) {
  // rte_eal_init permutes argv and may keep pointers into it: the strings live as long as the
  // process (EAL is initialised once per process).
  static std::vector<std::string> storage;
  static std::vector<char*> argv;
  storage = args;
  argv.clear();
  std::string joined;
  for (std::string& a : storage) {
    argv.push_back(a.data());
    joined += (joined.empty() ? "" : " ") + a;
  }
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(storage.size()), argv.data()) < 0) {
    return make_error(dpdk_error("EAL initialisation failed (" + joined + ")", -rte_errno));
  }
  const unsigned main_lcore = rte_get_main_lcore();
  for (unsigned id : workers) {
    if (id >= RTE_MAX_LCORE || !rte_lcore_is_enabled(id)) {
      return make_error("lcore " + std::to_string(id) +
                        " of dataplane.lcores is not enabled by the EAL arguments (" + joined +
                        ")");
    }
    if (id == main_lcore) {
      return make_error("lcore " + std::to_string(id) +
                        " of dataplane.lcores is the EAL main lcore; workers need lcores of "
                        "their own (--main-lcore)");
    }
  }
  return {};
}

}  // namespace gw::dp
