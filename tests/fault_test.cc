// fault_test.cc - crash and fault tests (issue 6) against real processes:
//   * the publisher SIGKILLed at random moments while republishing, readers
//     in other processes checking that they never hang, never see a torn
//     value and see versions only grow, and that each restart continues;
//   * a restart with another --capacity, and a segment of another layout:
//     old readers get CONFCAST_ERR_INCOMPATIBLE or keep the old data, new
//     readers see the new segment; while the new publisher has no good
//     config (or if it stops before one), the old segment serves on;
//   * no room for the segment (a small tmpfs) and a config that outgrows
//     --capacity;
//   * permissions: --segment-mode whatever the umask, a reader's mapping is
//     read-only, a process that is not the owner cannot publish.
//
// Readers are forked before any thread starts and report through an
// anonymous shared mapping. Waits are bounded (pidfd, futex, or a 2 ms poll
// of state that raises no event); the random delays before a kill choose the
// moment of the kill, they do not wait for anything.
//
// Threading: the kill test runs one writer thread (rewriting the config)
// beside the main thread; everything else is single-threaded.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"
#include "segment_writer.hpp"
#include "support/child_process.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/wait.hpp"

namespace {

using namespace confcast::test_support;
using confcast::Subscriber;
namespace layout = confcast::layout;

const milliseconds kTimeout(15000);

// The kill test's configs: every field of version n is derived from n, so a
// reader can tell a consistent snapshot from a torn one.
// `pad` makes a publish copy enough bytes (about 33 KiB of snapshot) for a
// kill to land in the middle of one, while a reload stays quick.
constexpr size_t kPadBytes = 16384;
char PadLetter(int64_t n) { return static_cast<char>('a' + n % 26); }
std::string FaultConfig(int64_t n, bool pad = false) {
  const std::string s = std::to_string(n);
  return "llm:\n  model: m-" + s + "\n  max_retries: " + std::to_string(n % 11) + "\nfault:\n  n: " + s +
         "\n  m: " + s + "\n  s: \"n=" + s + "\"\n  list: [" + s + ", " + std::to_string(n + 1) + ", " +
         std::to_string(n + 2) + "]\n" + (pad ? "pad: " + std::string(kPadBytes, PadLetter(n)) + "\n" : "");
}

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

uint64_t Le64At(int fd, off_t offset) {
  uint64_t v = 0;
  if (pread(fd, &v, 8, offset) != 8) return 0;
  return v;
}

// The test's own read-only look at the slot sequence words, to aim a kill
// at the moment a publish is under way.
class SlotWatch {
 public:
  explicit SlotWatch(const std::string& segment) {
    const int fd = open(("/dev/shm/" + segment).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const uint64_t size = Le64At(fd, offsetof(layout::SegmentHeader, segment_size));
    stride_ = Le64At(fd, offsetof(layout::SegmentHeader, slot_stride));
    void* p = size ? mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) return;
    base_ = static_cast<const uint8_t*>(p);
    size_ = size;
  }
  ~SlotWatch() {
    if (base_) munmap(const_cast<uint8_t*>(base_), size_);
  }
  bool ok() const { return base_ != nullptr; }
  // Spins until some slot's sequence is odd (a publish is copying), or the timeout.
  bool WaitForWrite(milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    for (uint64_t i = 0;; ++i) {
      for (uint64_t s = 0; s < layout::kSlotCount; ++s) {
        const auto* seq = reinterpret_cast<const uint64_t*>(base_ + layout::kHeaderSize + s * stride_);
        if (__atomic_load_n(seq, __ATOMIC_ACQUIRE) & 1) return true;
      }
      if (i % 1024 == 0 && Clock::now() >= deadline) return false;
    }
  }

 private:
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t stride_ = 0;
};

// Post-mortem: the sequence words of slots left odd (mid-write) in the
// segment, as slot * 2^56 + seq, so a leftover from an earlier kill is not
// counted again.
std::vector<uint64_t> OddSlots(const std::string& segment) {
  std::vector<uint64_t> odd;
  const int fd = open(("/dev/shm/" + segment).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return odd;
  if (Le64At(fd, 0) == layout::kMagic) {
    const uint64_t stride = Le64At(fd, offsetof(layout::SegmentHeader, slot_stride));
    for (uint64_t i = 0; i < layout::kSlotCount; ++i) {
      const uint64_t seq = Le64At(fd, static_cast<off_t>(layout::kHeaderSize + i * stride));
      if (seq & 1) odd.push_back((i << 56) | seq);
    }
  }
  close(fd);
  return odd;
}

TEST(Fault, PublisherKilledAtRandomMomentsNeverHurtsReaders) {
  constexpr int kReaders = 3;
  constexpr int kKills = 200;
  TempDir dir("fault-kill");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("kill"));
  std::atomic<int64_t> written{1};
  WriteViaRename(config, FaultConfig(1, true));

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
      WriteViaRename(config, FaultConfig(n, true));
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
  std::unique_ptr<SlotWatch> slots;
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
      if (!slots) slots = std::make_unique<SlotWatch>(segment.name());
      if (schedule == 2 && slots->ok()) {
        if (slots->WaitForWrite(milliseconds(50))) ++aimed;
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
    for (uint64_t odd : OddSlots(segment.name())) {
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

// A publisher with --capacity 65536 on `config`, once it has published:
// the process, a reader of the segment and the version it holds. On failure
// (reported) the reader is null.
struct FirstPublisher {
  ChildProcess process;
  std::optional<Subscriber> reader;
  uint64_t version = 0;
};
FirstPublisher StartFirstPublisher(const std::string& config, const std::string& segment, const std::string& log) {
  FirstPublisher first;
  first.process = ChildProcess::Spawn(PublisherArgs(config, segment, {"--capacity", "65536"}), {.output_path = log});
  first.reader = OpenWhenReady(segment, kTimeout);
  if (!first.reader || first.reader->Wait(0, static_cast<int>(kTimeout.count()), &first.version) != CONFCAST_OK) {
    ADD_FAILURE() << "the first publisher never published\n" << ReadFile(log);
    first.reader.reset();
  }
  return first;
}
// Stops it (SIGTERM); false (reported) unless it exits 0.
bool StopCleanly(ChildProcess& process) {
  process.Signal(SIGTERM);
  if (!process.WaitExit(kTimeout) || process.exit_code() != 0) {
    ADD_FAILURE() << "the publisher did not stop cleanly";
    return false;
  }
  return true;
}

TEST(Fault, RestartWithAnotherCapacityRetiresTheOldSegment) {
  TempDir dir("fault-capacity");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("capacity"));
  WriteViaRename(config, FaultConfig(7));
  FirstPublisher first = StartFirstPublisher(config, segment.name(), log);
  ASSERT_TRUE(first.reader);
  Subscriber* old_reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_EQ(old_reader->slot_capacity(), 65536u);

  // A reader in another process, asleep in Wait on the old segment.
  ChildProcess sleeper = ChildProcess::Fork(
      [&] {
        Subscriber sub(segment.name());
        const int rc = sub.Wait(sub.version(), 30000);
        return rc == CONFCAST_ERR_INCOMPATIBLE ? 0 : 10 - rc;
      },
      "a reader asleep in Wait");

  ASSERT_TRUE(StopCleanly(first.process));
  auto second =
      ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--capacity", "131072"}), {.output_path = log});

  // The old reader learns that its segment was replaced, and still reads its data.
  EXPECT_EQ(old_reader->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_ERR_INCOMPATIBLE) << ReadFile(log);
  EXPECT_EQ(old_reader->GetString("fault.s"), "n=7");
  ASSERT_TRUE(sleeper.WaitExit(kTimeout));
  EXPECT_TRUE(sleeper.exit_status()->ExitedWith(0)) << "the sleeping reader got " << sleeper.Describe();

  // A new reader sees the new segment.
  std::optional<Subscriber> fresh;
  ASSERT_TRUE(WaitUntil(
      [&] {
        fresh = OpenWhenReady(segment.name(), milliseconds(0));
        return fresh && fresh->slot_capacity() == 131072u && fresh->version() > 0;
      },
      kTimeout))
      << ReadFile(log);
  EXPECT_EQ(fresh->GetString("fault.s"), "n=7");
  RecordProperty("version_after_replace", static_cast<int64_t>(fresh->version()));
  RecordProperty("version_before_replace", static_cast<int64_t>(v));
  second.Signal(SIGTERM);
  ASSERT_TRUE(second.WaitExit(kTimeout));
}

// Names in /dev/shm that a replacement of `segment` is built under.
std::vector<std::string> ReplacementTemporaries(const std::string& segment) {
  std::vector<std::string> found;
  const std::string stem = segment + ".confcast-new-";
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string name = e.path().filename().string();
    if (name.rfind(stem, 0) == 0) found.push_back(name);
  }
  return found;
}
std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += n + " ";
  return out;
}

// `confcastctl status` on a segment, its output and exit code.
std::pair<int, std::string> CtlStatus(const TempDir& dir, const std::string& segment) {
  const std::string out = dir / "status.txt";
  std::filesystem::remove(out);
  auto ctl = ChildProcess::Spawn({CONFCAST_CTL_BIN, "--segment", segment, "status"}, {.output_path = out});
  if (!ctl.WaitExit(kTimeout)) return {-1, "confcastctl did not exit"};
  return {ctl.exit_code(), ReadFile(out)};
}

// A publisher restarted with another --capacity while the config is bad: the
// old segment (and its version) must go on serving, for workers that had it
// and for workers that start now, with the rejection visible in it; the
// replacement waits for the first good config.
TEST(Fault, RestartWithAnotherCapacityAndABadConfigKeepsTheOldSegmentServing) {
  TempDir dir("fault-capacity-bad");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("capbad"));
  WriteViaRename(config, FaultConfig(7));
  FirstPublisher first = StartFirstPublisher(config, segment.name(), log);
  ASSERT_TRUE(first.reader);
  Subscriber* old_reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_TRUE(StopCleanly(first.process));

  WriteViaRename(config, "llm:\n  model: [unclosed\n");
  auto second = ChildProcess::Spawn(
      PublisherArgs(config, segment.name(), {"--capacity", "131072", "--debounce-ms", "20"}), {.output_path = log});
  // Its rejection lands in the old segment, which it now looks after.
  confcast_info info{};
  ASSERT_TRUE(WaitUntil(
      [&] {
        return old_reader->Info(&info) == CONFCAST_OK && info.publisher_pid == second.pid() &&
               info.reload_errors_total == 1;
      },
      kTimeout))
      << "the rejection never showed in the old segment\n"
      << ReadFile(log);
  EXPECT_EQ(std::string(info.last_error).rfind(config + ":", 0), 0u) << info.last_error;
  EXPECT_TRUE(second.Running()) << "a publisher with an old version to serve must not exit\n" << ReadFile(log);
  const auto [status_rc, status_text] = CtlStatus(dir, segment.name());
  EXPECT_EQ(status_rc, 0) << status_text;
  EXPECT_NE(status_text.find(config + ":"), std::string::npos) << "status does not say why:\n" << status_text;

  // Served as before: the old handle is not told to reopen, a new one maps the old segment.
  EXPECT_EQ(old_reader->version(), v);
  EXPECT_EQ(old_reader->Wait(v, 0), CONFCAST_ERR_TIMEOUT);
  {
    auto late = OpenWhenReady(segment.name(), milliseconds(0));
    ASSERT_TRUE(late) << "a worker starting now finds no segment\n" << ReadFile(log);
    EXPECT_EQ(late->slot_capacity(), 65536u);
    EXPECT_EQ(late->version(), v);
    EXPECT_EQ(late->GetString("fault.s"), "n=7");
  }
  EXPECT_TRUE(ReplacementTemporaries(segment.name()).empty()) << Joined(ReplacementTemporaries(segment.name()));

  // The fixed file replaces the segment: the new capacity, the next version.
  ASSERT_TRUE(WaitUntilWatching(second.pid(), kTimeout));
  WriteViaRename(config, FaultConfig(8));
  EXPECT_EQ(old_reader->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_ERR_INCOMPATIBLE) << ReadFile(log);
  EXPECT_EQ(old_reader->GetString("fault.s"), "n=7");
  std::optional<Subscriber> fresh = OpenWhenReady(segment.name(), milliseconds(0));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->slot_capacity(), 131072u);
  EXPECT_EQ(fresh->version(), v + 1);
  EXPECT_EQ(fresh->GetString("fault.s"), "n=8");
  ASSERT_EQ(fresh->Info(&info), CONFCAST_OK);
  EXPECT_EQ(info.publisher_pid, second.pid());
  EXPECT_EQ(info.reload_total, 1u);
  EXPECT_EQ(info.reload_errors_total, 1u);
  EXPECT_TRUE(ReplacementTemporaries(segment.name()).empty()) << Joined(ReplacementTemporaries(segment.name()));
  EXPECT_TRUE(StopCleanly(second));
}

// A publisher with another --capacity that stops (SIGTERM) or dies (SIGKILL)
// before any good config leaves the old segment serving exactly what it
// served, not retired, with nothing beside it.
TEST(Fault, StoppingBeforeTheReplacementLeavesTheOldSegmentIntact) {
  TempDir dir("fault-capacity-stop");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("capstop"));
  const std::string on_disk = "/dev/shm/" + segment.name();
  WriteViaRename(config, FaultConfig(5));
  FirstPublisher first = StartFirstPublisher(config, segment.name(), log);
  ASSERT_TRUE(first.reader);
  Subscriber* reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_TRUE(StopCleanly(first.process));
  const std::string slots_before = ReadFile(on_disk).substr(layout::kHeaderSize);

  WriteViaRename(config, "llm:\n  max_retries: 99\n");  // fails the schema
  for (const int sig : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(strsignal(sig));
    auto pending =
        ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--capacity", "131072"}), {.output_path = log});
    confcast_info info{};
    ASSERT_TRUE(WaitUntil(
        [&] {
          return reader->Info(&info) == CONFCAST_OK && info.publisher_pid == pending.pid() &&
                 info.reload_errors_total == 1;
        },
        kTimeout))
        << ReadFile(log);
    pending.Signal(sig);
    ASSERT_TRUE(pending.WaitExit(kTimeout));
    if (sig == SIGTERM) {
      EXPECT_EQ(pending.exit_code(), 0) << ReadFile(log);
    }

    EXPECT_EQ(ReadFile(on_disk).substr(layout::kHeaderSize), slots_before) << "the old segment's slots changed";
    EXPECT_EQ(reader->Wait(v, 0), CONFCAST_ERR_TIMEOUT) << "the old segment was retired";
    auto late = OpenWhenReady(segment.name(), milliseconds(0));
    ASSERT_TRUE(late) << "the segment is gone\n" << ReadFile(log);
    EXPECT_EQ(late->slot_capacity(), 65536u);
    EXPECT_EQ(late->version(), v);
    EXPECT_EQ(late->GetString("fault.s"), "n=5");
    EXPECT_TRUE(ReplacementTemporaries(segment.name()).empty()) << Joined(ReplacementTemporaries(segment.name()));
  }
}

// --check reads the file and nothing else: an existing segment of another
// capacity is left byte for byte, a missing one is not created.
TEST(Fault, CheckTouchesNoSegment) {
  TempDir dir("fault-check");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("check"));
  SegmentGuard absent(UniqueName("check-absent"));
  WriteViaRename(config, FaultConfig(2));
  FirstPublisher first = StartFirstPublisher(config, segment.name(), log);
  ASSERT_TRUE(first.reader);
  ASSERT_TRUE(StopCleanly(first.process));  // no heartbeat from here on: the bytes hold still
  const std::string before = ReadFile("/dev/shm/" + segment.name());
  for (const bool valid : {true, false}) {
    if (!valid) WriteViaRename(config, "llm: [\n");
    for (const std::string& name : {segment.name(), absent.name()}) {
      auto check =
          ChildProcess::Spawn(PublisherArgs(config, name, {"--capacity", "131072", "--check"}), {.output_path = log});
      ASSERT_TRUE(check.WaitExit(kTimeout));
      EXPECT_EQ(check.exit_code(), valid ? 0 : 1) << ReadFile(log);
    }
  }
  EXPECT_TRUE(ReadFile("/dev/shm/" + segment.name()) == before) << "--check wrote into the segment";
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + absent.name())) << "--check created a segment";
  EXPECT_TRUE(ReplacementTemporaries(segment.name()).empty());
}

TEST(Fault, SegmentOfAnotherLayoutIsRefusedByReadersAndReplacedByThePublisher) {
  TempDir dir("fault-layout");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("layout"));
  WriteViaRename(config, FaultConfig(3));
  {
    // What a future build's publisher might have left: our magic, another layout.
    const int fd = shm_open(("/" + segment.name()).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> bytes(layout::SegmentSize(4096), 0);
    layout::SegmentHeader h{};
    h.magic = layout::kMagic;
    h.layout_version = layout::kLayoutVersion + 1;
    h.layout_signature = layout::Signature() ^ 1;
    h.segment_size = bytes.size();
    std::memcpy(bytes.data(), &h, sizeof h);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  try {
    Subscriber sub(segment.name());
    FAIL() << "a reader opened a segment of another layout";
  } catch (const confcast::Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_INCOMPATIBLE);
  }
  // A publisher whose first config is bad has nothing to replace it with:
  // it exits 1 and leaves the segment to the build that reads it.
  const std::string foreign = ReadFile("/dev/shm/" + segment.name());
  WriteViaRename(config, "llm: [\n");
  auto bad = ChildProcess::Spawn(PublisherArgs(config, segment.name()), {.output_path = log});
  ASSERT_TRUE(bad.WaitExit(kTimeout));
  EXPECT_EQ(bad.exit_code(), 1) << ReadFile(log);
  EXPECT_TRUE(ReadFile("/dev/shm/" + segment.name()) == foreign) << "the foreign segment was removed or written";
  EXPECT_TRUE(ReplacementTemporaries(segment.name()).empty());
  WriteViaRename(config, FaultConfig(3));

  auto pub = ChildProcess::Spawn(PublisherArgs(config, segment.name()), {.output_path = log});
  std::optional<Subscriber> sub;
  ASSERT_TRUE(WaitUntil(
      [&] {
        sub = OpenWhenReady(segment.name(), milliseconds(0));
        return sub && sub->version() > 0;
      },
      kTimeout))
      << ReadFile(log);
  EXPECT_EQ(sub->GetString("fault.s"), "n=3");
  EXPECT_TRUE(StopCleanly(pub));
}

// A tmpfs of 1 MiB mounted for the test, unmounted at the end.
class SmallTmpfs {
 public:
  SmallTmpfs() : dir_("fault-tmpfs") {
    mounted_ = mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=1M,mode=0755") == 0;
    error_ = errno;
  }
  ~SmallTmpfs() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  int error() const { return error_; }
  std::string operator/(const std::string& name) const { return dir_ / name; }

 private:
  TempDir dir_;
  bool mounted_ = false;
  int error_ = 0;
};

TEST(Fault, NoRoomForTheSegmentIsAClearErrorAtStart) {
  SmallTmpfs tmpfs;
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(tmpfs.error());
  TempDir dir("fault-noroom");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  WriteViaRename(config, FaultConfig(1));
  const std::string segment = tmpfs / "segment";
  auto pub = ChildProcess::Spawn(PublisherArgs(config, segment, {"--capacity", std::to_string(4 << 20)}),
                                 {.output_path = log});
  ASSERT_TRUE(pub.WaitExit(kTimeout));
  EXPECT_EQ(pub.exit_code(), 1);
  const std::string text = ReadFile(log);
  EXPECT_NE(text.find("no room for segment " + segment), std::string::npos) << text;
  EXPECT_NE(text.find("No space left on device"), std::string::npos) << text;
  EXPECT_FALSE(std::filesystem::exists(segment)) << "a segment that does not fit must not be left behind";

  // The same tmpfs takes a segment that fits.
  auto fits = ChildProcess::Spawn(PublisherArgs(config, segment, {"--capacity", "65536"}), {.output_path = log});
  auto sub = OpenWhenReady(segment, kTimeout);
  ASSERT_TRUE(sub) << ReadFile(log);
  uint64_t v = 0;
  EXPECT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count()), &v), CONFCAST_OK);
  fits.Signal(SIGTERM);
  ASSERT_TRUE(fits.WaitExit(kTimeout));
}

TEST(Fault, ConfigGrowingPastCapacityIsRejectedTooLargeAndTheOldVersionKept) {
  TempDir dir("fault-grow");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("grow"));
  WriteViaRename(config, FaultConfig(5));
  auto pub = ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--capacity", "4096", "--debounce-ms", "20"}),
                                 {.output_path = log});
  auto sub = OpenWhenReady(segment.name(), kTimeout);
  ASSERT_TRUE(sub) << ReadFile(log);
  uint64_t v = 0;
  ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count()), &v), CONFCAST_OK);
  ASSERT_TRUE(WaitUntilWatching(pub.pid(), kTimeout));

  std::string big = FaultConfig(6) + "toolsets:\n";
  for (int i = 0; i < 200; ++i) big += "  toolset-" + std::to_string(i) + ":\n    enabled: true\n";
  WriteViaRename(config, big);
  uint64_t by_reason[layout::kReasonCount] = {};
  ASSERT_TRUE(WaitUntil(
      [&] { return sub->ErrorsByReason(by_reason) == CONFCAST_OK && by_reason[layout::kReasonTooLarge] == 1; },
      kTimeout))
      << ReadFile(log);
  confcast_info info;
  ASSERT_EQ(sub->Info(&info), CONFCAST_OK);
  EXPECT_EQ(std::string(info.last_error).rfind(config + ": the validated config needs ", 0), 0u) << info.last_error;
  EXPECT_NE(std::string(info.last_error).find("more than the segment's --capacity of 4096"), std::string::npos)
      << info.last_error;
  EXPECT_EQ(info.reload_errors_total, 1u);
  EXPECT_EQ(sub->version(), v);
  EXPECT_EQ(sub->GetString("fault.s"), "n=5");
  EXPECT_TRUE(pub.Running());

  // A config that fits again is published.
  WriteViaRename(config, FaultConfig(8));
  ASSERT_EQ(sub->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_OK) << ReadFile(log);
  EXPECT_EQ(sub->GetString("fault.s"), "n=8");
  pub.Signal(SIGTERM);
  ASSERT_TRUE(pub.WaitExit(kTimeout));
}

TEST(Fault, SegmentModeIsHonouredWhateverTheUmask) {
  TempDir dir("fault-mode");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  WriteViaRename(config, FaultConfig(1));
  struct Case {
    mode_t umask;
    mode_t mode;
    bool file_segment;
  };
  for (const Case c : {Case{0077, 0644, false}, Case{0, 0600, false}, Case{0027, 0604, false}, Case{0077, 0644, true},
                       Case{0, 0640, true}}) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(c.mode));
    SCOPED_TRACE(std::string("mode ") + octal + " umask " + std::to_string(c.umask) +
                 (c.file_segment ? " (file segment)" : " (shm)"));
    // A file segment is an absolute path in a tmpfs: /dev/shm is one.
    SegmentGuard shm(UniqueName("mode") + (c.file_segment ? ".file" : ""));
    const std::string on_disk = "/dev/shm/" + shm.name();
    const std::string segment = c.file_segment ? on_disk : shm.name();
    auto pub = ChildProcess::Spawn(PublisherArgs(config, segment, {"--segment-mode", octal}),
                                   {.output_path = log, .umask = c.umask});
    auto sub = OpenWhenReady(segment, kTimeout);
    ASSERT_TRUE(sub) << ReadFile(log);
    struct stat st {};
    ASSERT_EQ(stat(on_disk.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, c.mode);
    pub.Signal(SIGTERM);
    ASSERT_TRUE(pub.WaitExit(kTimeout));
  }
}

// In the child: finds the reader's own mapping of the segment in /proc/self/maps.
uintptr_t MappingOf(const std::string& path, std::string* perms) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() > path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) {
      std::istringstream in(line);
      std::string range;
      in >> range >> *perms;
      return std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    }
  }
  return 0;
}

TEST(Fault, AReadersMappingIsReadOnly) {
  TempDir dir("fault-readonly");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("readonly"));
  WriteViaRename(config, FaultConfig(4));
  auto pub = ChildProcess::Spawn(PublisherArgs(config, segment.name()), {.output_path = log});
  auto sub = OpenWhenReady(segment.name(), kTimeout);
  ASSERT_TRUE(sub) << ReadFile(log);
  ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);

  // The child's exit code says how far it got: 77 = the write faulted.
  ChildProcess child = ChildProcess::Fork(
      [&] {
        Subscriber reader(segment.name());
        std::string perms;
        auto* base = reinterpret_cast<volatile uint64_t*>(MappingOf("/dev/shm/" + segment.name(), &perms));
        if (base == nullptr) return 2;
        if (perms != "r--s") return 3;
        // Even on purpose, a reader cannot make its mapping writable: the fd was O_RDONLY.
        if (mprotect(const_cast<uint64_t*>(base), 4096, PROT_READ | PROT_WRITE) == 0) return 4;
        if (errno != EACCES) return 5;
        struct sigaction sa {};
        sa.sa_handler = [](int) { _exit(77); };
        sigaction(SIGSEGV, &sa, nullptr);
        sigaction(SIGBUS, &sa, nullptr);
        base[9] = 0xdead;  // the header's version word
        return 6;
      },
      "a reader writing through its mapping");
  ASSERT_TRUE(child.WaitExit(kTimeout));
  EXPECT_TRUE(child.exit_status()->ExitedWith(77) || child.term_signal() == SIGSEGV) << child.Describe();
  EXPECT_EQ(sub->GetString("fault.s"), "n=4");
  pub.Signal(SIGTERM);
  ASSERT_TRUE(pub.WaitExit(kTimeout));
}

TEST(Fault, AProcessThatIsNotTheOwnerCannotPublish) {
  const std::optional<User> nobody = NobodyIfRoot();
  if (!nobody) GTEST_SKIP() << "needs root, to run a second process as another user";
  TempDir dir("fault-owner");
  const std::string config = dir / "config.yaml";
  const std::string log = dir / "publisher.log";
  SegmentGuard segment(UniqueName("owner"));
  WriteViaRename(config, FaultConfig(2));
  auto pub =
      ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--segment-mode", "0640"}), {.output_path = log});
  auto sub = OpenWhenReady(segment.name(), kTimeout);
  ASSERT_TRUE(sub) << ReadFile(log);
  ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);
  const uint64_t version = sub->version();
  pub.Signal(SIGTERM);  // even with no publisher holding the lock
  ASSERT_TRUE(pub.WaitExit(kTimeout));

  // Exit code: 0 = refused with a permission error; others say what happened.
  const std::string message_file = dir / "child.txt";
  WriteViaRename(message_file, "", 0666);  // the child, as nobody, writes its message here
  ChildProcess child = ChildProcess::Fork(
      [&] {
        if (open(("/dev/shm/" + segment.name()).c_str(), O_RDWR) >= 0) return 3;
        auto opened = confcast::publisher::SegmentWriter::Open({segment.name(), 1 << 20, 0640});
        if (std::holds_alternative<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened)) return 4;
        const auto& failure = std::get<confcast::publisher::SegmentWriter::Failure>(opened);
        std::ofstream(message_file, std::ios::trunc) << failure.message;
        return failure.message.find("owned by uid 0 (root)") != std::string::npos ? 0 : 5;
      },
      "SegmentWriter::Open as nobody", nobody);
  ASSERT_TRUE(child.WaitExit(kTimeout));
  EXPECT_TRUE(child.exit_status()->ExitedWith(0)) << child.Describe() << ReadFile(message_file);
  // The lock file the root publisher left beside the segment stops it first.
  EXPECT_NE(ReadFile(message_file).find("/dev/shm/" + segment.name() + ".confcast-lock"), std::string::npos)
      << ReadFile(message_file);
  // And the publisher binary run as nobody says so and exits 1.
  auto intruder = ChildProcess::Spawn(PublisherArgs(config, segment.name()),
                                      {.output_path = dir / "intruder.log", .as_user = nobody});
  ASSERT_TRUE(intruder.WaitExit(kTimeout));
  EXPECT_EQ(intruder.exit_code(), 1);
  EXPECT_NE(ReadFile(dir / "intruder.log").find("owned by uid 0 (root)"), std::string::npos)
      << ReadFile(dir / "intruder.log");
  EXPECT_EQ(sub->version(), version);
  EXPECT_EQ(sub->GetString("fault.s"), "n=2");
}

TEST(Fault, ASecondPublisherOnTheSameSegmentExitsOne) {
  TempDir dir("fault-second");
  const std::string config = dir / "config.yaml";
  SegmentGuard segment(UniqueName("second"));
  WriteViaRename(config, FaultConfig(1));
  auto first = ChildProcess::Spawn(PublisherArgs(config, segment.name()), {.output_path = dir / "first.log"});
  auto sub = OpenWhenReady(segment.name(), kTimeout);
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);
  auto second = ChildProcess::Spawn(PublisherArgs(config, segment.name()), {.output_path = dir / "second.log"});
  ASSERT_TRUE(second.WaitExit(kTimeout));
  EXPECT_EQ(second.exit_code(), 1);
  EXPECT_NE(ReadFile(dir / "second.log").find("only one publisher per segment"), std::string::npos);
  EXPECT_TRUE(first.Running());
  first.Signal(SIGTERM);
  ASSERT_TRUE(first.WaitExit(kTimeout));
}

}  // namespace
