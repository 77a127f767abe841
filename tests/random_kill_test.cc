// random_kill_test.cc - the publisher SIGKILLed at random moments while a
// writer keeps republishing: readers in other processes check every read
// (a pinned snapshot, a subtree as JSON, Key reads, bounded Waits) and must
// never hang, never see a torn value and see versions only grow; each
// restart continues above every earlier version.
//
// Readers are forked before any thread starts and report through an
// anonymous shared mapping. Waits are bounded (pidfd, futex, or a 2 ms poll
// of state that raises no event); the random delays before a kill choose the
// moment of the kill, they do not wait for anything.
//
// Threading: one writer thread (rewriting the config) beside the main thread.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/slot_view.hpp"
#include "support/wait.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary

const milliseconds kTimeout(15000);

// Shared between the test and its reader processes.
struct ReaderReport {
  std::atomic<uint64_t> reads{0};         // consistent reads checked
  std::atomic<uint64_t> torn{0};          // a read that mixed two versions
  std::atomic<uint64_t> backwards{0};     // a version lower than one seen before
  std::atomic<uint64_t> hangs{0};         // an operation that took longer than a second
  std::atomic<uint64_t> versions{0};      // distinct versions seen
  std::atomic<uint64_t> max_op_us{0};     // slowest single operation
  std::atomic<uint64_t> last_version{0};
  std::atomic<bool> opened{false};
  char first_problem[256] = {};
};
struct SharedBoard {
  std::atomic<bool> stop{false};
  ReaderReport readers[8];
};

void Note(ReaderReport& r, const std::string& what) {
  if (r.first_problem[0] == '\0') std::snprintf(r.first_problem, sizeof r.first_problem, "%s", what.c_str());
}

// One reader process: reads the segment in every way the API offers until
// told to stop, checking each result against the config's invariants.
[[noreturn]] void ReaderMain(const std::string& segment, SharedBoard* board, ReaderReport* report) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
  using Clock = std::chrono::steady_clock;
  std::optional<Subscriber> sub;
  const confcast::Key key_n("fault.n"), key_m("fault.m");
  uint64_t last_version = 0;
  int64_t last_n = -1;
  auto op_done = [&](Clock::time_point start) {
    const uint64_t us =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    if (us > report->max_op_us.load()) report->max_op_us.store(us);
    if (us > 1000000) report->hangs++;
  };
  // versions only grow, and a version always carries the same n
  auto seen = [&](uint64_t version, int64_t n) {
    if (version < last_version) {
      report->backwards++;
      Note(*report, "version " + std::to_string(version) + " after " + std::to_string(last_version));
    } else if (version == last_version && n != last_n) {
      report->torn++;
      Note(*report, "version " + std::to_string(version) + " with n " + std::to_string(n) + " and " +
                        std::to_string(last_n));
    } else if (version > last_version) {
      if (n < last_n) {
        report->backwards++;
        Note(*report, "n went back from " + std::to_string(last_n) + " to " + std::to_string(n));
      }
      report->versions++;
      last_version = version;
      last_n = n;
      report->last_version.store(version);
    }
  };
  uint64_t iteration = 0;
  while (!board->stop.load()) {
    if (!sub) {
      try {
        sub.emplace(segment);
        report->opened.store(true);
      } catch (const confcast::Error&) {
        std::this_thread::sleep_for(milliseconds(1));
        continue;
      }
    }
    ++iteration;
    // 1. A pinned snapshot: one version, every field consistent.
    auto start = Clock::now();
    confcast::Snapshot snap;
    const int pin = sub->TryPin(&snap);
    op_done(start);
    if (pin == CONFCAST_ERR_EMPTY) continue;
    if (pin != CONFCAST_OK) {
      report->torn++;
      Note(*report, std::string("TryPin: ") + confcast::StatusMessage(pin));
      continue;
    }
    int64_t n = 0, m = 0, retries = 0, l0 = 0, l2 = 0;
    std::string_view s, model, pad;
    if (snap.Get("fault.n", &n) != CONFCAST_OK || snap.Get("fault.m", &m) != CONFCAST_OK ||
        snap.Get("fault.s", &s) != CONFCAST_OK || snap.Get("llm.max_retries", &retries) != CONFCAST_OK ||
        snap.Get("llm.model", &model) != CONFCAST_OK || snap.Get("fault.list.0", &l0) != CONFCAST_OK ||
        snap.Get("fault.list.2", &l2) != CONFCAST_OK || m != n || s != "n=" + std::to_string(n) ||
        retries != n % 11 || model != "m-" + std::to_string(n) || l0 != n || l2 != n + 2 ||
        snap.Get("pad", &pad) != CONFCAST_OK || pad.size() != kPadBytes ||
        pad.find_first_not_of(PadLetter(n)) != std::string_view::npos) {
      report->torn++;
      Note(*report, "pinned snapshot inconsistent: " + std::string(snap.Json().substr(0, 200)));
    }
    seen(snap.version(), n);
    report->reads++;

    // 2. A subtree as JSON in one live read.
    start = Clock::now();
    uint64_t version = 0;
    char buf[512];
    size_t len = 0;
    const int rc = sub->GetJson("fault", buf, sizeof buf, &len, &version);
    op_done(start);
    if (rc == CONFCAST_OK) {
      const auto j = nlohmann::json::parse(std::string_view(buf, len), nullptr, false);
      if (j.is_discarded() || !j.contains("n") || j["n"] != j["m"] || j["s"] != "n=" + j["n"].dump() ||
          j["list"].size() != 3 || j["list"][1] != j["n"].get<int64_t>() + 1) {
        report->torn++;
        Note(*report, "live json inconsistent: " + std::string(buf, std::min<size_t>(len, 200)));
      } else {
        seen(version, j["n"].get<int64_t>());
      }
      report->reads++;
    } else {
      report->torn++;
      Note(*report, std::string("GetJson: ") + confcast::StatusMessage(rc));
    }

    // 3. Key reads (the hot path): two reads of the same version agree.
    start = Clock::now();
    uint64_t v1 = 0, v2 = 0;
    const int r1 = sub->Get(key_n, &n, &v1);
    const int r2 = sub->Get(key_m, &m, &v2);
    op_done(start);
    if (r1 != CONFCAST_OK || r2 != CONFCAST_OK) {
      report->torn++;
      Note(*report, "key read failed");
    } else {
      if (v1 == v2 && n != m) {
        report->torn++;
        Note(*report, "one version, two values");
      }
      seen(v1, n);
      report->reads += 2;
    }

    // 4. Now and then a bounded Wait: it must come back on time.
    if (iteration % 64 == 0) {
      start = Clock::now();
      const int w = sub->Wait(sub->version(), 20, &version);
      op_done(start);
      if (w != CONFCAST_OK && w != CONFCAST_ERR_TIMEOUT) {
        report->torn++;
        Note(*report, std::string("Wait: ") + confcast::StatusMessage(w));
      }
    }
  }
  _exit(0);
}

TEST(RandomKills, PublisherKilledAtRandomMomentsNeverHurtsReaders) {
  constexpr int kReaders = 3;
  constexpr int kKills = 200;
  TempDir dir("fault-kill");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("kill"));
  std::atomic<int64_t> written{1};
  WriteViaRename(config, NumberedConfig(1, true));

  void* mem = mmap(nullptr, sizeof(SharedBoard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  struct Unmap {
    void* mem;
    ~Unmap() { munmap(mem, sizeof(SharedBoard)); }
  } unmap{mem};  // declared first: outlives the guards below that use the board
  auto* board = new (mem) SharedBoard();
  // Forked before the writer thread starts: a reader is a clean copy of a
  // single-threaded process.
  std::vector<pid_t> reader_pids;
  for (int i = 0; i < kReaders; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ReaderMain(segment.name(), board, &board->readers[i]);
    reader_pids.push_back(pid);
  }
  struct ReaperGuard {
    std::vector<pid_t>& pids;
    SharedBoard* board;
    ~ReaperGuard() {
      board->stop.store(true);
      for (pid_t p : pids) {
        if (p <= 0) continue;
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
    }
  } reaper{reader_pids, board};

  std::atomic<bool> stop_writer{false};
  std::thread writer([&] {
    while (!stop_writer.load()) {
      const int64_t n = written.load() + 1;
      WriteViaRename(config, NumberedConfig(n, true));
      written.store(n);
      std::this_thread::sleep_for(milliseconds(2));  // pacing: about one new config per publish
    }
  });
  struct JoinGuard {
    std::atomic<bool>& stop;
    std::thread& t;
    ~JoinGuard() {
      stop.store(true);
      if (t.joinable()) t.join();
    }
  } join_writer{stop_writer, writer};

  std::optional<Subscriber> watch;  // the test's own view of the segment
  std::unique_ptr<SlotView> slots;
  uint64_t last_version = 0;
  int up = 0, mid_write = 0, early = 0, aimed = 0;
  std::set<uint64_t> odd_seen;
  for (int k = 0; k < kKills; ++k) {
    auto pub = ChildProcess::Spawn(
        PublisherArgs(config, segment.name(), {"--debounce-ms", "0", "--log-level", "error"}), {.output_path = log});
    // A third of the kills at a random moment of the start (segment creation
    // or adoption, first publish); a third at a random moment once the
    // publisher is up and republishing; a third aimed at a publish under way.
    const int schedule = k % 3;
    if (!watch) watch = OpenWhenReady(segment.name(), milliseconds(schedule ? 5000 : 0));
    if (schedule != 0 && watch) {
      // Up, and continuing: it has published a version above any before it
      // (the writer keeps the file changing, so there is always a new one).
      const uint64_t before = watch->version();
      const bool continued = WaitUntil(
          [&] {
            confcast_info info;
            return watch->Info(&info) == CONFCAST_OK && info.publisher_pid == pub.pid() && info.version > before;
          },
          kTimeout);
      ASSERT_TRUE(continued) << "restart " << k << " did not come up and publish\n" << ReadFile(log);
      ++up;
      if (!slots) slots = std::make_unique<SlotView>(segment.file());
      if (schedule == 2 && slots->ok()) {
        if (slots->WaitForOddSequence(milliseconds(50))) ++aimed;
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(Rng()() % 10000));
      }
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(Rng()() % 20000));
    }
    pub.Signal(SIGKILL);
    ASSERT_TRUE(pub.WaitExit(kTimeout));
    if (pub.term_signal() != SIGKILL) {
      ++early;
      ADD_FAILURE() << "publisher " << k << " exited by itself, status " << pub.exit_code() << "\n" << ReadFile(log);
    }
    for (uint64_t odd : OddSlots(segment.file())) {
      if (odd_seen.insert(odd).second) ++mid_write;
    }
    if (watch) {
      const uint64_t v = watch->version();
      ASSERT_GE(v, last_version) << "the segment's version went back after kill " << k;
      last_version = v;
    }
  }

  // The last restart continues where the killed ones stopped and catches up
  // with the file.
  stop_writer.store(true);
  writer.join();
  const int64_t final_n = written.load();
  auto last = ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--debounce-ms", "0", "--log-level", "error"}),
                                  {.output_path = log});
  if (!watch) watch = OpenWhenReady(segment.name(), kTimeout);
  ASSERT_TRUE(watch);
  ASSERT_TRUE(WaitUntil(
      [&] {
        int64_t n = 0;
        return watch->Get("fault.n", &n) == CONFCAST_OK && n == final_n;
      },
      kTimeout))
      << ReadFile(log);
  EXPECT_GE(watch->version(), last_version);
  last.Signal(SIGTERM);
  ASSERT_TRUE(last.WaitExit(kTimeout));
  EXPECT_EQ(last.exit_code(), 0);

  // Readers: let them see the final version, then stop them; none may hang.
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return board->readers[i].last_version.load() >= watch->version(); }, kTimeout))
        << "reader " << i << " stuck at version " << board->readers[i].last_version.load();
  }
  board->stop.store(true);
  uint64_t reads = 0, versions = 0, max_op_us = 0;
  for (int i = 0; i < kReaders; ++i) {
    int status = 0;
    const bool exited =
        WaitUntil([&] { return waitpid(reader_pids[i], &status, WNOHANG) == reader_pids[i]; }, kTimeout);
    EXPECT_TRUE(exited) << "reader " << i << " hangs";
    if (exited) reader_pids[i] = -1;  // reaped
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reader " << i << " died, status " << status;
    const ReaderReport& r = board->readers[i];
    EXPECT_TRUE(r.opened.load());
    EXPECT_EQ(r.torn.load(), 0u) << "reader " << i << ": " << r.first_problem;
    EXPECT_EQ(r.backwards.load(), 0u) << "reader " << i << ": " << r.first_problem;
    EXPECT_EQ(r.hangs.load(), 0u) << "reader " << i << ": slowest operation " << r.max_op_us.load() << " us";
    EXPECT_GT(r.reads.load(), 0u);
    reads += r.reads.load();
    versions = std::max<uint64_t>(versions, r.versions.load());
    max_op_us = std::max<uint64_t>(max_op_us, r.max_op_us.load());
  }
  std::erase(reader_pids, -1);
  EXPECT_EQ(early, 0);
  EXPECT_EQ(up, kKills - (kKills + 2) / 3);
  RecordProperty("kills", kKills);
  RecordProperty("kills_mid_write", mid_write);
  RecordProperty("kills_aimed_at_a_publish", aimed);
  RecordProperty("reads_checked", static_cast<int64_t>(reads));
  RecordProperty("versions", static_cast<int64_t>(watch->version()));
  std::printf("[fault] %d SIGKILLs (%d after the restarted publisher had published, %d aimed at a publish under "
              "way, %d left a slot mid-write), %d reader processes: "
              "%llu reads checked, %llu versions seen by one reader, final version %llu, slowest read %llu us, "
              "0 torn, 0 hangs\n",
              kKills, up, aimed, mid_write, kReaders, static_cast<unsigned long long>(reads),
              static_cast<unsigned long long>(versions), static_cast<unsigned long long>(watch->version()),
              static_cast<unsigned long long>(max_op_us));
}

}  // namespace
}  // namespace confcast
