// torn_read_test.cc - the torn-read proof: while a publisher republishes as
// fast as it can, readers in several threads and in other processes check, in
// every read, that what they got belongs to exactly one version.
//
// Version N carries stress.a == stress.b == stress.c == N and
// stress.s == "vN" repeated (N % 50 + 1) times, plus a filler list of N % 13
// elements so the entries move around from version to version. A reader
// checks the cross-field invariant on a pinned snapshot (one consistent copy),
// each Key read against the version it reports (value == N), each string read
// against its version, and now and then the whole-snapshot JSON; the versions
// one reader sees never decrease.
//
// Threading: one publisher thread (the only writer), four reader threads
// sharing one Subscriber and one set of Keys, and two forked reader processes
// with their own mappings, reporting through a pipe. Under ThreadSanitizer
// (TORN_READ_TEST_TSAN) the forked part is compiled out:
// TSan checks the threads, and fork() from a TSan process is not supported.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "confcast/subscriber.hpp"
#include "confcast/word_access.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"
#include "segment_bytes.hpp"  // subscriber/: reads through memory the test maps
#include "support/in_process_segment.hpp"
#include "support/names.hpp"
#include "support/segment_guard.hpp"

#if defined(__SANITIZE_THREAD__)
#define TORN_READ_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TORN_READ_TEST_TSAN 1
#endif
#endif

namespace confcast {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kReadFor = milliseconds(2000);
constexpr int kReaderThreads = 4;
constexpr int kReaderProcesses = 2;

std::string ExpectedString(uint64_t n) {
  const std::string unit = "v" + std::to_string(n);
  std::string s;
  for (uint64_t r = 0; r < n % 50 + 1; ++r) s += unit;
  return s;
}

json ConfigFor(uint64_t n) {
  json filler = json::array();
  for (uint64_t i = 0; i < n % 13; ++i) filler.push_back(i);
  return json{{"filler", filler},
              {"stress", {{"a", n}, {"b", n}, {"c", n}, {"s", ExpectedString(n)}}},
              {"zzz", {{"after", n % 7}}}};
}

// What one reader saw. Plain data: it crosses a pipe from a child process.
struct Tally {
  uint64_t reads = 0;            // individual checked reads
  uint64_t violations = 0;       // reads that mixed versions or disagreed with their version
  uint64_t regressions = 0;      // a version lower than one seen before
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  char first_problem[256] = {};  // the first violation, for the failure message
};
static_assert(sizeof(Tally) < PIPE_BUF, "one atomic pipe write");

class ReaderLoop {
 public:
  ReaderLoop(const Subscriber& sub, const Key& a, const Key& b, const Key& c, Tally* tally)
      : sub_(sub), a_(a), b_(b), c_(c), t_(*tally) {}

  void RunFor(Clock::duration how_long) {
    std::vector<char> buf(64 << 10);
    const auto deadline = Clock::now() + how_long;
    for (uint64_t round = 0; Clock::now() < deadline; ++round) {
      PinnedInvariant();
      for (const Key* key : {&a_, &b_, &c_}) KeyRead(*key);
      CPathRead();
      StringRead(buf);
      if (round % 32 == 0) WholeJson(buf);
    }
  }

 private:
  void Saw(uint64_t version) {
    if (t_.first_version == 0) t_.first_version = version;
    if (version < t_.last_version) {
      ++t_.regressions;
      Problem("version went back from " + std::to_string(t_.last_version) + " to " + std::to_string(version));
    }
    t_.last_version = std::max(t_.last_version, version);
    ++t_.reads;
  }
  void Problem(const std::string& what) {
    ++t_.violations;
    if (t_.first_problem[0] == '\0') {
      std::strncpy(t_.first_problem, what.c_str(), sizeof(t_.first_problem) - 1);
    }
  }

  void PinnedInvariant() {
    Snapshot snap;
    if (int rc = sub_.TryPin(&snap); rc != CONFCAST_OK) return Problem(std::string("Pin: ") + StatusMessage(rc));
    const uint64_t n = snap.version();
    Saw(n);
    int64_t a = -1, b = -1, c = -1;
    std::string_view s;
    if (snap.Get("stress.a", &a) != CONFCAST_OK || snap.Get("stress.b", &b) != CONFCAST_OK ||
        snap.Get("stress.c", &c) != CONFCAST_OK || snap.Get("stress.s", &s) != CONFCAST_OK) {
      return Problem("pinned version " + std::to_string(n) + " lacks a stress field");
    }
    const auto un = static_cast<int64_t>(n);
    if (a != un || b != un || c != un || s != ExpectedString(n)) {
      Problem("pinned version " + std::to_string(n) + ": a=" + std::to_string(a) + " b=" + std::to_string(b) +
              " c=" + std::to_string(c) + " s.size=" + std::to_string(s.size()));
    }
  }

  void KeyRead(const Key& key) {
    int64_t value = -1;
    uint64_t version = 0;
    if (int rc = sub_.Get(key, &value, &version); rc != CONFCAST_OK) {
      return Problem(key.path() + ": " + StatusMessage(rc));
    }
    Saw(version);
    if (value != static_cast<int64_t>(version)) {
      Problem(key.path() + " = " + std::to_string(value) + " read from version " + std::to_string(version));
    }
  }

  // By a path given per call, as the C ABI reads (it adds only the strlen):
  // the handle's path cache.
  void CPathRead() {
    int64_t value = -1;
    uint64_t version = 0;
    if (int rc = sub_.Get(std::string_view("stress.b"), &value, &version); rc != CONFCAST_OK) {
      return Problem(std::string("C path stress.b: ") + StatusMessage(rc));
    }
    Saw(version);
    if (value != static_cast<int64_t>(version)) {
      Problem("C path stress.b = " + std::to_string(value) + " read from version " + std::to_string(version));
    }
  }

  void StringRead(std::vector<char>& buf) {
    size_t len = 0;
    uint64_t version = 0;
    if (int rc = sub_.GetString("stress.s", buf.data(), buf.size(), &len, &version); rc != CONFCAST_OK) {
      return Problem(std::string("stress.s: ") + StatusMessage(rc));
    }
    Saw(version);
    if (std::string_view(buf.data(), len) != ExpectedString(version)) {
      Problem("stress.s of length " + std::to_string(len) + " read from version " + std::to_string(version));
    }
  }

  void WholeJson(std::vector<char>& buf) {
    size_t len = 0;
    uint64_t version = 0;
    if (int rc = sub_.SnapshotJson(buf.data(), buf.size(), &len, &version); rc != CONFCAST_OK) {
      return Problem(std::string("snapshot json: ") + StatusMessage(rc));
    }
    Saw(version);
    const json parsed = json::parse(std::string_view(buf.data(), len), nullptr, false);
    if (parsed.is_discarded() || parsed != ConfigFor(version)) {
      Problem("snapshot json of version " + std::to_string(version) + " is not that version's config");
    }
  }

  const Subscriber& sub_;
  const Key &a_, &b_, &c_;
  Tally& t_;
};

// The only writer: republishes ConfigFor(N), N = the next version, until told to stop.
class Publisher {
 public:
  explicit Publisher(std::unique_ptr<publisher::SegmentWriter> writer) : writer_(std::move(writer)) {}
  ~Publisher() { Stop(); }

  void PublishOnce() { PublishConfig([](uint64_t n) { return ConfigFor(n); }); }
  // Publishes make(N) as version N (a test of the checker itself may break the invariant).
  template <class Make>
  void PublishConfig(Make&& make) {
    const uint64_t n = writer_->version() + 1;
    const std::vector<uint64_t> words = test_support::SnapshotWords(make(n));
    std::array<unsigned char, 32> sha{};
    std::memcpy(sha.data(), &n, sizeof(n));
    if (writer_->Publish(words.data(), words.size(), sha, publisher::RealtimeNs()) != n) wrong_version_ = true;
    ++published_;
  }
  void Start() {
    thread_ = std::thread([this] {
      while (!stop_.load(std::memory_order_relaxed)) PublishOnce();
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t published() const { return published_.load(); }
  bool wrong_version() const { return wrong_version_.load(); }
  uint64_t version() const { return writer_->version(); }
  const publisher::SegmentWriter& writer() const { return *writer_; }

 private:
  std::unique_ptr<publisher::SegmentWriter> writer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> published_{0};
  std::atomic<bool> wrong_version_{false};
};

#ifndef TORN_READ_TEST_TSAN
// A forked reader process: waits for the go signal (EOF on `go`), reads for
// kReadFor with its own mapping, writes its Tally to `report`, exits.
class ReaderProcess {
 public:
  ReaderProcess(const std::string& segment, int go_read, int go_write) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      close(fds[0]);
      close(go_write);
      Tally tally;
      pollfd p{go_read, POLLIN, 0};
      char byte;
      if (poll(&p, 1, 30000) != 1 || read(go_read, &byte, 1) != 0) _exit(2);
      try {
        Subscriber sub(segment);
        const Key a("stress.a"), b("stress.b"), c("stress.c");
        ReaderLoop(sub, a, b, c, &tally).RunFor(kReadFor);
      } catch (const std::exception& e) {
        ++tally.violations;
        std::strncpy(tally.first_problem, e.what(), sizeof(tally.first_problem) - 1);
      }
      const bool sent = write(fds[1], &tally, sizeof(tally)) == static_cast<ssize_t>(sizeof(tally));
      _exit(sent ? 0 : 3);
    }
    close(fds[1]);
    report_ = fds[0];
  }
  ~ReaderProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
    close(report_);
  }
  ReaderProcess(const ReaderProcess&) = delete;
  ReaderProcess& operator=(const ReaderProcess&) = delete;

  // The child's Tally, or false if it did not report in time.
  bool Collect(Tally* out, milliseconds timeout) {
    pollfd p{report_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    if (read(report_, out, sizeof(*out)) != static_cast<ssize_t>(sizeof(*out))) return false;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return false;
    reaped_ = true;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  pid_t pid_ = -1;
  int report_ = -1;
  bool reaped_ = false;
};
#endif

void ExpectClean(const Tally& t, const std::string& who, uint64_t min_reads) {
  EXPECT_EQ(t.violations, 0u) << who << ": first problem: " << t.first_problem;
  EXPECT_EQ(t.regressions, 0u) << who;
  EXPECT_GE(t.reads, min_reads) << who << " read too little to prove anything";
  // The reader ran while versions changed under it.
  EXPECT_GE(t.last_version, t.first_version + 10) << who << " saw versions " << t.first_version << ".." << t.last_version;
}

TEST(TornRead, ReadersInThreadsAndProcessesSeeOnlyWholeVersions) {
  const test_support::SegmentGuard segment(test_support::UniqueName("torn"));
  Publisher pub(test_support::OpenSegmentWriter(segment.name(), 256 << 10));
  pub.PublishOnce();  // version 1 exists before anyone reads

  // Children are forked before any thread exists in this process.
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
#ifndef TORN_READ_TEST_TSAN
  std::vector<std::unique_ptr<ReaderProcess>> processes;
  for (int i = 0; i < kReaderProcesses; ++i) {
    processes.push_back(std::make_unique<ReaderProcess>(segment.name(), go[0], go[1]));
  }
#endif
  Subscriber sub(segment.name());
  const Key a("stress.a"), b("stress.b"), c("stress.c");  // shared by the reader threads

  pub.Start();
  close(go[1]);  // go: the children see EOF
  std::vector<Tally> thread_tallies(kReaderThreads);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaderThreads; ++i) {
    readers.emplace_back([&, i] { ReaderLoop(sub, a, b, c, &thread_tallies[i]).RunFor(kReadFor); });
  }
  for (auto& t : readers) t.join();

#ifndef TORN_READ_TEST_TSAN
  std::vector<Tally> process_tallies(kReaderProcesses);
  for (int i = 0; i < kReaderProcesses; ++i) {
    EXPECT_TRUE(processes[i]->Collect(&process_tallies[i], kReadFor + milliseconds(20000)))
        << "reader process " << i << " did not report";
  }
#endif
  pub.Stop();
  close(go[0]);

  EXPECT_FALSE(pub.wrong_version());
  EXPECT_GT(pub.published(), 100u) << "the publisher barely ran";
  EXPECT_EQ(sub.version(), pub.version());
  uint64_t total = 0;
  for (int i = 0; i < kReaderThreads; ++i) {
    ExpectClean(thread_tallies[i], "reader thread " + std::to_string(i), 1000);
    total += thread_tallies[i].reads;
  }
#ifndef TORN_READ_TEST_TSAN
  for (int i = 0; i < kReaderProcesses; ++i) {
    ExpectClean(process_tallies[i], "reader process " + std::to_string(i), 1000);
    total += process_tallies[i].reads;
  }
#endif
  RecordProperty("reads", std::to_string(total));
  RecordProperty("versions_published", std::to_string(pub.published()));
}

// The same readers on the publisher's own mapping. Above, readers and the
// writer use two mappings of one segment, and ThreadSanitizer, which tracks
// addresses, cannot relate their accesses; here every load of a reader and
// every store of the writer hit the same addresses, so under TSan (tests/run
// builds this with -fsanitize=thread) any access that is not part of the
// seqlock protocol is reported as a race.
TEST(TornRead, ReadersOnTheWritersOwnMappingSeeOnlyWholeVersions) {
  const test_support::SegmentGuard segment(test_support::UniqueName("torn"));
  Publisher pub(test_support::OpenSegmentWriter(segment.name(), 256 << 10));
  pub.PublishOnce();
  SegmentMapping borrowed;
  ASSERT_EQ(internal::MapBorrowed(pub.writer().mapping(), pub.writer().mapping_size(), &borrowed), CONFCAST_OK);
  Subscriber sub(std::move(borrowed));
  const Key a("stress.a"), b("stress.b"), c("stress.c");
  pub.Start();
  std::vector<Tally> tallies(2);
  std::vector<std::thread> readers;
  for (size_t i = 0; i < tallies.size(); ++i) {
    readers.emplace_back([&, i] { ReaderLoop(sub, a, b, c, &tallies[i]).RunFor(kReadFor / 2); });
  }
  for (auto& t : readers) t.join();
  pub.Stop();
  EXPECT_FALSE(pub.wrong_version());
  for (size_t i = 0; i < tallies.size(); ++i) ExpectClean(tallies[i], "reader thread " + std::to_string(i), 500);
}

// A segment is anyone's file until proven otherwise, and its header may be
// rewritten while a reader verifies it. The reader's loads of the header's
// identity words must be atomic, as layout.hpp requires of every shared
// word: under TSan a plain load racing this rewriter is reported.
TEST(TornRead, HeaderVerificationRacesARewriterOnlyThroughAtomics) {
  const test_support::SegmentGuard segment(test_support::UniqueName("torn"));
  Publisher pub(test_support::OpenSegmentWriter(segment.name(), 64 << 10));
  pub.PublishOnce();
  const uint64_t size = pub.writer().mapping_size();
  std::unique_ptr<uint64_t[]> copy(new uint64_t[size / 8]);
  std::memcpy(copy.get(), pub.writer().mapping(), size);
  auto* header = reinterpret_cast<confcast::layout::SegmentHeader*>(copy.get());
  std::atomic<bool> stop{false};
  std::thread rewriter([&] {
    while (!stop.load(std::memory_order_relaxed)) {  // the same values: verification keeps passing
      __atomic_store_n(&header->layout_version, __atomic_load_n(&header->layout_version, __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
      __atomic_store_n(&header->slot_capacity, __atomic_load_n(&header->slot_capacity, __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
      __atomic_store_n(&header->slot_count, __atomic_load_n(&header->slot_count, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    }
  });
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    SegmentMapping borrowed;
    if (internal::MapBorrowed(reinterpret_cast<const uint8_t*>(copy.get()), size, &borrowed) != CONFCAST_OK) {
      ++failures;
    }
  }
  stop = true;
  rewriter.join();
  EXPECT_EQ(failures, 0);
}

// The checker itself: a version that breaks the invariant is reported, so a
// clean run above means something.
TEST(TornRead, CheckerFlagsAMixedVersion) {
  const test_support::SegmentGuard segment(test_support::UniqueName("torn"));
  Publisher pub(test_support::OpenSegmentWriter(segment.name(), 64 << 10));
  pub.PublishConfig([](uint64_t n) {
    json config = ConfigFor(n);
    config["stress"]["b"] = n + 1;  // what a torn read would look like
    return config;
  });
  Subscriber sub(segment.name());
  const Key a("stress.a"), b("stress.b"), c("stress.c");
  Tally tally;
  ReaderLoop(sub, a, b, c, &tally).RunFor(milliseconds(20));
  EXPECT_GT(tally.violations, 0u);
  EXPECT_NE(std::string(tally.first_problem).find("b=2"), std::string::npos) << tally.first_problem;

  pub.PublishConfig([](uint64_t n) {
    json config = ConfigFor(n);
    config["stress"]["s"] = ExpectedString(n - 1);
    return config;
  });
  Tally string_tally;
  ReaderLoop(sub, a, b, c, &string_tally).RunFor(milliseconds(20));
  EXPECT_GT(string_tally.violations, 0u);
}

}  // namespace
}  // namespace confcast
