// bench/drain_replay: drains of synthetic hosts (tests/support/drain_replay.h), every estimator
// scored against the true finishing time; prints the table of bench/RESULTS.md.
//
//   drain_replay [--seeds N] [--lag S] [--only NAME] [--no-oracle] [--trace NAME:SEED]
//
// --trace prints one run second by second (count, true remaining, old, median, p90, long-lived).
#include "tests/support/drain_replay.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string pct(double v) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f %%", 100 * v);
  return b;
}

std::string jump(double v) {
  if (v > 1000) {
    return "> 1000";  // the old fit's estimate of a count that stopped falling is unbounded
  }
  char b[16];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seeds = 20;
  double lag = 1;
  std::string only;
  std::string trace;
  bool oracle = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seeds") {
      seeds = std::stoull(value());
    } else if (a == "--lag") {
      lag = std::stod(value());
    } else if (a == "--only") {
      only = value();
    } else if (a == "--no-oracle") {
      oracle = false;
    } else if (a == "--trace") {
      trace = value();
    } else {
      std::fprintf(stderr,
                   "usage: drain_replay [--seeds N] [--lag S] [--only NAME] "
                   "[--no-oracle] [--trace NAME:SEED]\n");
      return 2;
    }
  }
  auto scenarios = gw::test::standard_scenarios();
  for (auto& h : gw::test::harder_scenarios()) {
    scenarios.push_back(std::move(h));
  }
  if (!trace.empty()) {
    const auto colon = trace.find(':');
    const std::string name = trace.substr(0, colon);
    const uint64_t seed = colon == std::string::npos ? 1 : std::stoull(trace.substr(colon + 1));
    for (const auto& s : scenarios) {
      if (s.name != name) continue;
      const gw::test::ReplayRun r = gw::test::replay(s, seed, lag, oracle);
      std::printf("# %s seed %llu: %llu open, %llu lifetimes of history, finish %.1f s\n",
                  s.name.c_str(), static_cast<unsigned long long>(seed),
                  static_cast<unsigned long long>(r.open_at_start),
                  static_cast<unsigned long long>(r.history), r.finish_s);
      std::printf("%6s %6s %9s %9s %9s %9s %5s %9s %9s\n", "t", "open", "true", "old", "eta", "p90",
                  "long", "oracle", "o-p90");
      auto o = [](const std::optional<double>& v) { return v ? *v : -1.0; };
      for (size_t t = 0; t < r.count.size(); ++t) {
        std::printf("%6zu %6llu %9.1f %9.1f %9.1f %9.1f %5llu %9.1f %9.1f\n", t,
                    static_cast<unsigned long long>(r.count[t]),
                    r.finish_s - static_cast<double>(t), o(r.old_eta[t]), o(r.eta[t]),
                    o(r.eta_p90[t]), static_cast<unsigned long long>(r.long_lived[t]),
                    o(r.oracle_eta[t]), o(r.oracle_p90[t]));
      }
    }
    return 0;
  }
  std::printf("%llu seeds per scenario, scan lag %.1f s\n\n",
              static_cast<unsigned long long>(seeds), lag);
  std::printf(
      "| scenario | open at start | drain | estimator | error (of the drain) | "
      "error (of the time left) | p90 above the truth | answered | max jump |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : scenarios) {
    if (!only.empty() && s.name != only) continue;
    std::vector<gw::test::ReplayRun> runs;
    double open = 0;
    double drain = 0;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
      runs.push_back(gw::test::replay(s, seed, lag, oracle));
      open += static_cast<double>(runs.back().open_at_start);
      drain += runs.back().finish_s;
    }
    using gw::test::Estimator;
    const std::pair<const char*, Estimator> rows[] = {{"old (count fit)", Estimator::Old},
                                                      {"new (lifetimes)", Estimator::New},
                                                      {"oracle", Estimator::Oracle}};
    bool first = true;
    for (const auto& [label, which] : rows) {
      if (which == Estimator::Oracle && !oracle) {
        continue;
      }
      const gw::test::ReplayScore sc = gw::test::score(runs, which);
      if (first) {
        std::printf("| %s | %.0f | %.0f s |", s.name.c_str(), open / static_cast<double>(seeds),
                    drain / static_cast<double>(seeds));
      } else {
        std::printf("| | | |");
      }
      first = false;
      std::printf(" %s | %s | %s | %s | %s | %s |", label, pct(sc.median_error).c_str(),
                  pct(sc.median_remaining_error).c_str(),
                  which == Estimator::Old ? "-" : pct(sc.p90_cover).c_str(),
                  pct(sc.answered).c_str(), jump(sc.max_jump).c_str());
      if (which == Estimator::New) {
        std::printf(" (%s before smoothing)", jump(sc.raw_max_jump).c_str());
        if (sc.with_long_lived > 0) {
          std::printf(" long-lived in %s of the instants", pct(sc.with_long_lived).c_str());
        }
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
