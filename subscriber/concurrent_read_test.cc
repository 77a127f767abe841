// concurrent_read_test.cc - readers in several threads, by path, by Key and
// pinned, while another thread republishes: every read is one whole version
// and versions never go back (also run under ThreadSanitizer).
//
// Threading: reader threads and one publishing thread, all joined before the
// test returns.
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
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../tests/support/c_api.hpp"
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

TEST(ConcurrentReads, ConcurrentReadersWhileAnotherThreadPublishes) {
  PublishedSegment seg;
  // Version v carries n == v, d == v + 0.5, b == (v even), s == "v<v>" x (v % 7 + 1).
  auto config_for = [](uint64_t v) {
    std::string s;
    for (uint64_t r = 0; r < v % 7 + 1; ++r) s += "v" + std::to_string(v);
    return json{{"n", v}, {"d", v + 0.5}, {"b", v % 2 == 0}, {"s", s}, {"pad", json::array({v, v, v})}};
  };
  auto expected_s = [](uint64_t v) {
    std::string s;
    for (uint64_t r = 0; r < v % 7 + 1; ++r) s += "v" + std::to_string(v);
    return s;
  };
  ASSERT_EQ(seg.Publish(config_for(1)), 1u);
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  Key shared_n("n");  // one Key shared by every thread

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, bad{0};
  auto reader = [&](int id) {
    uint64_t local_reads = 0, local_bad = 0, last_version = 0;
    char buf[256];
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t v = 0;
      int64_t n = 0;
      if (id % 2 == 0) {
        if (sub.Get(shared_n, &n, &v) != CONFCAST_OK || static_cast<uint64_t>(n) != v) ++local_bad;
      } else {
        if (confcast_get_int(h.get(), "n", &n, &v) != CONFCAST_OK || static_cast<uint64_t>(n) != v) ++local_bad;
      }
      if (v < last_version) ++local_bad;
      last_version = v;
      double d = 0;
      if (confcast_get_double(h.get(), "d", &d, &v) != CONFCAST_OK || d != v + 0.5) ++local_bad;
      int b = -1;
      if (confcast_get_bool(h.get(), "b", &b, &v) != CONFCAST_OK || b != (v % 2 == 0 ? 1 : 0)) ++local_bad;
      size_t len = 0;
      if (confcast_get_string(h.get(), "s", buf, sizeof(buf), &len, &v) != CONFCAST_OK ||
          std::string(buf, len) != expected_s(v)) {
        ++local_bad;
      }
      if (local_reads % 16 == 0) {
        const Snapshot snap = sub.Pin();
        if (static_cast<uint64_t>(snap.GetInt("n")) != snap.version() || snap.GetString("s") != expected_s(snap.version()) ||
            snap.GetInt("pad.2") != snap.GetInt("n")) {
          ++local_bad;
        }
      }
      local_reads += 4;
    }
    reads += local_reads;
    bad += local_bad;
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < 8; ++id) threads.emplace_back(reader, id);
  struct StopAndJoin {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~StopAndJoin() {
      stop = true;
      for (auto& t : threads) if (t.joinable()) t.join();
    }
  } guard{stop, threads};

  const auto deadline = Clock::now() + milliseconds(1000);
  uint64_t published = 1;
  std::thread writer([&] {
    while (Clock::now() < deadline) {
      const uint64_t v = seg.writer().version() + 1;
      if (seg.Publish(config_for(v)) != v) ++bad;
      published = v;
    }
  });
  writer.join();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 1000u);
  EXPECT_GT(published, 10u);
  EXPECT_EQ(sub.GetInt("n"), static_cast<int64_t>(published));
}

}  // namespace
}  // namespace confcast
