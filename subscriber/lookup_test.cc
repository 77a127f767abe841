// lookup_test.cc - finding a value: a Key follows its value across versions,
// reports a path that disappears, and serves two segments; by-path reads
// (C++ and C ABI) follow moves and shared cache cells, compare the caller's
// buffer on every read, never read past the caller's NUL (a page guard and
// exact allocations), and never mix paths across threads; the C key handles
// (confcast_key_*).
//
// Threading: the shared-cache tests start their own threads and join them.
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

TEST(KeyLookup, KeyFollowsValueAcrossVersions) {
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Key n("group.n"), d("group.d"), flag("group.flag");
  for (int64_t i = 1; i <= 20; ++i) {
    json config = {{"group", {{"n", i * 10}, {"d", i + 0.25}, {"flag", i % 2 == 0}}}};
    // Shift the entries around so the cached place moves from version to version.
    for (int64_t k = 0; k < i % 5; ++k) config["filler_" + std::to_string(k)] = k;
    const uint64_t v = seg.Publish(config);
    for (int rep = 0; rep < 3; ++rep) {  // cold, then warm cache
      int64_t got = 0;
      uint64_t version = 0;
      ASSERT_EQ(sub.Get(n, &got, &version), CONFCAST_OK);
      EXPECT_EQ(got, i * 10);
      EXPECT_EQ(version, v);
      double dd = 0;
      ASSERT_EQ(sub.Get(d, &dd, &version), CONFCAST_OK);
      EXPECT_EQ(dd, i + 0.25);
      EXPECT_EQ(sub.GetDouble(n), static_cast<double>(i * 10));  // int read as double through a Key
      EXPECT_EQ(sub.GetBool(flag), i % 2 == 0);
    }
  }
  EXPECT_EQ(n.path(), "group.n");
  // A Key of the wrong type reports TYPE, warm or cold.
  bool b;
  EXPECT_EQ(sub.Get(n, &b), CONFCAST_ERR_TYPE);
  EXPECT_EQ(sub.Get(n, &b), CONFCAST_ERR_TYPE);
  int64_t i64;
  EXPECT_EQ(sub.Get(flag, &i64), CONFCAST_ERR_TYPE);
}

TEST(KeyLookup, KeyWhosePathDisappearsGivesNotFound) {
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Key key("feature.limit");
  seg.Publish({{"feature", {{"limit", 5}}}, {"other", 1}});
  EXPECT_EQ(sub.GetInt(key), 5);
  EXPECT_EQ(sub.GetInt(key), 5);  // warm
  uint64_t version = 0;
  int64_t value = -1;
  const uint64_t v2 = seg.Publish({{"feature", {{"other_limit", 5}}}, {"other", 1}});
  EXPECT_EQ(sub.Get(key, &value, &version), CONFCAST_ERR_NOT_FOUND);
  EXPECT_EQ(version, v2);
  EXPECT_EQ(value, -1);
  EXPECT_EQ(sub.Get(key, &value), CONFCAST_ERR_NOT_FOUND);  // twice: nothing stale was cached
  seg.Publish({{"feature", {{"limit", 9}}}});
  EXPECT_EQ(sub.GetInt(key), 9);
  seg.Publish({{"feature", "now a string"}});
  EXPECT_EQ(sub.Get(key, &value), CONFCAST_ERR_NOT_FOUND);
}

// By-path reads remember where a path was found (a small per-handle cache);
// they must follow a path that moves, disappears, changes type, and two paths
// that share a cache cell.
TEST(PathLookup, ByPathReadsFollowMovesAndSharedCacheCells) {
  // Two paths that share a cell of the handle's path cache (which is chosen
  // by a fingerprint of the path): they evict each other on every read.
  const std::string first = "p.0";
  reader::PathCache cache;
  std::string second;
  for (int i = 1; second.empty(); ++i) {
    const std::string candidate = "p." + std::to_string(i);
    if (&cache.CellFor(candidate) == &cache.CellFor(first)) second = candidate;
  }
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  for (int64_t v = 1; v <= 30; ++v) {
    json config = {{"p", json::object()}};
    for (int64_t k = 0; k < v % 6; ++k) config["filler"][std::to_string(k)] = k;  // entries move
    config["p"][first.substr(2)] = v;
    if (v % 5 != 0) config["p"][second.substr(2)] = -v;  // every fifth version it is gone
    if (v % 7 == 0) config["p"][first.substr(2)] = "a string now";
    ASSERT_EQ(seg.Publish(config), static_cast<uint64_t>(v));
    for (int rep = 0; rep < 3; ++rep) {
      int64_t got = 0;
      uint64_t version = 0;
      const int rc1 = confcast_get_int(h.get(), first.c_str(), &got, &version);
      if (v % 7 == 0) {
        EXPECT_EQ(rc1, CONFCAST_ERR_TYPE) << v;
        EXPECT_EQ(CString(h.get(), first.c_str()), "a string now");
      } else {
        EXPECT_EQ(rc1, CONFCAST_OK) << v;
        EXPECT_EQ(got, v);
      }
      EXPECT_EQ(version, static_cast<uint64_t>(v));
      // The same path through each handle (each has its own cache).
      for (int handle = 0; handle < 2; ++handle) {
        got = 0;
        const int rc2 = handle == 0 ? sub.Get(second, &got, &version)
                                    : confcast_get_int(h.get(), second.c_str(), &got, &version);
        if (v % 5 == 0) {
          EXPECT_EQ(rc2, CONFCAST_ERR_NOT_FOUND) << v;
        } else {
          EXPECT_EQ(rc2, CONFCAST_OK) << v;
          EXPECT_EQ(got, -v);
        }
      }
      if (v % 7 != 0) {
        EXPECT_EQ(sub.GetInt(first), v);
      }
      EXPECT_EQ(confcast_get_int(h.get(), "p.nope", &got, nullptr), CONFCAST_ERR_NOT_FOUND);
    }
  }
}

// A caller that reuses one buffer for many paths must always get the value
// of the path the buffer holds now (the handle's cache must not be fooled): shorter, longer, a prefix, an extension, one
// byte changed, missing, and lengths that are a whole number of words (the
// NUL then lies in the next word).
TEST(PathLookup, CAbiPathsInAReusedBufferAreComparedEveryRead) {
  const std::vector<std::string> paths = {"a",         "ab",        "abc.defg",         "abc.defgh",
                                          "abcdefg.",  "abcdefg.h", "sixteen.bytes.xx", "sixteen.bytes.xy",
                                          "sixteen.bytes.x", "a.path.that.is.longer.than.thirty.two.bytes"};
  const std::vector<std::string> missing = {"abc.def", "abc.defghi", "sixteen.bytes.xxx", "sixteen.bytes.",
                                            "a.path.that.is.longer.than.thirty.two.byte"};
  json config = json::object();
  for (size_t i = 0; i < paths.size(); ++i) config[paths[i]] = static_cast<int64_t>(100 + i);
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish(config), 1u);
  Handle h = OpenC(seg.segment());
  char buf[64];
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    const bool want_missing = rng() % 4 == 0;
    const size_t i = want_missing ? rng() % missing.size() : rng() % paths.size();
    const std::string& path = want_missing ? missing[i] : paths[i];
    std::memset(buf, 'x', sizeof(buf));  // the bytes after the NUL are never part of the path
    std::memcpy(buf, path.c_str(), path.size() + 1);
    int64_t got = -1;
    const int rc = confcast_get_int(h.get(), buf, &got, nullptr);
    if (want_missing) {
      ASSERT_EQ(rc, CONFCAST_ERR_NOT_FOUND) << "'" << path << "' round " << round;
    } else {
      ASSERT_EQ(rc, CONFCAST_OK) << "'" << path << "' round " << round;
      ASSERT_EQ(got, static_cast<int64_t>(100 + i)) << "'" << path << "' round " << round;
    }
  }
}

// A by-path read reads the caller's path up to its NUL and never beyond:
// with the NUL on a page's last byte and the next page PROT_NONE, no read
// faults, whatever the path's length, cold or warm, for every getter.
TEST(PathLookup, CAbiPathAtTheEndOfAPageNeverReadsPastIt) {
  const std::vector<std::string> paths = {"k", "key.abc", "key.abcd", "key.abcdefghijk", "key.abcdefghijkl"};
  json config = json::object();
  for (size_t i = 0; i < paths.size(); ++i) config[paths[i]] = static_cast<int64_t>(i);
  PublishedSegment seg;
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  const long page = sysconf(_SC_PAGESIZE);
  auto* area = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  ASSERT_EQ(mprotect(area + page, page, PROT_NONE), 0);  // a read past the first page faults
  for (size_t i = 0; i < paths.size(); ++i) {
    for (size_t slack = 0; slack < 10; ++slack) {  // NUL at the page's last byte, then 1..9 bytes earlier
      char* s = area + page - (paths[i].size() + 1) - slack;
      std::memcpy(s, paths[i].c_str(), paths[i].size() + 1);
      for (int rep = 0; rep < 3; ++rep) {  // the first read learns the place, the next ones use it
        int64_t got = -1;
        ASSERT_EQ(confcast_get_int(h.get(), s, &got, nullptr), CONFCAST_OK) << paths[i] << " slack " << slack;
        ASSERT_EQ(got, static_cast<int64_t>(i));
        double d = 0;
        ASSERT_EQ(confcast_get_double(h.get(), s, &d, nullptr), CONFCAST_OK);
        int b = 0;
        ASSERT_EQ(confcast_get_bool(h.get(), s, &b, nullptr), CONFCAST_ERR_TYPE);
        char buf[32];
        size_t len = 0;
        ASSERT_EQ(confcast_get_string(h.get(), s, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
        ASSERT_EQ(confcast_get_json(h.get(), s, buf, sizeof(buf), &len, nullptr), CONFCAST_OK);
        confcast_key* key = nullptr;
        ASSERT_EQ(confcast_key_new(s, &key), CONFCAST_OK);
        ASSERT_EQ(confcast_get_int_key(h.get(), key, &got, nullptr), CONFCAST_OK);
        confcast_key_free(key);
      }
    }
  }
  munmap(area, 2 * page);
}

// Two threads read different paths through one handle, whose path cache
// they share (64 paths over 64 cells: many share a cell), and each always
// gets its own path's value.
TEST(PathLookup, CAbiPathCacheSharedByThreadsNeverMixesPaths) {
  PublishedSegment seg;
  json config = json::object();
  for (int i = 0; i < 64; ++i) config["k" + std::to_string(i)] = i;
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  std::atomic<int> wrong{0};
  auto reader = [&](int parity) {
    char buf[16];
    for (int round = 0; round < 20000; ++round) {
      const int i = (round * 2 + parity) % 64;
      std::snprintf(buf, sizeof(buf), "k%d", i);
      int64_t got = -1;
      if (confcast_get_int(h.get(), buf, &got, nullptr) != CONFCAST_OK || got != i) wrong.fetch_add(1);
    }
  };
  std::thread t0(reader, 0), t1(reader, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(KeyLookup, OneKeyServesTwoSegments) {
  PublishedSegment first, second;
  // Same version numbers and the same layout in both, different values:
  // the cached place is valid in both, only the mapping differs.
  first.Publish({{"x", 1}, {"y", "a"}});
  second.Publish({{"x", 2}, {"y", "b"}});
  Subscriber a(first.segment()), b(second.segment());
  Key key("x");
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.GetInt(key), 1) << i;
    ASSERT_EQ(b.GetInt(key), 2) << i;
  }
  // Different layouts (the key lives elsewhere in the second segment).
  json shifted = {{"x", 3}};
  for (int k = 0; k < 30; ++k) shifted["a" + std::to_string(k)] = k;
  second.Publish(shifted);
  first.Publish({{"x", 4}});
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.GetInt(key), 4) << i;
    ASSERT_EQ(b.GetInt(key), 3) << i;
  }
  // A copy of a Key is a Key of the same path.
  Key copy = key;
  EXPECT_EQ(b.GetInt(copy), 3);
  Key assigned("y");
  assigned = key;
  EXPECT_EQ(a.GetInt(assigned), 4);
}

TEST(KeyHandle, ReadsWhatTheByPathGettersRead) {
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish({{"llm", {{"model", "gpt-4o"}, {"max_retries", 3}, {"temperature", 0.5}}},
                         {"on", true}, {"ratio", 2}}),
            1u);
  Handle h = OpenC(seg.segment());
  CKey model = NewKey("llm.model"), retries = NewKey("llm.max_retries"), temp = NewKey("llm.temperature"),
       on = NewKey("on"), ratio = NewKey("ratio"), missing = NewKey("llm.nope");
  for (int rep = 0; rep < 3; ++rep) {  // cold, then warm
    int64_t i = 0;
    uint64_t version = 0;
    ASSERT_EQ(confcast_get_int_key(h.get(), retries.get(), &i, &version), CONFCAST_OK);
    EXPECT_EQ(i, 3);
    EXPECT_EQ(version, 1u);
    double d = 0;
    ASSERT_EQ(confcast_get_double_key(h.get(), temp.get(), &d, nullptr), CONFCAST_OK);
    EXPECT_EQ(d, 0.5);
    ASSERT_EQ(confcast_get_double_key(h.get(), ratio.get(), &d, nullptr), CONFCAST_OK) << "an int reads as a double";
    EXPECT_EQ(d, 2.0);
    int b = -1;
    ASSERT_EQ(confcast_get_bool_key(h.get(), on.get(), &b, nullptr), CONFCAST_OK);
    EXPECT_EQ(b, 1);
    char buf[16];
    size_t len = 0;
    ASSERT_EQ(confcast_get_string_key(h.get(), model.get(), buf, sizeof(buf), &len, &version), CONFCAST_OK);
    EXPECT_EQ(std::string(buf, len), "gpt-4o");
    EXPECT_EQ(confcast_get_string_key(h.get(), model.get(), buf, 4, &len, nullptr), CONFCAST_ERR_TRUNCATED);
    EXPECT_EQ(len, 6u);
    EXPECT_STREQ(buf, "gpt");
    EXPECT_EQ(confcast_get_int_key(h.get(), model.get(), &i, nullptr), CONFCAST_ERR_TYPE);
    EXPECT_EQ(confcast_get_string_key(h.get(), retries.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
    EXPECT_EQ(confcast_get_int_key(h.get(), missing.get(), &i, nullptr), CONFCAST_ERR_NOT_FOUND);
  }
}

TEST(KeyHandle, NullArgumentsAreInvalid) {
  PublishedSegment seg;
  seg.Publish({{"x", 1}, {"s", "v"}});
  Handle h = OpenC(seg.segment());
  CKey x = NewKey("x");
  confcast_key* out = reinterpret_cast<confcast_key*>(0x1);
  EXPECT_EQ(confcast_key_new(nullptr, &out), CONFCAST_ERR_INVALID);
  EXPECT_EQ(out, nullptr) << "*out is reset on failure";
  EXPECT_EQ(confcast_key_new("x", nullptr), CONFCAST_ERR_INVALID);
  confcast_key_free(nullptr);
  int64_t i;
  double d;
  int b;
  char buf[8];
  size_t len;
  EXPECT_EQ(confcast_get_int_key(nullptr, x.get(), &i, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int_key(h.get(), nullptr, &i, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(nullptr, x.get(), &d, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(h.get(), nullptr, &d, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(nullptr, x.get(), &b, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(h.get(), nullptr, &b, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(nullptr, x.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), nullptr, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), x.get(), buf, sizeof(buf), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), x.get(), nullptr, 4, &len, nullptr), CONFCAST_ERR_INVALID);
  CKey s = NewKey("s");
  EXPECT_EQ(confcast_get_string_key(h.get(), s.get(), nullptr, 0, &len, nullptr), CONFCAST_ERR_TRUNCATED)
      << "cap 0 asks for the length only";
  EXPECT_EQ(len, 1u);
}

// One key, two subscribers (two segments, same versions, different
// layouts), four threads, republishing in between: every read is the value
// of its own segment, and the one cache word never makes a read wrong.
TEST(KeyHandle, SharedByThreadsAndByTwoSubscribers) {
  PublishedSegment first, second;
  json a = {{"k", 1}}, b = {{"k", 2}};
  for (int i = 0; i < 40; ++i) b["pad" + std::to_string(i)] = i;  // "k" lives elsewhere in the second
  ASSERT_EQ(first.Publish(a), 1u);
  ASSERT_EQ(second.Publish(b), 1u);
  Handle ha = OpenC(first.segment()), hb = OpenC(second.segment());
  CKey key = NewKey("k");
  std::atomic<int> wrong{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> published{1};
  auto reader = [&](int parity) {
    for (int round = 0; round < 50000; ++round) {
      confcast_subscriber* h = ((round + parity) & 1) ? ha.get() : hb.get();
      int64_t got = 0;
      uint64_t version = 0;
      if (confcast_get_int_key(h, key.get(), &got, &version) != CONFCAST_OK) {
        wrong.fetch_add(1);
        continue;
      }
      // The first segment holds version v's value v, the second 1000 + v (from version 2 on).
      const bool in_first = h == ha.get();
      const int64_t want = in_first ? static_cast<int64_t>(version) : (version == 1 ? 2 : 1000 + int64_t(version));
      if (got != want) wrong.fetch_add(1);
    }
  };
  std::thread writer([&] {
    for (int64_t v = 2; v <= 30 && !stop.load(); ++v) {
      a["k"] = v;
      b["k"] = 1000 + v;
      if (v % 3 == 0) b["pad" + std::to_string(v)] = "moved";
      first.Publish(a);
      second.Publish(b);
      published = v;
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) readers.emplace_back(reader, t & 1);
  for (auto& t : readers) t.join();
  stop = true;
  writer.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A key whose cached place comes from a segment of another capacity (so
// other slot bounds, other entry places) re-resolves there, and back.
TEST(KeyHandle, SegmentOfAnotherCapacityReResolves) {
  PublishedSegment small(UniqueName("small"), 4 << 10), large(UniqueName("large"), 256 << 10);
  json big = json::object();
  for (int i = 0; i < 60; ++i) big["f" + std::to_string(i)] = i;
  big["zz.target"] = 7;
  ASSERT_EQ(large.Publish(big), 1u);
  ASSERT_EQ(small.Publish({{"zz", {{"target", 8}}}}), 1u);
  Handle hs = OpenC(small.segment()), hl = OpenC(large.segment());
  CKey key = NewKey("zz.target");
  for (int rep = 0; rep < 5; ++rep) {
    int64_t got = 0;
    ASSERT_EQ(confcast_get_int_key(hl.get(), key.get(), &got, nullptr), CONFCAST_OK);
    EXPECT_EQ(got, 7);
    ASSERT_EQ(confcast_get_int_key(hs.get(), key.get(), &got, nullptr), CONFCAST_OK);
    EXPECT_EQ(got, 8);
  }
  // The C++ Key is the same machinery.
  Subscriber s(small.segment()), l(large.segment());
  Key cpp("zz.target");
  EXPECT_EQ(l.GetInt(cpp), 7);
  EXPECT_EQ(s.GetInt(cpp), 8);
  EXPECT_EQ(l.GetInt(cpp), 7);
}

// Each path in an allocation of exactly its length + 1 bytes: under
// AddressSanitizer (the core-asan build) a read of one byte past the NUL is
// a heap-buffer-overflow report, cold or warm, for every by-path getter and
// for confcast_key_new. Lengths 1..40 put the NUL at every place in a word.
TEST(PathLookup, ByPathReadsStopAtTheNulInExactAllocations) {
  json config = json::object();
  std::vector<std::string> paths;
  for (size_t n = 1; n <= 40; ++n) {
    std::string p(n, 'a');
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>('a' + (i * 7 + n) % 26);
    paths.push_back(p);
    config[p] = static_cast<int64_t>(n);
  }
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish(config), 1u);
  Handle h = OpenC(seg.segment());
  Subscriber sub(seg.segment());
  for (const std::string& p : paths) {
    std::unique_ptr<char[]> exact(new char[p.size() + 1]);
    std::memcpy(exact.get(), p.c_str(), p.size() + 1);
    for (int rep = 0; rep < 3; ++rep) {
      int64_t got = 0;
      ASSERT_EQ(confcast_get_int(h.get(), exact.get(), &got, nullptr), CONFCAST_OK) << p;
      EXPECT_EQ(got, static_cast<int64_t>(p.size()));
      double d = 0;
      EXPECT_EQ(confcast_get_double(h.get(), exact.get(), &d, nullptr), CONFCAST_OK);
      int b = 0;
      EXPECT_EQ(confcast_get_bool(h.get(), exact.get(), &b, nullptr), CONFCAST_ERR_TYPE);
      char buf[64];
      size_t len = 0;
      EXPECT_EQ(confcast_get_string(h.get(), exact.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
      EXPECT_EQ(confcast_get_json(h.get(), exact.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_OK);
      // The C++ by-path read gets exactly the bytes, no NUL at all.
      std::unique_ptr<char[]> bare(new char[p.size()]);
      std::memcpy(bare.get(), p.data(), p.size());
      EXPECT_EQ(sub.Get(std::string_view(bare.get(), p.size()), &got), CONFCAST_OK);
    }
    CKey key = NewKey(exact.get());
    int64_t got = 0;
    EXPECT_EQ(confcast_get_int_key(h.get(), key.get(), &got, nullptr), CONFCAST_OK);
  }
}

}  // namespace
}  // namespace confcast
