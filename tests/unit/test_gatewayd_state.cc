// gatewayd's state directory: versions, history, runtime state and candidate survive a restart,
// a kill -9 between any two writes leaves a consistent state (simulated by building the directory
// as an interrupted operation would leave it, then opening State over it), and a failed write
// changes nothing. Also the small helpers (atomic writes, the line diff, token redaction).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"
#include "ctl/gatewayd/base/state.h"
#include "ctl/gatewayd/api/auth.h"
#include "ctl/gatewayd/base/files.h"
#include "ctl/gatewayd/base/text.h"
#include "ctl/gatewayd/service/audit_log.h"

namespace gw::gatewayd {
namespace {

using TempDir = gw::test::TempDir;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string slurp(const std::string& path) {
  auto r = read_file(path);
  return r ? *r : std::string("<missing>");
}

RuntimeState runtime_with(uint64_t version) {
  RuntimeState rs;
  rs.active_version = version;
  HostOverride o;
  o.mode = HostMode::NoNewSessions;
  o.set_ms = 1000;
  o.by = "uid 0";
  o.keep_sessions = false;
  o.drain_started_ms = 900;
  o.deadline_ms = 5000;
  o.then = DrainThen::Disable;
  rs.hosts[{"web", "b1"}] = o;
  rs.quiesce = {true, QuiesceBlock::Designtime, 777};
  EXPECT_TRUE(rs.ids.restore({{"web", 0}}, {{{"web", "b1"}, 0}, {{"web", "b2"}, 1}}).ok());
  return rs;
}

VersionRecord record(uint64_t v, std::optional<uint64_t> rollback_of = std::nullopt) {
  VersionRecord r;
  r.version = v;
  r.activated_ms = 1000 * v;
  r.by = "uid 0";
  r.source = v == 1 ? "file /etc/gateway/gw1.yaml" : "candidate";
  r.rollback_of = rollback_of;
  return r;
}

// A directory with versions 1 and 2 committed (2 active).
State two_versions(const std::string& dir) {
  auto s = State::open(dir);
  EXPECT_TRUE(s.ok()) << s.error();
  EXPECT_TRUE(s->add_version("v: 1\n", record(1), runtime_with(1), false).ok());
  EXPECT_TRUE(s->save_candidate("v: 2\n").ok());
  EXPECT_TRUE(s->add_version("v: 2\n", record(2), runtime_with(2), true).ok());
  return std::move(*s);
}

TEST(GatewaydState, RuntimeJsonRoundTrips) {
  const RuntimeState rs = runtime_with(4);
  auto back = runtime_from_json(runtime_to_json(rs));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->active_version, 4u);
  EXPECT_EQ(back->hosts, rs.hosts);
  EXPECT_EQ(back->quiesce, rs.quiesce);
  EXPECT_EQ(back->ids.groups(), rs.ids.groups());
  EXPECT_EQ(back->ids.hosts(), rs.ids.hosts());
}

TEST(GatewaydState, HistoryJsonRoundTrips) {
  const std::vector<VersionRecord> h = {record(1), record(2), record(3, 1)};
  auto back = history_from_json(history_to_json(h));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(*back, h);
}

TEST(GatewaydState, FreshDirectoryHasNothingActive) {
  TempDir t;
  auto s = State::open(t.path() + "/a/b");
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_FALSE(s->has_active());
  EXPECT_EQ(s->next_version(), 1u);
  EXPECT_TRUE(s->history().empty());
  EXPECT_FALSE(s->candidate());
  EXPECT_TRUE(std::filesystem::is_directory(t.path() + "/a/b/versions"));
}

TEST(GatewaydState, VersionsHistoryRuntimeAndCandidateSurviveReopen) {
  TempDir t;
  {
    State s = two_versions(t.path());
    EXPECT_FALSE(s.candidate());  // cleared by the activation
    ASSERT_TRUE(s.save_candidate("v: 3\n").ok());
  }
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_TRUE(s->repairs().empty());
  EXPECT_EQ(s->runtime().active_version, 2u);
  EXPECT_EQ(s->runtime().hosts, runtime_with(2).hosts);
  EXPECT_EQ(s->runtime().quiesce, runtime_with(2).quiesce);
  ASSERT_EQ(s->history().size(), 2u);
  // Each record carries its file's digest (sha256 of "v: 1\n" and "v: 2\n").
  VersionRecord r1 = record(1);
  r1.digest = "sha256:7ab2c7d20f3a3dc4ab2c8e2d9b0e8b5e0e2f6c9fd1c3f0f3c7d5c1b1d0e0d0e0";
  EXPECT_EQ(s->history()[0].digest.size(), r1.digest.size());
  EXPECT_EQ(s->history()[0].digest.rfind("sha256:", 0), 0u);
  EXPECT_NE(s->history()[0].digest, s->history()[1].digest);
  r1.digest = s->history()[0].digest;
  EXPECT_EQ(s->history()[0], r1);
  VersionRecord r2 = record(2);
  r2.digest = s->history()[1].digest;
  EXPECT_EQ(s->history()[1], r2);
  EXPECT_EQ(s->version_yaml(1).value(), "v: 1\n");
  EXPECT_EQ(s->version_yaml(2).value(), "v: 2\n");
  EXPECT_FALSE(s->version_yaml(3).ok());
  ASSERT_TRUE(s->candidate());
  EXPECT_EQ(*s->candidate(), "v: 3\n");
  EXPECT_EQ(s->version_path(2), t.path() + "/versions/000002.yaml");
}

TEST(GatewaydState, AddVersionRefusesAnythingButTheNextNumber) {
  TempDir t;
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->add_version("x", record(2), runtime_with(2), false).ok());
  EXPECT_FALSE(s->add_version("x", record(1), runtime_with(2), false).ok());
  EXPECT_FALSE(s->has_active());
}

// ---- kill -9 between the steps of an operation -----------------------------------------------

TEST(GatewaydStateCrash, LeftoverTmpFilesAreRemoved) {
  TempDir t;
  { two_versions(t.path()); }
  // Interrupted writes of every kind: the old content must win.
  write(t.path() + "/runtime.json.tmp", "{\"format\": 1, \"active_v");
  write(t.path() + "/history.json.tmp", "garbage");
  write(t.path() + "/candidate.yaml.tmp", "half a yaml");
  write(t.path() + "/versions/000003.yaml.tmp", "half");
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->runtime().active_version, 2u);
  EXPECT_EQ(s->repairs().size(), 4u);
  EXPECT_FALSE(std::filesystem::exists(t.path() + "/runtime.json.tmp"));
  EXPECT_FALSE(std::filesystem::exists(t.path() + "/versions/000003.yaml.tmp"));
  EXPECT_FALSE(s->candidate());
}

TEST(GatewaydStateCrash, ActivationKilledAfterTheVersionFile) {
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/versions/000003.yaml", "v: 3\n");
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->runtime().active_version, 2u);
  EXPECT_EQ(s->history().size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(t.path() + "/versions/000003.yaml"));
  // The next activation reuses number 3.
  EXPECT_EQ(s->next_version(), 3u);
  ASSERT_TRUE(s->add_version("v: 3b\n", record(3), runtime_with(3), false).ok());
  EXPECT_EQ(s->version_yaml(3).value(), "v: 3b\n");
}

TEST(GatewaydStateCrash, ActivationKilledAfterTheHistory) {
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/versions/000003.yaml", "v: 3\n");
  write(t.path() + "/history.json", history_to_json({record(1), record(2), record(3)}));
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->runtime().active_version, 2u);
  ASSERT_EQ(s->history().size(), 2u);
  EXPECT_EQ(s->history().back().version, 2u);
  EXPECT_EQ(s->find_version(3), nullptr);
  EXPECT_FALSE(s->version_yaml(3).ok());
}

TEST(GatewaydStateCrash, ActivationKilledAfterTheCommitBeforeTheCandidateWasRemoved) {
  TempDir t;
  {
    State s = two_versions(t.path());
    ASSERT_TRUE(s.save_candidate("v: 2\n").ok());  // equal to the active version
  }
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_FALSE(s->candidate());
  EXPECT_FALSE(std::filesystem::exists(t.path() + "/candidate.yaml"));
  // A different candidate is kept.
  ASSERT_TRUE(s->save_candidate("v: 9\n").ok());
  auto s2 = State::open(t.path());
  ASSERT_TRUE(s2.ok());
  ASSERT_TRUE(s2->candidate());
  EXPECT_EQ(*s2->candidate(), "v: 9\n");
}

// A candidate cut short could still validate as a smaller configuration and be activated: its
// digest line tells, and such a file is moved aside (kept for the operator), never used.
TEST(GatewaydStateCrash, CandidateCutShortIsMovedAsideNeverUsed) {
  const std::string yaml = "services:\n  - web\nhosts:\n  - b1\n  - b2\n";
  TempDir base;
  {
    State s = two_versions(base.path());
    ASSERT_TRUE(s.save_candidate(yaml).ok());
  }
  const std::string full = slurp(base.path() + "/candidate.yaml");
  ASSERT_GT(full.size(), yaml.size());
  for (size_t keep = 0; keep < full.size(); keep += 5) {
    TempDir t;
    {
      State s = two_versions(t.path());
      ASSERT_TRUE(s.save_candidate(yaml).ok());
    }
    const std::string p = t.path() + "/candidate.yaml";
    write(p, full.substr(0, keep));
    auto s = State::open(t.path());
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_FALSE(s->candidate()) << "kept " << keep;
    EXPECT_FALSE(std::filesystem::exists(p));
    EXPECT_EQ(slurp(p + ".damaged"), full.substr(0, keep));
    ASSERT_FALSE(s->repairs().empty());
    EXPECT_NE(s->repairs().back().find(p + ".damaged"), std::string::npos);
  }
  // Whole, it reads back as it was saved; a text without a final newline too.
  TempDir t;
  {
    State s = two_versions(t.path());
    ASSERT_TRUE(s.save_candidate("v: 7").ok());
  }
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok() && s->candidate());
  EXPECT_EQ(*s->candidate(), "v: 7");
}

TEST(GatewaydStateCrash, FirstStartKilledBeforeItsCommitIsAFirstStartAgain) {
  TempDir t;
  std::filesystem::create_directories(t.path() + "/versions");
  write(t.path() + "/versions/000001.yaml", "v: 1\n");
  write(t.path() + "/history.json", history_to_json({record(1)}));
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_FALSE(s->has_active());
  EXPECT_TRUE(s->history().empty());
  ASSERT_TRUE(s->add_version("v: 1 again\n", record(1), runtime_with(1), false).ok());
  auto s2 = State::open(t.path());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->history().size(), 1u);
  EXPECT_EQ(s2->version_yaml(1).value(), "v: 1 again\n");
}

TEST(GatewaydStateCrash, DamagedRuntimeFileIsAnErrorNotAFreshStart) {
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/runtime.json", "{\"format\": 1}");
  auto s = State::open(t.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("runtime.json is damaged"), std::string::npos) << s.error();
}

// A version file cut short (a disk that lost its tail, a hand edit) may still be valid YAML: a
// configuration with fewer hosts. The digest in its history record refuses it, with its path,
// whatever the length it was cut to, and nothing in the directory changes.
TEST(GatewaydStateCrash, TruncatedOrChangedActiveVersionIsRefusedWithItsPath) {
  const std::string full = "services:\n  - web\nhosts:\n  - b1\n  - b2\n";
  for (size_t keep : {size_t{0}, size_t{9}, full.size() - 6, full.size() - 1}) {
    TempDir t;
    {
      auto s = State::open(t.path());
      ASSERT_TRUE(s.ok()) << s.error();
      ASSERT_TRUE(s->add_version(full, record(1), runtime_with(1), false).ok());
    }
    const std::string p = t.path() + "/versions/000001.yaml";
    write(p, full.substr(0, keep));
    const std::string history = slurp(t.path() + "/history.json");
    const std::string runtime = slurp(t.path() + "/runtime.json");
    auto s = State::open(t.path());
    ASSERT_FALSE(s.ok()) << "kept " << keep << " bytes";
    EXPECT_NE(s.error().find(p), std::string::npos) << s.error();
    EXPECT_NE(s.error().find("damaged"), std::string::npos) << s.error();
    EXPECT_EQ(slurp(p), full.substr(0, keep));
    EXPECT_EQ(slurp(t.path() + "/history.json"), history);
    EXPECT_EQ(slurp(t.path() + "/runtime.json"), runtime);
  }
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/versions/000002.yaml", "v: 3\n");  // same length, other content
  EXPECT_FALSE(State::open(t.path()).ok());
}

// An older version is checked when it is read (a rollback), not trusted.
TEST(GatewaydStateCrash, DamagedOlderVersionIsRefusedWhenRead) {
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/versions/000001.yaml", "v:");
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  auto v1 = s->version_yaml(1);
  ASSERT_FALSE(v1.ok());
  EXPECT_NE(v1.error().find(t.path() + "/versions/000001.yaml"), std::string::npos) << v1.error();
  EXPECT_EQ(s->version_yaml(2).value(), "v: 2\n");
}

// Records written before the digest existed (no "digest" field) are read unchecked.
TEST(GatewaydStateCrash, HistoryWithoutDigestsStillOpens) {
  TempDir t;
  { two_versions(t.path()); }
  write(t.path() + "/history.json", history_to_json({record(1), record(2)}));
  auto s = State::open(t.path());
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->version_yaml(2).value(), "v: 2\n");
}

// Every state file cut at any length is either refused with its path or opens to exactly the
// state that was written: never to a part of it.
TEST(GatewaydStateCrash, TruncatedStateFilesAreRefusedWithTheirPath) {
  for (const char* name : {"runtime.json", "history.json"}) {
    TempDir base;
    { two_versions(base.path()); }
    const std::string full = slurp(base.path() + "/" + name);
    for (size_t keep = 0; keep < full.size(); keep += 7) {
      TempDir t;
      { two_versions(t.path()); }
      const std::string p = t.path() + "/" + name;
      write(p, full.substr(0, keep));
      auto s = State::open(t.path());
      if (s.ok()) {
        // Only a cut inside the trailing whitespace can leave a complete document.
        EXPECT_GE(keep, full.find_last_not_of(" \n") + 1) << name << " kept " << keep;
        continue;
      }
      EXPECT_NE(s.error().find(p), std::string::npos) << name << ": " << s.error();
    }
  }
}

TEST(GatewaydStateCrash, MissingActiveVersionFileIsAnError) {
  TempDir t;
  { two_versions(t.path()); }
  std::filesystem::remove(t.path() + "/versions/000002.yaml");
  auto s = State::open(t.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("000002.yaml"), std::string::npos) << s.error();
}

// ---- a failed write changes nothing ------------------------------------------------------------

TEST(GatewaydStateFault, FailedRuntimeWriteKeepsDiskAndMemory) {
  TempDir t;
  State s = two_versions(t.path());
  const std::string before = slurp(t.path() + "/runtime.json");
  s.set_write_fault([](std::string_view p) { return p.ends_with("runtime.json"); });
  RuntimeState rs = s.runtime();
  rs.hosts.clear();
  EXPECT_FALSE(s.save_runtime(rs).ok());
  EXPECT_EQ(s.runtime().hosts.size(), 1u);
  EXPECT_EQ(slurp(t.path() + "/runtime.json"), before);
}

TEST(GatewaydStateFault, ActivationFailingAtEachStepChangesNothing) {
  for (const char* failing : {"000003.yaml", "history.json", "runtime.json"}) {
    SCOPED_TRACE(failing);
    TempDir t;
    State s = two_versions(t.path());
    ASSERT_TRUE(s.save_candidate("v: 3\n").ok());
    s.set_write_fault([&](std::string_view p) { return p.ends_with(failing); });
    EXPECT_FALSE(s.add_version("v: 3\n", record(3), runtime_with(3), true).ok());
    EXPECT_EQ(s.runtime().active_version, 2u);
    EXPECT_EQ(s.history().size(), 2u);
    EXPECT_TRUE(s.candidate());
    // And what is on disk reads back as version 2 with its candidate.
    auto r = State::open(t.path());
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r->runtime().active_version, 2u);
    EXPECT_EQ(r->history().size(), 2u);
    ASSERT_TRUE(r->candidate());
    EXPECT_EQ(*r->candidate(), "v: 3\n");
  }
}

TEST(GatewaydStateFault, FailedCandidateWriteKeepsTheOldCandidate) {
  TempDir t;
  State s = two_versions(t.path());
  ASSERT_TRUE(s.save_candidate("old\n").ok());
  s.set_write_fault([](std::string_view p) { return p.ends_with("candidate.yaml"); });
  EXPECT_FALSE(s.save_candidate("new\n").ok());
  EXPECT_EQ(*s.candidate(), "old\n");
  EXPECT_EQ(slurp(t.path() + "/candidate.yaml").rfind("old\n# sha256:", 0), 0u);
  auto r = State::open(t.path());
  ASSERT_TRUE(r.ok() && r->candidate());
  EXPECT_EQ(*r->candidate(), "old\n");
}

TEST(GatewaydState, AuditAppendsLines) {
  TempDir t;
  State s = two_versions(t.path());
  ASSERT_TRUE(s.append_audit("{\"a\":1}").ok());
  ASSERT_TRUE(s.append_audit("{\"a\":2}").ok());
  EXPECT_EQ(slurp(t.path() + "/audit.log"), "{\"a\":1}\n{\"a\":2}\n");
}

// ---- helpers
// -------------------------------------------------------------------------------------

TEST(GatewaydUtil, AtomicWriteReplacesAndLeavesNoTemporary) {
  TempDir t;
  const std::string p = t.path() + "/f";
  ASSERT_TRUE(write_file_atomic(p, "one", 0640).ok());
  ASSERT_TRUE(write_file_atomic(p, "two", 0640).ok());
  EXPECT_EQ(slurp(p), "two");
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
  EXPECT_FALSE(write_file_atomic(t.path() + "/no/such/dir/f", "x", 0640).ok());
}

TEST(GatewaydUtil, IsoTime) {
  EXPECT_EQ(iso_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso_time(1'795'255'200'999), "2026-11-21T10:00:00Z");
}

TEST(GatewaydUtil, UnifiedDiff) {
  EXPECT_EQ(unified_diff("a\nb\n", "a\nb\n", "x", "y"), "");
  EXPECT_EQ(unified_diff("a\nb\nc\n", "a\nB\nc\n", "version 1", "candidate"),
            "--- version 1\n+++ candidate\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  // Far apart changes make two hunks with three lines of context.
  std::string a;
  std::string b;
  for (int i = 0; i < 20; ++i) {
    a += "l" + std::to_string(i) + "\n";
    b += (i == 2 || i == 17 ? "X" : "l") + std::to_string(i) + "\n";
  }
  const std::string d = unified_diff(a, b, "a", "b");
  EXPECT_NE(d.find("@@ -1,6 +1,6 @@\n l0\n l1\n-l2\n+X2\n l3\n l4\n l5\n"), std::string::npos) << d;
  EXPECT_NE(d.find("@@ -15,6 +15,6 @@\n l14\n l15\n l16\n-l17\n+X17\n l18\n l19\n"),
            std::string::npos)
      << d;
  // Pure insertion at the end.
  EXPECT_EQ(unified_diff("a\n", "a\nb\n", "x", "y"), "--- x\n+++ y\n@@ -1,1 +1,2 @@\n a\n+b\n");
}

TEST(GatewaydUtil, RedactsInlineTokens) {
  const std::string y =
      "control:\n  tokens:\n    - {name: demo, token: demo-token-not-a-secret}\n"
      "    - name: x\n      token: \"quoted secret\"\n    - {name: f, token_file: /etc/t}\n";
  const std::string r = redact_yaml_tokens(y);
  EXPECT_EQ(r.find("demo-token-not-a-secret"), std::string::npos) << r;
  EXPECT_EQ(r.find("quoted secret"), std::string::npos) << r;
  EXPECT_NE(r.find("token_file: /etc/t"), std::string::npos) << r;
  EXPECT_NE(r.find("tokens:"), std::string::npos) << r;
  EXPECT_EQ(redact_yaml_tokens("token: 'single' # c\nmytoken: keep\n"),
            "token: \"<redacted>\" # c\nmytoken: keep\n");
  EXPECT_EQ(redact_yaml_tokens("- {token: abc,name: n}"), "- {token: \"<redacted>\",name: n}");
  EXPECT_EQ(redact_yaml_tokens("no secrets here"), "no secrets here");
}

TEST(GatewaydUtil, SecureEqual) {
  EXPECT_TRUE(secure_equal("abc", "abc"));
  EXPECT_FALSE(secure_equal("abc", "abd"));
  EXPECT_FALSE(secure_equal("abc", "abcd"));
  EXPECT_FALSE(secure_equal("", "a"));
}

}  // namespace
}  // namespace gw::gatewayd
