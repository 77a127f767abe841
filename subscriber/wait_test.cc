// wait_test.cc - waiting for a new version: at once when it is already
// newer, the timeout, a negative timeout, and a waiter asleep in futex(2)
// woken by a publish from another thread or in another process.
//
// Threading: the wake-up tests start a waiter thread (or fork a waiter
// process) and join (reap) it before returning.
//
// The segment is published in this process by the publisher's own
// SegmentWriter and snapshot builder (tests/support/in_process_segment.hpp),
// so each test controls exactly what is published and when.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../tests/support/c_api.hpp"
#include "../tests/support/child_process.hpp"
#include "../tests/support/configs.hpp"
#include "../tests/support/in_process_segment.hpp"
#include "../tests/support/names.hpp"
#include "../tests/support/wait.hpp"
#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using nlohmann::json;

// The system call a thread is blocked in (x86-64 number), or -1 if it runs.
long BlockedSyscall(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  if (!(in >> first) || first == "running") return -1;
  try {
    return std::stol(first);
  } catch (...) {
    return -1;
  }
}

// Polls (there is no event for it) until thread `tid` sleeps in futex(2).
bool BlockedInFutex(pid_t tid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (BlockedSyscall(tid) == SYS_futex) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

TEST(VersionWait, WaitReturnsAtOnceWhenAlreadyNewer) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  seg.Publish({{"n", 2}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  const auto start = Clock::now();
  uint64_t seen = 0;
  EXPECT_EQ(sub.Wait(0, 10000, &seen), CONFCAST_OK);
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(sub.Wait(1, -1, &seen), CONFCAST_OK);  // even with no timeout at all
  EXPECT_EQ(confcast_wait(h.get(), 1, 10000, &seen), CONFCAST_OK);
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(confcast_wait(h.get(), 0, 0, nullptr), CONFCAST_OK);
  EXPECT_LT(Clock::now() - start, milliseconds(500));
}

TEST(VersionWait, WaitTimesOut) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Handle h = OpenC(seg.segment());
  for (int timeout_ms : {0, 1, 120}) {
    const auto start = Clock::now();
    uint64_t seen = 0;
    EXPECT_EQ(confcast_wait(h.get(), 1, timeout_ms, &seen), CONFCAST_ERR_TIMEOUT) << timeout_ms;
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, milliseconds(timeout_ms));
    EXPECT_LT(elapsed, milliseconds(timeout_ms + 1500));
    EXPECT_EQ(seen, 1u);
  }
  // Waiting past a version that does not exist yet also times out.
  EXPECT_EQ(confcast_wait(h.get(), 5, 10, nullptr), CONFCAST_ERR_TIMEOUT);
}

// Starts `waiter` on a thread, makes sure it sleeps in futex(2), publishes,
// and checks it woke promptly with the new version.
void ExpectWakesOnPublish(PublishedSegment& seg, const std::function<int(uint64_t after, uint64_t* seen)>& waiter) {
  const uint64_t before = seg.writer().version();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> returned{false};
  int rc = -999;
  uint64_t seen = 0;
  Clock::time_point woke;
  std::thread t([&] {
    tid = CurrentTid();
    rc = waiter(before, &seen);
    woke = Clock::now();
    returned = true;
  });
  struct Joiner {
    std::thread& t;
    PublishedSegment& seg;
    ~Joiner() {
      if (t.joinable()) {
        seg.Publish({{"release", "the waiter"}});  // never leave a thread blocked
        t.join();
      }
    }
  } joiner{t, seg};
  while (tid.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(BlockedInFutex(tid.load(), milliseconds(5000))) << "the waiter never went to sleep in futex(2)";
  EXPECT_FALSE(returned.load());
  const auto published = Clock::now();
  const uint64_t v = seg.Publish({{"n", static_cast<int64_t>(before + 1)}});
  t.join();
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(seen, v);
  EXPECT_LT(woke - published, milliseconds(250)) << "woke too late";
}

TEST(VersionWait, WaitWakesOnAnotherThreadsPublish) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return sub.Wait(after, 20000, seen); });
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return confcast_wait(h.get(), after, 20000, seen); });
}

TEST(VersionWait, NegativeTimeoutWaitsUntilAPublish) {
  PublishedSegment seg;
  Handle h = OpenC(seg.segment());  // nothing published: wait for the very first version
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return confcast_wait(h.get(), after, -1, seen); });
  Subscriber sub(seg.segment());
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return sub.Wait(after, -1, seen); });
}

TEST(VersionWait, WaitWakesAcrossProcesses) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  int to_parent[2];
  ASSERT_EQ(pipe2(to_parent, O_CLOEXEC), 0);
  ChildProcess child = ChildProcess::Fork([&] {
    close(to_parent[0]);
    confcast_subscriber* raw = nullptr;
    if (confcast_open(seg.c_str(), &raw) != CONFCAST_OK) return 4;
    Handle h(raw);
    const pid_t me = CurrentTid();
    if (write(to_parent[1], &me, sizeof(me)) != sizeof(me)) return 2;
    uint64_t seen = 0;
    const int rc = confcast_wait(h.get(), 1, 20000, &seen);
    return rc == CONFCAST_OK && seen == 2 ? 0 : 3;
  }, "a reader asleep in confcast_wait");
  close(to_parent[1]);
  pid_t child_pid = 0;
  ASSERT_EQ(read(to_parent[0], &child_pid, sizeof(child_pid)), static_cast<ssize_t>(sizeof(child_pid)));
  close(to_parent[0]);
  // The child's main thread: /proc/PID/syscall, polled until it sleeps.
  const auto deadline = Clock::now() + milliseconds(5000);
  bool sleeping = false;
  while (!sleeping && Clock::now() < deadline) {
    std::ifstream in("/proc/" + std::to_string(child_pid) + "/syscall");
    std::string first;
    sleeping = (in >> first) && first == std::to_string(SYS_futex);
    if (!sleeping) std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_TRUE(sleeping);
  seg.Publish({{"n", 2}});
  const std::optional<ExitStatus> status = child.WaitExit(milliseconds(5000));
  ASSERT_TRUE(status.has_value()) << "the child did not wake";
  EXPECT_TRUE(status->ExitedWith(0)) << child.Describe();
}

}  // namespace
}  // namespace confcast
