// typed_read_test.cc - reading values: every typed getter of the C ABI
// (confcast.h) and of the C++ API, which must agree; type mismatches and
// missing paths; invalid arguments; the buffer rules (length, NUL,
// CONFCAST_ERR_TRUNCATED) of strings, JSON and whole snapshots; a message for
// every status code.
//
// Threading: single-threaded.
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
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
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

TEST(TypedRead, CTypedGettersReturnValueAndVersion) {
  PublishedSegment seg;
  const uint64_t v = seg.Publish(HolmesConfig());
  ASSERT_EQ(v, 1u);
  Handle h = OpenC(seg.segment());
  ASSERT_TRUE(h);
  EXPECT_EQ(confcast_version(h.get()), 1u);

  int64_t i = 0;
  uint64_t version = 0;
  ASSERT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, &version), CONFCAST_OK);
  EXPECT_EQ(i, 3);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_int(h.get(), "numbers.min", &i, nullptr), CONFCAST_OK);  // version may be NULL
  EXPECT_EQ(i, std::numeric_limits<int64_t>::min());
  ASSERT_EQ(confcast_get_int(h.get(), "numbers.max", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, std::numeric_limits<int64_t>::max());
  ASSERT_EQ(confcast_get_int(h.get(), "a.list.0", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 10);

  double d = 0;
  version = 0;
  ASSERT_EQ(confcast_get_double(h.get(), "llm.temperature", &d, &version), CONFCAST_OK);
  EXPECT_EQ(d, 0.7);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_double(h.get(), "numbers.neg_double", &d, nullptr), CONFCAST_OK);
  EXPECT_EQ(d, -2.5);
  // An int reads as a double too.
  ASSERT_EQ(confcast_get_double(h.get(), "llm.timeout_seconds", &d, &version), CONFCAST_OK);
  EXPECT_EQ(d, 60.0);
  ASSERT_EQ(confcast_get_double(h.get(), "numbers.big", &d, nullptr), CONFCAST_OK);
  EXPECT_EQ(d, static_cast<double>(int64_t{9007199254740993}));

  int b = -1;
  version = 0;
  ASSERT_EQ(confcast_get_bool(h.get(), "toolsets.kubernetes/core.enabled", &b, &version), CONFCAST_OK);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_bool(h.get(), "toolsets.prometheus/metrics.enabled", &b, nullptr), CONFCAST_OK);
  EXPECT_EQ(b, 0);
  ASSERT_EQ(confcast_get_bool(h.get(), "a.list.2.x", &b, nullptr), CONFCAST_OK);
  EXPECT_EQ(b, 1);

  int rc = 0;
  version = 0;
  EXPECT_EQ(CString(h.get(), "llm.model", &rc, &version), "gpt-4o");
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(CString(h.get(), "text.empty", &rc), "");
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(CString(h.get(), "text.unicode", &rc), "caf\xC3\xA9 \xE8\xA8\xAD\xE5\xAE\x9A \xF0\x9F\x9A\x80");
  EXPECT_EQ(CString(h.get(), "a.list.1", &rc), "two");

  version = 0;
  EXPECT_EQ(CJson(h.get(), "toolsets", &version), HolmesConfig()["toolsets"].dump());
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(CJson(h.get(), "llm.endpoint"), "null");
  EXPECT_EQ(CJson(h.get(), "llm.model"), "\"gpt-4o\"");
  EXPECT_EQ(CJson(h.get(), "a.empty_list"), "[]");
  EXPECT_EQ(CJson(h.get(), "a.empty_map"), "{}");
  EXPECT_EQ(CJson(h.get(), ""), HolmesConfig().dump());

  version = 0;
  const std::string whole = CSnapshot(h.get(), &version);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(json::parse(whole), HolmesConfig());
  EXPECT_EQ(whole, HolmesConfig().dump());
}

TEST(TypedRead, CppGettersMatchTheCAbi) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Subscriber sub(seg.segment());
  EXPECT_EQ(sub.version(), 1u);
  EXPECT_EQ(sub.GetInt("llm.max_retries"), 3);
  EXPECT_EQ(sub.GetDouble("llm.temperature"), 0.7);
  EXPECT_EQ(sub.GetDouble("llm.timeout_seconds"), 60.0);
  EXPECT_TRUE(sub.GetBool("toolsets.kubernetes/core.enabled"));
  EXPECT_EQ(sub.GetString("llm.model"), "gpt-4o");
  EXPECT_EQ(sub.GetString("text.empty"), "");
  EXPECT_EQ(sub.GetJson("toolsets"), HolmesConfig()["toolsets"].dump());
  EXPECT_EQ(sub.GetJson(""), HolmesConfig().dump());
  // A long string outgrows GrowRead's first buffer.
  json big = HolmesConfig();
  big["text"]["long"] = std::string(5000, 'x');
  seg.Publish(big);
  EXPECT_EQ(sub.GetString("text.long"), std::string(5000, 'x'));

  int64_t i = 0;
  uint64_t version = 0;
  EXPECT_EQ(sub.Get("llm.max_retries", &i, &version), CONFCAST_OK);
  EXPECT_EQ(version, 2u);
  double d = 0;
  EXPECT_EQ(sub.Get("llm.max_retries", &d), CONFCAST_OK);
  EXPECT_EQ(d, 3.0);
  bool b = true;
  EXPECT_EQ(sub.Get("toolsets.prometheus/metrics.enabled", &b), CONFCAST_OK);
  EXPECT_FALSE(b);

  try {
    sub.GetInt("llm.model");
    ADD_FAILURE() << "GetInt on a string must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_TYPE);
    EXPECT_NE(std::string(e.what()).find("llm.model"), std::string::npos) << e.what();
  }
  try {
    sub.GetString("llm.nope");
    ADD_FAILURE() << "GetString on a missing path must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NOT_FOUND);
  }
}

TEST(TypedRead, TypeMismatchesAndMissingPaths) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Handle h = OpenC(seg.segment());
  int64_t i = 77;
  double d = 7.5;
  int b = 7;
  char buf[64] = "untouched";
  size_t len = 0;

  EXPECT_EQ(confcast_get_int(h.get(), "llm.model", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "llm.temperature", &i, nullptr), CONFCAST_ERR_TYPE);  // no silent truncation
  EXPECT_EQ(confcast_get_int(h.get(), "llm", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "a.list", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "llm.endpoint", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "toolsets.kubernetes/core.enabled", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(i, 77) << "a failed getter leaves *out alone";
  EXPECT_EQ(confcast_get_double(h.get(), "llm.model", &d, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_double(h.get(), "toolsets.kubernetes/core.enabled", &d, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(d, 7.5);
  EXPECT_EQ(confcast_get_bool(h.get(), "llm.max_retries", &b, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_bool(h.get(), "llm.model", &b, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(b, 7);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.max_retries", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.endpoint", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_string(h.get(), "toolsets", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_STREQ(buf, "untouched");

  for (const char* missing : {"llm.modell", "llm.model.x", "nope", "llm.", ".llm", "a.list.3", "a.list.-1",
                              "toolsets.kubernetes", "LLM.model", "llm..model"}) {
    uint64_t version = 0;
    EXPECT_EQ(confcast_get_int(h.get(), missing, &i, &version), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_double(h.get(), missing, &d, nullptr), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_bool(h.get(), missing, &b, nullptr), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_string(h.get(), missing, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_NOT_FOUND)
        << missing;
    EXPECT_EQ(confcast_get_json(h.get(), missing, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_NOT_FOUND)
        << missing;
  }
  // A path longer than any the format can hold is simply not there.
  const std::string huge(snapshot::kMaxPathBytes + 10, 'a');
  EXPECT_EQ(confcast_get_int(h.get(), huge.c_str(), &i, nullptr), CONFCAST_ERR_NOT_FOUND);
}

TEST(TypedRead, InvalidArguments) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Handle h = OpenC(seg.segment());
  confcast_subscriber* s = h.get();
  int64_t i;
  double d;
  int b;
  char buf[16];
  size_t len;
  uint64_t v;
  confcast_info info;

  EXPECT_EQ(confcast_get_int(nullptr, "llm.max_retries", &i, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int(s, nullptr, &i, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int(s, "llm.max_retries", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(nullptr, "llm.temperature", &d, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(s, nullptr, &d, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(s, "llm.temperature", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(nullptr, "a.list.2.x", &b, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(s, nullptr, &b, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(s, "a.list.2.x", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(nullptr, "llm.model", buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, "llm.model", buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, "llm.model", nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(nullptr, "llm", buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, "llm", buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, "llm", nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(s, buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(s, nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_wait(nullptr, 0, 0, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_info_get(nullptr, &info), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_info_get(s, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_version(nullptr), 0u);
  confcast_close(nullptr);  // ignored
}

using BufferGetter = std::function<int(char* buf, size_t cap, size_t* len)>;

void ExpectBufferRules(const BufferGetter& get, const std::string& value) {
  SCOPED_TRACE("value '" + value + "'");
  const size_t n = value.size();
  ASSERT_GE(n, 3u);
  std::vector<char> buf(n + 16, 'X');
  size_t len = 12345;

  // cap 0, buf NULL: only the length.
  EXPECT_EQ(get(nullptr, 0, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  // cap 0 with a buffer: nothing written.
  len = 0;
  EXPECT_EQ(get(buf.data(), 0, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[0], 'X');
  // cap 1: just the NUL.
  EXPECT_EQ(get(buf.data(), 1, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[0], '\0');
  EXPECT_EQ(buf[1], 'X');
  // cap 3: two bytes and a NUL.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), 3, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(std::string(buf.data(), 2), value.substr(0, 2));
  EXPECT_EQ(buf[2], '\0');
  EXPECT_EQ(buf[3], 'X');
  // cap len-1: still truncated.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n - 1, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(std::string(buf.data(), n - 2), value.substr(0, n - 2));
  EXPECT_EQ(buf[n - 2], '\0');
  EXPECT_EQ(buf[n - 1], 'X');
  // cap == len: every byte fits, no room for the NUL, and none is written.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n, &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_EQ(std::string(buf.data(), n), value);
  EXPECT_EQ(buf[n], 'X') << "must not write past cap";
  // cap == len + 1: the value and its NUL.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n + 1, &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_STREQ(buf.data(), value.c_str());
  EXPECT_EQ(buf[n + 1], 'X');
  // A roomy buffer: the NUL right after, nothing beyond touched.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), buf.size(), &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[n], '\0');
  EXPECT_EQ(buf[n + 1], 'X');
}

TEST(TypedRead, TruncationRulesForStringsJsonAndSnapshot) {
  PublishedSegment seg;
  const json config = {{"s", "hello world, a value of some length"}, {"m", {{"k", "v"}, {"n", 1}}}, {"e", ""}};
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  confcast_subscriber* s = h.get();
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_string(s, "s", b, c, l, nullptr); },
                    config["s"].get<std::string>());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_json(s, "m", b, c, l, nullptr); },
                    config["m"].dump());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_json(s, "", b, c, l, nullptr); },
                    config.dump());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_snapshot_json(s, b, c, l, nullptr); },
                    config.dump());
  // The C++ raw-buffer getters follow the same rules.
  Subscriber sub(seg.segment());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return sub.GetString("s", b, c, l); },
                    config["s"].get<std::string>());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return sub.SnapshotJson(b, c, l); }, config.dump());

  // An empty string fits any buffer, even cap 0 with no buffer at all.
  size_t len = 99;
  EXPECT_EQ(confcast_get_string(s, "e", nullptr, 0, &len, nullptr), CONFCAST_OK);
  EXPECT_EQ(len, 0u);
  char one[2] = {'X', 'X'};
  EXPECT_EQ(confcast_get_string(s, "e", one, 1, &len, nullptr), CONFCAST_OK);
  EXPECT_EQ(one[0], '\0');
  EXPECT_EQ(one[1], 'X');
  // A truncated read still reports the version it read.
  uint64_t version = 0;
  char small[4];
  EXPECT_EQ(confcast_get_string(s, "s", small, sizeof(small), &len, &version), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(version, 1u);
}

TEST(StatusCodes, StrerrorCoversEveryCode) {
  const int codes[] = {CONFCAST_OK,          CONFCAST_ERR_NO_SEGMENT, CONFCAST_ERR_INCOMPATIBLE,
                       CONFCAST_ERR_CORRUPT, CONFCAST_ERR_EMPTY,      CONFCAST_ERR_NOT_FOUND,
                       CONFCAST_ERR_TYPE,    CONFCAST_ERR_TRUNCATED,  CONFCAST_ERR_INVALID,
                       CONFCAST_ERR_PERMISSION, CONFCAST_ERR_TIMEOUT, CONFCAST_ERR_SYSTEM};
  std::set<std::string> messages;
  const std::string unknown = confcast_strerror(-12345);
  for (int code : codes) {
    const char* m = confcast_strerror(code);
    ASSERT_NE(m, nullptr) << code;
    EXPECT_GT(std::strlen(m), 1u) << code;
    EXPECT_NE(std::string(m), unknown) << code;
    messages.insert(m);
    EXPECT_EQ(Error(code, "").what(), std::string(m));
  }
  EXPECT_EQ(messages.size(), std::size(codes)) << "two codes share a message";
  for (int other : {1, -12, -99, 42, INT_MIN, INT_MAX}) {
    ASSERT_NE(confcast_strerror(other), nullptr);
    EXPECT_EQ(std::string(confcast_strerror(other)), unknown) << other;
  }
  EXPECT_NE(std::string(confcast_strerror(CONFCAST_ERR_NOT_FOUND)).find("path"), std::string::npos);
}

}  // namespace
}  // namespace confcast
