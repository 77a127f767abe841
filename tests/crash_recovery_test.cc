// crash_recovery_test.cc - a publisher that dies (SIGKILL) and the one that
// takes its place: the restart continues the version numbers, open readers
// follow without reopening, the same config is adopted without a new version,
// and SIGKILLs while publishing (in startup, between publishes, inside one)
// never make a reader in another process hang, tear a read or see a version
// go back.
//
// Waiting: version changes are awaited with Subscriber::Wait (a futex sleep
// with a deadline); things without a futex (the stats, a log line, an exit)
// are polled with a deadline.
//
// Threading: single-threaded; the invariant reader is a forked child
// reporting through a pipe.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"
#include "support/slot_view.hpp"
#include "support/wait.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using namespace std::chrono_literals;

using PublisherRestart = PublisherTest;

TEST_F(PublisherRestart, SigkilledPublisherIsReplacedAndOpenReadersFollow) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("gen-1")));  // sub_: opened before the kill, never reopened
  ChildProcess& first = *pub_;
  WriteInPlace(config_, ModelConfig("gen-2"));
  const uint64_t v = WaitForVersionAbove(*sub_, 1, kEventTimeout);
  ASSERT_EQ(v, 2u) << first.Describe();

  ASSERT_TRUE(first.Signal(SIGKILL));
  ASSERT_TRUE(first.WaitExit(kEventTimeout));
  WriteInPlace(config_, ModelConfig("gen-3"));  // changed while no publisher runs
  ChildProcess second = StartPublisher(Options());

  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << second.Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "gen-3");
  EXPECT_EQ(InfoOf(*sub_).publisher_pid, second.pid());
  EXPECT_TRUE(second.WaitForStderr("adopted=true", kEventTimeout)) << second.Describe();

  WriteInPlace(config_, ModelConfig("gen-4"));  // and it keeps watching
  ASSERT_EQ(WaitForVersionAbove(*sub_, v + 1, kEventTimeout), v + 2) << second.Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "gen-4");
}

TEST_F(PublisherRestart, SameConfigIsAdoptedWithoutANewVersion) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("gen-1")));
  ChildProcess& first = *pub_;
  WriteInPlace(config_, ModelConfig("gen-2"));
  const uint64_t v = WaitForVersionAbove(*sub_, 1, kEventTimeout);
  ASSERT_EQ(v, 2u) << first.Describe();
  const std::string sha = InfoOf(*sub_).sha256_hex;
  ASSERT_TRUE(first.Signal(SIGKILL));
  ASSERT_TRUE(first.WaitExit(kEventTimeout));

  ChildProcess second = StartPublisher(Options());
  ASSERT_TRUE(second.WaitForStderr("segment already holds this config", kEventTimeout)) << second.Describe();
  const confcast_info info = InfoOf(*sub_);
  EXPECT_EQ(info.version, v);
  EXPECT_EQ(std::string(info.sha256_hex), sha);
  EXPECT_EQ(info.publisher_pid, second.pid());
  EXPECT_EQ(sub_->GetString("llm.model"), "gen-2");

  WriteInPlace(config_, ModelConfig("gen-3"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << second.Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "gen-3");
}

// SIGKILL while publishing, repeatedly, with a reader process checking every read.

using CrashRecovery = PublisherTest;

// What the reader child reports through its pipe (well under PIPE_BUF, so
// each report is written atomically).
struct ReaderReport {
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC when sent (system-wide, comparable)
  uint64_t reads = 0;        // successful pins
  uint64_t torn = 0;         // a pin (or a pair of live reads of one version) whose stress fields disagree
  uint64_t regressions = 0;  // a version lower than one seen before
  uint64_t errors = 0;       // TryPin failures
  uint64_t max_version = 0;
};

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A large field (about 10 KB of YAML, twice that in the slot) makes each
// publish copy many words, so a torn copy would show, and widens the window
// in which a kill lands inside the copy.
constexpr int kStressBlobRepeats = 2000;
std::string StressBlob(int64_t n) {
  std::string blob;
  for (int i = 0; i < kStressBlobRepeats; ++i) blob += std::to_string(n) + ",";
  return blob;
}

std::string StressConfig(int64_t n) {
  const std::string s = std::to_string(n);
  return "llm:\n  model: stress-" + s + "\nstress:\n  a: " + s + "\n  b: " + s + "\n  c: " + s + "\n  blob: \"" +
         StressBlob(n) + "\"\n";
}

bool StressFieldsAgree(const Snapshot& snap) {
  int64_t a = -1, b = -2, c = -3;
  std::string_view blob, model;
  if (snap.Get("stress.a", &a) != CONFCAST_OK || snap.Get("stress.b", &b) != CONFCAST_OK ||
      snap.Get("stress.c", &c) != CONFCAST_OK || snap.Get("stress.blob", &blob) != CONFCAST_OK ||
      snap.Get("llm.model", &model) != CONFCAST_OK) {
    return false;
  }
  return a == b && b == c && blob == StressBlob(a) && model == "stress-" + std::to_string(a);
}

// The reader child's body: reads as fast as it can, reports every 10 ms,
// stops when the parent closes the stop pipe.
int RunInvariantReader(const std::string& segment, int report_fd, int stop_fd) {
  Subscriber sub(segment);
  ReaderReport r;
  uint64_t last_version = 0;
  int64_t next_report = 0;
  for (;;) {
    Snapshot snap;
    if (sub.TryPin(&snap) != CONFCAST_OK) {
      ++r.errors;
    } else {
      ++r.reads;
      if (snap.version() < last_version) ++r.regressions;
      last_version = snap.version();
      r.max_version = std::max(r.max_version, last_version);
      if (!StressFieldsAgree(snap)) ++r.torn;
    }
    // Two live reads: when both come from one version they must agree.
    int64_t a = 0, b = 0;
    uint64_t va = 0, vb = 0;
    if (sub.Get("stress.a", &a, &va) == CONFCAST_OK && sub.Get("stress.b", &b, &vb) == CONFCAST_OK && va == vb &&
        a != b) {
      ++r.torn;
    }
    const int64_t now = MonotonicNs();
    if (now >= next_report) {
      r.monotonic_ns = now;
      if (::write(report_fd, &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r))) return 3;
      next_report = now + 10'000'000;
      pollfd stop{stop_fd, POLLIN, 0};
      if (::poll(&stop, 1, 0) > 0) break;  // the parent closed its end
    }
  }
  r.monotonic_ns = MonotonicNs();
  return ::write(report_fd, &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r)) ? 0 : 3;
}

// The parent's side of the report pipe.
class ReportMonitor {
 public:
  explicit ReportMonitor(int fd) : fd_(fd) { fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK); }

  // Takes in every report available now; false once the child closed the pipe.
  bool Drain() {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n > 0) {
        pending_.append(buf, static_cast<size_t>(n));
        while (pending_.size() >= sizeof(ReaderReport)) {
          ReaderReport r;
          std::memcpy(&r, pending_.data(), sizeof(r));
          pending_.erase(0, sizeof(r));
          if (count_ > 0) widest_gap_ns_ = std::max(widest_gap_ns_, r.monotonic_ns - latest_.monotonic_ns);
          latest_ = r;
          ++count_;
        }
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return true;  // EAGAIN
    }
  }
  // True when the child's last report is older than `limit` (it is stuck).
  bool Stalled(milliseconds limit) {
    Drain();
    const int64_t since = count_ > 0 ? latest_.monotonic_ns : started_ns_;
    return MonotonicNs() - since > std::chrono::nanoseconds(limit).count();
  }
  // Waits up to `limit` for a report sent after this call.
  bool WaitForFreshReport(milliseconds limit) {
    const int64_t asked = MonotonicNs();
    return WaitUntil([&] { return !Drain() || latest_.monotonic_ns > asked; }, limit, 2ms) &&
           latest_.monotonic_ns > asked;
  }
  // Reads until EOF (the child exited), at most `limit`.
  bool DrainToEnd(milliseconds limit) {
    return WaitUntil([&] { return !Drain(); }, limit, 2ms);
  }
  const ReaderReport& latest() const { return latest_; }
  int64_t widest_gap_ns() const { return widest_gap_ns_; }

 private:
  int fd_;
  std::string pending_;
  ReaderReport latest_;
  uint64_t count_ = 0;
  int64_t widest_gap_ns_ = 0;
  int64_t started_ns_ = MonotonicNs();
};

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

TEST_F(CrashRecovery, SigkillWhilePublishingNeverHangsOrTearsAReader) {
  constexpr int kCycles = 30;
  constexpr milliseconds kNoProgressLimit = 2s;
  int64_t counter = 0;
  WriteViaRename(config_, StressConfig(counter));
  PublisherOptions o = Options();
  o.debounce_ms = 0;
  {
    std::optional<ChildProcess> first;
    std::optional<Subscriber> sub;
    ASSERT_NO_FATAL_FAILURE(StartAndOpen(o, &first, &sub));  // the segment exists from here on
  }

  int report_pipe[2], stop_pipe[2];
  ASSERT_EQ(pipe2(report_pipe, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(stop_pipe, O_CLOEXEC), 0);
  Fd report_read{report_pipe[0]}, report_write{report_pipe[1]}, stop_read{stop_pipe[0]}, stop_write{stop_pipe[1]};
  const std::string segment = segment_.name();
  ChildProcess reader = ChildProcess::Fork(
      [&] {
        ::close(report_pipe[0]);
        ::close(stop_pipe[1]);  // else the stop pipe never reports the parent's close
        return RunInvariantReader(segment, report_pipe[1], stop_pipe[0]);
      },
      "invariant reader");
  report_write.Close();
  stop_read.Close();
  ReportMonitor monitor(report_read.fd);
  ASSERT_TRUE(monitor.WaitForFreshReport(kNoProgressLimit)) << (reader.WaitExit(100ms), reader.Describe());

  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> lifetime_ms(0, 60);
  std::uniform_int_distribution<int> kill_delay_us(0, 1500);
  const SlotView peek(segment_.file());
  ASSERT_TRUE(peek.ok()) << "cannot map " << segment_.file();
  const Subscriber watcher(segment_.name());
  int kills_mid_write = 0;
  uint64_t cycles_with_a_publish = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const std::vector<uint64_t> seqs_before = peek.Sequences();
    const uint64_t cycle_start_version = watcher.version();
    ChildProcess pub = StartPublisher(o);
    // Rewrite the file (atomically: every content the publisher reads is
    // whole, so any disagreement a reader sees is a torn read) for a random
    // while (0 ms: the kill lands in the publisher's startup).
    const auto last_write_at = Clock::now() + milliseconds(lifetime_ms(rng));
    do {
      WriteViaRename(config_, StressConfig(++counter));
      ASSERT_FALSE(monitor.Stalled(kNoProgressLimit)) << "the reader hangs (cycle " << cycle << ")";
      std::this_thread::sleep_for(500us);  // leaves the publisher a core on a 2-core box
    } while (Clock::now() < last_write_at);
    if (cycle % 4 != 0) {
      // Most cycles: this publisher has published before it dies (however
      // slow the machine), and gets one more content to be killed over.
      ASSERT_GT(WaitForVersionAbove(watcher, cycle_start_version, kEventTimeout), cycle_start_version)
          << pub.Describe();
      ++cycles_with_a_publish;
      WriteViaRename(config_, StressConfig(++counter));
    }
    // The kill comes 0-1.5 ms after the last write: often while the
    // publisher is reading, parsing or publishing that content.
    std::this_thread::sleep_for(std::chrono::microseconds(kill_delay_us(rng)));
    ASSERT_TRUE(pub.Signal(SIGKILL)) << "the publisher died by itself; " << pub.Describe();
    ASSERT_TRUE(pub.WaitExit(kEventTimeout));
    // For the record: a slot the dead writer left odd means the kill landed
    // inside Publish() itself (a window of microseconds: rare, by nature).
    kills_mid_write += InsidePublish(seqs_before, peek.Sequences());
    ASSERT_FALSE(monitor.Stalled(kNoProgressLimit)) << "the reader hangs (cycle " << cycle << ")";
  }
  RecordProperty("kills_mid_slot_write", kills_mid_write);
  ASSERT_TRUE(monitor.WaitForFreshReport(kNoProgressLimit)) << "the reader hangs after the last kill";

  stop_write.Close();
  const std::optional<ExitStatus> status = reader.WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << reader.Describe();
  EXPECT_TRUE(status->ExitedWith(0)) << reader.Describe();
  monitor.DrainToEnd(kEventTimeout);
  const ReaderReport& r = monitor.latest();
  RecordProperty("reads", std::to_string(r.reads));
  RecordProperty("versions", std::to_string(r.max_version));
  EXPECT_GT(r.reads, 0u);
  EXPECT_EQ(r.torn, 0u);
  EXPECT_EQ(r.regressions, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_LT(monitor.widest_gap_ns(), std::chrono::nanoseconds(kNoProgressLimit).count())
      << "the reader went silent for a while";
  EXPECT_GT(r.max_version, cycles_with_a_publish) << "the reader missed versions it should have seen";

  // A publisher started after all that continues the version numbers and
  // serves the last file.
  Subscriber sub(segment_.name());
  const uint64_t before = sub.version();
  EXPECT_GE(before, r.max_version);
  ChildProcess last = StartPublisher(o);
  ASSERT_TRUE(WaitUntil(
      [&] {
        Snapshot snap;
        int64_t a = -1;
        return InfoOf(sub).publisher_pid == last.pid() && sub.TryPin(&snap) == CONFCAST_OK &&
               snap.Get("stress.a", &a) == CONFCAST_OK && a == counter;
      },
      kEventTimeout))
      << last.Describe();
  EXPECT_GE(sub.version(), before);
  EXPECT_TRUE(StressFieldsAgree(sub.Pin()));
}

// The reader's check can fail: a published config whose stress fields
// disagree is caught (so zero violations above means something).
TEST_F(CrashRecovery, InvariantCheckCatchesADisagreement) {
  std::string config = StressConfig(7);
  config.replace(config.find("  b: 7"), 6, "  b: 8");
  ASSERT_NO_FATAL_FAILURE(PublishFirst(config));
  EXPECT_FALSE(StressFieldsAgree(sub_->Pin()));
  WriteInPlace(config_, StressConfig(8));
  ASSERT_EQ(WaitForVersionAbove(*sub_, 1, kEventTimeout), 2u) << pub_->Describe();
  EXPECT_TRUE(StressFieldsAgree(sub_->Pin()));
}

}  // namespace
}  // namespace confcast
