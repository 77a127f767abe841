// info_test.cc - what a reader learns about the publisher: pid, heartbeat,
// counters, the last error, the SHA-256 (confcast_info and Subscriber::Info),
// and a heartbeat age measured on CLOCK_MONOTONIC, which wall-clock steps do
// not change.
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

TEST(PublisherInfo, InfoReportsThePublishersState) {
  PublishedSegment seg;
  Handle h = OpenC(seg.segment());
  Subscriber sub(seg.segment());
  confcast_info info;
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.publisher_pid, getpid());
  EXPECT_GT(info.heartbeat_unix_ns, 0);
  EXPECT_EQ(info.version, 0u);
  EXPECT_EQ(info.reload_total, 0u);
  EXPECT_STREQ(info.last_error, "");

  const int64_t published_at = 1700000000000000001;
  const uint64_t v = seg.Publish(HolmesConfig(), published_at);
  const int64_t beat = 1700000000999000000;
  seg.writer().Heartbeat(beat);
  layout::Stats& stats = seg.writer().stats();
  stats.reload_total = 7;
  stats.reload_errors_total = 3;
  stats.errors_by_reason[layout::kReasonParse] = 2;
  stats.errors_by_reason[layout::kReasonValidate] = 1;
  const std::string error = "/etc/holmesgpt/config.yaml:3:5: validate: llm.max_retries: expected 0 to 10, got 99";
  std::memcpy(stats.last_error, error.data(), error.size());
  stats.last_error_len = static_cast<uint32_t>(error.size());
  seg.writer().WriteStats();

  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.version, v);
  EXPECT_EQ(info.published_unix_ns, published_at);
  EXPECT_EQ(info.heartbeat_unix_ns, beat);
  EXPECT_EQ(info.publisher_pid, getpid());
  EXPECT_EQ(info.reload_total, 7u);
  EXPECT_EQ(info.reload_errors_total, 3u);
  EXPECT_EQ(std::string(info.sha256_hex), Hex(Sha256(HolmesConfig().dump())));
  EXPECT_EQ(std::strlen(info.sha256_hex), 64u);
  EXPECT_EQ(std::string(info.last_error), error);

  uint64_t by_reason[layout::kReasonCount];
  ASSERT_EQ(sub.ErrorsByReason(by_reason), CONFCAST_OK);
  EXPECT_EQ(by_reason[layout::kReasonIo], 0u);
  EXPECT_EQ(by_reason[layout::kReasonTooLarge], 0u);
  EXPECT_EQ(by_reason[layout::kReasonParse], 2u);
  EXPECT_EQ(by_reason[layout::kReasonValidate], 1u);

  // The longest last error fits with its NUL; a bogus length is clamped.
  std::memset(stats.last_error, 'e', sizeof(stats.last_error));
  stats.last_error_len = 100000;
  seg.writer().WriteStats();
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(std::strlen(info.last_error), sizeof(info.last_error) - 1);
}

// The heartbeat's age is measured on CLOCK_MONOTONIC: a wall clock stepped
// an hour ahead since the last beat (NTP catching up, an admin's `date`)
// must not make a live publisher look dead to readiness probes, nor one
// stepped back make a dead one look alive.
TEST(PublisherInfo, HeartbeatAgeIgnoresWallClockSteps) {
  PublishedSegment seg;
  seg.Publish(json{{"n", 1}});
  Subscriber sub(seg.segment());
  constexpr int64_t kHour = int64_t{3600} * 1000000000;
  seg.writer().Heartbeat(publisher::RealtimeNs() - kHour);
  EXPECT_GE(sub.HeartbeatAgeNs(), 0);
  EXPECT_LT(sub.HeartbeatAgeNs(), int64_t{5} * 1000000000);
  confcast_info info{};
  ASSERT_EQ(sub.Info(&info), CONFCAST_OK);
  EXPECT_LT(info.heartbeat_unix_ns, publisher::RealtimeNs() - kHour / 2) << "the wall-clock time is kept for display";
  seg.writer().Heartbeat(publisher::RealtimeNs() + kHour);
  EXPECT_LT(sub.HeartbeatAgeNs(), int64_t{5} * 1000000000);
}

}  // namespace
}  // namespace confcast
