// segment_open_test.cc - opening a segment: an empty one (nothing published
// yet), a missing or unreachable one, the segment named by the environment,
// one the process may not read, and the mapping a reader gets, which is
// read-only (a write through it faults, with the C ABI and with C++).
//
// Threading: single-threaded; forked children only open, read or write
// through their mapping, and exit.
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
#include <filesystem>
#include <fstream>
#include <functional>
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
#include "../tests/support/scratch.hpp"
#include "../tests/support/wait.hpp"
#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using nlohmann::json;
namespace fs = std::filesystem;

TEST(SegmentOpen, EmptySegmentGivesEmpty) {
  PublishedSegment seg;  // created, nothing published
  Handle h = OpenC(seg.segment());
  ASSERT_TRUE(h);
  EXPECT_EQ(confcast_version(h.get()), 0u);
  int64_t i;
  double d;
  int b;
  char buf[16];
  size_t len = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_double(h.get(), "llm.temperature", &d, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_bool(h.get(), "x", &b, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.model", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_json(h.get(), "", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_snapshot_json(h.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  uint64_t seen = 99;
  EXPECT_EQ(confcast_wait(h.get(), 0, 20, &seen), CONFCAST_ERR_TIMEOUT);
  EXPECT_EQ(seen, 0u);
  confcast_info info;
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.version, 0u);
  EXPECT_EQ(info.published_unix_ns, 0);
  EXPECT_STREQ(info.sha256_hex, "");

  Subscriber sub(seg.segment());
  Key key("llm.max_retries");
  EXPECT_EQ(sub.Get(key, &i), CONFCAST_ERR_EMPTY);
  Snapshot snap;
  EXPECT_EQ(sub.TryPin(&snap), CONFCAST_ERR_EMPTY);
  EXPECT_TRUE(snap.empty());
  EXPECT_EQ(snap.Get("llm.max_retries", &i), CONFCAST_ERR_EMPTY);
  try {
    sub.Pin();
    ADD_FAILURE() << "Pin of an empty segment must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_EMPTY);
  }
  // Once something is published, the same handles read it.
  seg.Publish(HolmesConfig());
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(sub.GetInt(key), 3);
}

TEST(SegmentOpen, OpenErrors) {
  const std::string missing = UniqueName("missing");
  EXPECT_EQ(OpenStatus(missing), CONFCAST_ERR_NO_SEGMENT);
  EXPECT_EQ(OpenStatus("/dev/shm/" + missing), CONFCAST_ERR_NO_SEGMENT);
  EXPECT_EQ(OpenStatus("/nonexistent-dir-confcast/" + missing), CONFCAST_ERR_NO_SEGMENT);
  try {
    Subscriber sub(missing);
    ADD_FAILURE() << "opening a missing segment must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NO_SEGMENT);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // Bad names: a relative path, dot names, a name longer than NAME_MAX.
  EXPECT_EQ(OpenStatus("a/b"), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus("relative/dir/seg"), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus("."), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus(".."), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus(std::string(NAME_MAX + 5, 'n')), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_open("x", nullptr), CONFCAST_ERR_INVALID);
  // A directory is not a segment.
  TempDir dir("sub", kTmpfs);
  fs::create_directory(dir / "d");
  EXPECT_EQ(OpenStatus(dir / "d"), CONFCAST_ERR_CORRUPT);
}

TEST(SegmentOpen, NullSegmentMeansEnvironment) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  const char* old = getenv("CONFCAST_SEGMENT");
  const std::string saved = old ? old : "";
  setenv("CONFCAST_SEGMENT", seg.c_str(), 1);
  confcast_subscriber* raw = nullptr;
  const int rc = confcast_open(nullptr, &raw);
  Handle h(raw);
  if (old) setenv("CONFCAST_SEGMENT", saved.c_str(), 1); else unsetenv("CONFCAST_SEGMENT");
  ASSERT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(CString(h.get(), "llm.model"), "gpt-4o");
  EXPECT_EQ(Subscriber::ResolveName({}), old ? saved : std::string("holmesgpt-config"));
}

struct Mapping {
  uintptr_t start, end;
  std::string perms;
};

std::vector<Mapping> MappingsOf(const std::string& file) {
  std::vector<Mapping> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < file.size() || line.compare(line.size() - file.size(), file.size(), file) != 0) continue;
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const size_t dash = range.find('-');
    out.push_back({std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16),
                   perms});
  }
  return out;
}

// Exit codes of the child below. The child catches its own SIGSEGV so that it
// can tell a write to a mapped read-only page (SEGV_ACCERR, at exactly the
// address written) from any other crash, and so that a sanitizer's own
// SIGSEGV report does not stand in for the signal.
constexpr int kWriteFaulted = 42;     // SIGSEGV, SEGV_ACCERR, at the written address
constexpr int kOtherFault = 43;       // SIGSEGV for another reason
volatile uintptr_t g_write_target = 0;

void OnSegv(int, siginfo_t* info, void*) {
  const bool expected =
      info->si_code == SEGV_ACCERR && reinterpret_cast<uintptr_t>(info->si_addr) == g_write_target;
  _exit(expected ? kWriteFaulted : kOtherFault);
}

// In a child: opens the segment with `open_reader`, finds the mapping it
// added, checks it is read-only, then writes to it, which must raise SIGSEGV.
// Other exit codes name what went wrong instead.
int WriteThroughReaderMapping(const std::string& file, const std::function<bool()>& open_reader) {
  const auto before = MappingsOf(file);
  if (!open_reader()) return 2;
  for (const Mapping& m : MappingsOf(file)) {
    bool existed = false;
    for (const Mapping& b : before) existed |= b.start == m.start;
    if (existed) continue;
    if (m.perms.size() < 4 || m.perms[0] != 'r' || m.perms[1] != '-' || m.perms[3] != 's') return 3;
    struct sigaction sa {};
    sa.sa_sigaction = OnSegv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0) return 6;
    g_write_target = m.start + layout::kHeaderSize;
    *reinterpret_cast<volatile uint8_t*>(g_write_target) = 0x5A;  // must fault
    return 4;
  }
  return 5;  // no new mapping found
}

TEST(ReadOnlyMapping, SegmentIsMappedReadOnly) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  const std::string file = "/dev/shm/" + seg.segment();
  auto expect_write_faulted = [](ChildProcess& child, const char* api) {
    const std::optional<ExitStatus> status = child.WaitExit(milliseconds(10000));
    ASSERT_TRUE(status.has_value()) << api << ": the child did not finish";
    EXPECT_TRUE(status->ExitedWith(kWriteFaulted)) << api << ": " << child.Describe();
  };
  {
    ChildProcess child = ChildProcess::Fork(
        [&] {
          return WriteThroughReaderMapping(file, [&] {
            confcast_subscriber* s = nullptr;
            return confcast_open(seg.c_str(), &s) == CONFCAST_OK;  // left open on purpose
          });
        },
        "a C reader writing through its mapping");
    expect_write_faulted(child, "C ABI");
  }
  {
    ChildProcess child = ChildProcess::Fork(
        [&] {
          return WriteThroughReaderMapping(file, [&] {
            new Subscriber(seg.segment());  // leaked on purpose: the child exits holding it
            return true;
          });
        },
        "a C++ reader writing through its mapping");
    expect_write_faulted(child, "C++");
  }
  // And the segment is untouched.
  Subscriber sub(seg.segment());
  EXPECT_EQ(sub.GetJson(""), HolmesConfig().dump());
}

TEST(SegmentOpen, UnreadableSegmentGivesPermission) {
  PublishedSegment seg;  // mode 0600, owned by this user
  seg.Publish({{"n", 1}});
  const std::optional<User> nobody = UserIfRoot("nobody");
  if (!nobody) GTEST_SKIP() << "needs root and a 'nobody' user to drop to";
  ChildProcess child = ChildProcess::Fork(
      [&] {
        confcast_subscriber* s = nullptr;
        return confcast_open(seg.c_str(), &s) == CONFCAST_ERR_PERMISSION && s == nullptr ? 0 : 3;
      },
      "confcast_open as nobody", nobody);
  const std::optional<ExitStatus> status = child.WaitExit(milliseconds(10000));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ExitedWith(0)) << child.Describe();
}

}  // namespace
}  // namespace confcast
