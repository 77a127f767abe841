// ledger_test.cc - the worker ledger from C and C++: holds through the C
// ABI, a pinned Snapshot held for its lifetime, more distinct versions than
// an entry has slots, a C worker SIGKILLed while it holds, a forked child's
// own entry. Real publishers, real confcastctl, real processes; what the
// ledger says is read the way an operator reads it (confcastctl workers
// --json, wait --converged). LedgerThreads runs in one process (its writer is
// the publisher's SegmentWriter in a thread): the ThreadSanitizer build runs it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "confcast/confcast.h"
#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/wait.hpp"
#include "ledger.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace {

using namespace confcast::test_support;
using confcast::Subscriber;

constexpr milliseconds kTimeout{15000};

std::string ModelConfig(const std::string& model) { return "llm:\n  model: " + model + "\n"; }

// One worker's line of `confcastctl workers --json`, if it is listed.
std::optional<nlohmann::json> LedgerLine(const std::string& segment, pid_t pid, uint64_t* published = nullptr) {
  const ProcessResult r = RunCtl(segment, {"workers", "--json"});
  if (r.status.code != 0) throw std::runtime_error("confcastctl workers: " + r.Describe());
  const nlohmann::json doc = nlohmann::json::parse(r.out);
  if (published) *published = doc["version"].get<uint64_t>();
  for (const auto& w : doc["workers"]) {
    if (w["pid"].get<pid_t>() == pid) return w;
  }
  return std::nullopt;
}

int Gate(const std::string& segment, const std::string& timeout_s, std::string* err = nullptr) {
  const ProcessResult r = RunCtl(segment, {"wait", "--converged", "--timeout", timeout_s}, kTimeout);
  if (err) *err = r.err;
  return r.timed_out ? -1 : r.status.code;
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteInPlace(config_, ModelConfig("first"));
    PublisherOptions o;
    o.config = config_;
    o.segment = segment_.name();
    publisher_.emplace(StartPublisher(o));
    watcher_ = OpenWhenPublished(segment_.name(), kTimeout);
    ASSERT_TRUE(watcher_.has_value()) << publisher_->Describe();
    ASSERT_TRUE(WaitUntilWatching(publisher_->pid(), kTimeout));
  }
  void Publish(const std::string& model, uint64_t version) {
    WriteInPlace(config_, ModelConfig(model));
    ASSERT_GE(WaitForVersionAbove(*watcher_, version - 1, kTimeout), version) << publisher_->Describe();
  }

  TempDir dir_{"ledger"};
  SegmentGuard segment_{UniqueName("ledger")};
  std::string config_ = dir_ / "config.yaml";
  std::optional<ChildProcess> publisher_;
  std::optional<Subscriber> watcher_;  // this test process's own subscriber (so it is a worker too)
};

TEST_F(LedgerTest, CHoldsThroughTheAbiKeepTheGateClosedUntilReleased) {
  confcast_subscriber* sub = nullptr;
  ASSERT_EQ(confcast_open(segment_.name().c_str(), &sub), CONFCAST_OK);
  ASSERT_EQ(confcast_version(sub), 1u);
  EXPECT_EQ(confcast_hold(sub, 1), CONFCAST_OK);
  EXPECT_EQ(confcast_hold(sub, 1), CONFCAST_OK);
  auto line = LedgerLine(segment_.name(), getpid());
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ((*line)["held"], 2);
  EXPECT_EQ((*line)["oldest_held"], 1);

  ASSERT_NO_FATAL_FAILURE(Publish("second", 2));
  std::string err;
  EXPECT_EQ(Gate(segment_.name(), "0.3", &err), 1);
  EXPECT_NE(err.find("pid " + std::to_string(getpid()) + " holds 1"), std::string::npos) << err;
  EXPECT_EQ(confcast_release(sub, 1), CONFCAST_OK);
  EXPECT_EQ(Gate(segment_.name(), "0.3"), 1);  // one hold of version 1 is left
  EXPECT_EQ(confcast_release(sub, 1), CONFCAST_OK);
  EXPECT_EQ(Gate(segment_.name(), "5"), 0);
  line = LedgerLine(segment_.name(), getpid());
  ASSERT_TRUE(line.has_value());
  EXPECT_TRUE((*line)["oldest_held"].is_null());
  EXPECT_EQ((*line)["held"], 0);

  // Pairing is checked; no hold of nothing.
  EXPECT_EQ(confcast_release(sub, 1), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_hold(sub, 0), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_hold(nullptr, 1), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_release(nullptr, 1), CONFCAST_ERR_INVALID);
  confcast_close(sub);
}

TEST_F(LedgerTest, APinnedSnapshotHoldsItsVersionUntilItsLastCopyIsGone) {
  std::optional<confcast::Snapshot> pinned = watcher_->Pin();
  confcast::Snapshot copy = *pinned;
  ASSERT_NO_FATAL_FAILURE(Publish("second", 2));
  auto line = LedgerLine(segment_.name(), getpid());
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ((*line)["held"], 1);  // one Pin, however many copies
  EXPECT_EQ((*line)["oldest_held"], 1);
  pinned.reset();
  EXPECT_EQ(Gate(segment_.name(), "0.3"), 1);
  EXPECT_EQ(copy.GetString("llm.model"), "first");
  copy = confcast::Snapshot();
  EXPECT_EQ(Gate(segment_.name(), "5"), 0);
}

TEST_F(LedgerTest, MoreDistinctVersionsThanSlotsStillCountAndReportTheOldest) {
  constexpr uint64_t kVersions = confcast::layout::kHoldSlots + 8;
  for (uint64_t v = kVersions; v >= 1; --v) ASSERT_EQ(watcher_->Hold(v), CONFCAST_OK) << v;
  auto line = LedgerLine(segment_.name(), getpid());
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ((*line)["held"], kVersions);
  EXPECT_EQ((*line)["oldest_held"], 1);
  for (uint64_t v = 1; v <= kVersions; ++v) ASSERT_EQ(watcher_->Release(v), CONFCAST_OK) << v;
  line = LedgerLine(segment_.name(), getpid());
  EXPECT_EQ((*line)["held"], 0);
  EXPECT_TRUE((*line)["oldest_held"].is_null());
}

TEST_F(LedgerTest, ACWorkerKilledWhileHoldingDropsOutWithinTwoSeconds) {
  const std::string segment = segment_.name();
  ChildProcess worker = ChildProcess::Fork(
      [segment] {
        confcast_subscriber* sub = nullptr;
        if (confcast_open(segment.c_str(), &sub) != CONFCAST_OK) return 1;
        if (confcast_hold(sub, confcast_version(sub)) != CONFCAST_OK) return 2;
        for (;;) pause();
      },
      "a C worker holding version 1");
  ASSERT_TRUE(WaitUntil([&] { return LedgerLine(segment, worker.pid()).has_value(); }, kTimeout))
      << worker.Describe();
  ASSERT_NO_FATAL_FAILURE(Publish("second", 2));
  EXPECT_EQ(Gate(segment, "0.2"), 1);
  ASSERT_TRUE(worker.Signal(SIGKILL));
  const auto killed = std::chrono::steady_clock::now();
  worker.WaitExit(kTimeout);
  EXPECT_EQ(Gate(segment, "2"), 0);
  EXPECT_FALSE(LedgerLine(segment, worker.pid()).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(2));
}

TEST_F(LedgerTest, AForkedChildHasAnEntryOfItsOwn) {
  ASSERT_EQ(watcher_->Hold(1), CONFCAST_OK);
  const std::string segment = segment_.name();
  Subscriber* parent_sub = &*watcher_;
  // The child holds version 1 through the parent's Subscriber, reports, and
  // waits to be killed; its holds must land in its own entry.
  ChildProcess child = ChildProcess::Fork(
      [parent_sub] {
        if (parent_sub->Release(1) != CONFCAST_ERR_INVALID) return 1;  // the parent's hold is not the child's
        if (parent_sub->Hold(1) != CONFCAST_OK || parent_sub->Hold(1) != CONFCAST_OK) return 2;
        for (;;) pause();
      },
      "a forked child");
  std::optional<nlohmann::json> line;
  ASSERT_TRUE(WaitUntil([&] { return (line = LedgerLine(segment, child.pid())) && (*line)["held"] == 2; },
                        kTimeout))
      << child.Describe();
  auto own = LedgerLine(segment, getpid());
  ASSERT_TRUE(own.has_value());
  EXPECT_EQ((*own)["held"], 1);
  child.KillAndReap();
  EXPECT_EQ(watcher_->Release(1), CONFCAST_OK);
}

// Holds and releases from several threads at once, while another thread
// pins snapshots and the publisher's writer publishes: every hold pairs up
// (the entry ends with nothing held), and no scan ever sees more holds than
// are taken at once.
TEST(LedgerThreads, HoldsFromManyThreadsPairUpWhileVersionsChange) {
  SegmentGuard segment(UniqueName("ledger-threads"));
  auto opened = confcast::publisher::SegmentWriter::Open({segment.name(), 4096, 0600});
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened));
  auto& writer = *std::get<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened);
  auto publish = [&](const std::string& model) {
    auto built = confcast::snapshot::BuildSnapshot(nlohmann::json::parse(R"({"llm":{"model":")" + model + R"("}})"));
    const auto& words = std::get<confcast::snapshot::BuiltSnapshot>(built).words;
    writer.Publish(words.data(), words.size(), {}, confcast::publisher::RealtimeNs());
  };
  publish("first");
  const std::string dir = confcast::ledger::DirectoryFor(segment.file());
  ASSERT_EQ(confcast::ledger::EnsureDirectory(dir, 0600), "");
  Subscriber sub(segment.name());
  ASSERT_TRUE(sub.in_ledger());

  constexpr int kThreads = 4, kRounds = 20000;
  std::atomic<bool> failed{false}, stop{false}, go{false};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kRounds; ++i) {
        const uint64_t v = 1 + static_cast<uint64_t>((i + t) % 3);
        if (sub.Hold(v) != CONFCAST_OK || sub.Hold(v) != CONFCAST_OK || sub.Release(v) != CONFCAST_OK ||
            sub.Release(v) != CONFCAST_OK) {
          failed = true;
        }
      }
      ++done;
    });
  }
  std::thread pinner([&] {
    while (!stop) {
      confcast::Snapshot s;
      if (sub.TryPin(&s) != CONFCAST_OK) failed = true;
    }
  });
  std::thread publisher([&] {
    for (int i = 0; i < 200 && !stop; ++i) publish("model-" + std::to_string(i));
  });
  size_t max_held = 0, scans = 0;
  go = true;
  do {  // scans while the holders run (at least one)
    const confcast::ledger::Scan scan = confcast::ledger::ScanDirectory(dir, geteuid(), false);
    if (scan.workers.size() != 1u) failed = true;
    if (!scan.workers.empty()) max_held = std::max<size_t>(max_held, scan.workers[0].held);
    ++scans;
  } while (done < kThreads);
  for (auto& th : threads) th.join();
  stop = true;
  pinner.join();
  publisher.join();
  confcast::Snapshot last;
  ASSERT_EQ(sub.TryPin(&last), CONFCAST_OK);
  last = confcast::Snapshot();
  EXPECT_FALSE(failed);
  EXPECT_LE(max_held, static_cast<size_t>(2 * kThreads + 1));
  const confcast::ledger::Scan scan = confcast::ledger::ScanDirectory(dir, geteuid(), false);
  ASSERT_EQ(scan.workers.size(), 1u);
  EXPECT_EQ(scan.workers[0].held, 0u);
  EXPECT_EQ(scan.workers[0].newest_read, writer.version());
}

}  // namespace
