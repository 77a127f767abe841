// snapshot_test.cc - Pin: a pinned snapshot is a private copy of one version,
// which keeps its values and SHA-256 while newer versions are published.
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
#include "../tests/support/digest.hpp"
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

TEST(PinnedSnapshot, PinnedSnapshotKeepsItsVersion) {
  PublishedSegment seg;
  const json v1 = {{"n", 1}, {"s", "one"}, {"d", 1.5}, {"b", true}, {"m", {{"k", "v1"}}}};
  const int64_t published_at = 1700000000123456789;
  seg.Publish(v1, published_at);
  Subscriber sub(seg.segment());
  const Snapshot snap = sub.Pin();
  EXPECT_EQ(snap.version(), 1u);
  EXPECT_EQ(snap.published_unix_ns(), published_at);
  EXPECT_EQ(snap.sha256_hex(), Hex(Sha256(v1.dump())));

  for (int i = 2; i <= 10; ++i) {
    seg.Publish({{"n", i}, {"s", "later"}, {"d", i + 0.5}, {"b", false}, {"m", {{"k", "vN"}}}});
  }
  EXPECT_EQ(sub.GetInt("n"), 10);
  EXPECT_EQ(snap.version(), 1u);
  EXPECT_EQ(snap.GetInt("n"), 1);
  EXPECT_EQ(snap.GetString("s"), "one");
  EXPECT_EQ(snap.GetDouble("d"), 1.5);
  EXPECT_EQ(snap.GetDouble("n"), 1.0);
  EXPECT_TRUE(snap.GetBool("b"));
  EXPECT_EQ(snap.Json(), v1.dump());
  std::string_view sub_json;
  EXPECT_EQ(snap.GetJson("m", &sub_json), CONFCAST_OK);
  EXPECT_EQ(sub_json, R"({"k":"v1"})");
  EXPECT_EQ(snap.TypeOf("m"), snapshot::Type::kMap);
  EXPECT_EQ(snap.TypeOf("nope"), std::nullopt);
  int64_t i;
  EXPECT_EQ(snap.Get("s", &i), CONFCAST_ERR_TYPE);
  EXPECT_EQ(snap.Get("nope", &i), CONFCAST_ERR_NOT_FOUND);

  // The pinned copy outlives the subscriber and the segment.
  std::string_view kept = snap.GetString("s");
  const Snapshot copy = snap;
  {
    Subscriber gone = std::move(sub);
  }
  seg.CloseWriter();
  EXPECT_EQ(kept, "one");
  EXPECT_EQ(copy.GetInt("n"), 1);

  const Snapshot empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.Get("n", &i), CONFCAST_ERR_EMPTY);
}

}  // namespace
}  // namespace confcast
