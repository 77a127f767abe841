// restart_test.cc - an open handle across publisher restarts: a restart that
// adopts the segment is invisible; a replaced segment keeps the last version
// for the old handle, whose Wait says CONFCAST_ERR_INCOMPATIBLE, also when the
// name moves to another segment without the old one being marked retired.
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
#include <future>
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

TEST(OpenHandleAcrossRestarts, PublisherRestartIsInvisibleToOpenHandles) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  Key key("n");
  EXPECT_EQ(sub.GetInt(key), 1);
  seg.CloseWriter();
  EXPECT_EQ(sub.GetInt(key), 1);  // the last version stays readable with no publisher
  seg.OpenWriter();
  EXPECT_TRUE(seg.writer().adopted());
  const uint64_t v = seg.Publish({{"n", 2}});
  EXPECT_EQ(v, 2u) << "a restarted publisher continues the version numbers";
  EXPECT_EQ(sub.GetInt(key), 2);
  int64_t i = 0;
  uint64_t version = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &i, &version), CONFCAST_OK);
  EXPECT_EQ(i, 2);
  EXPECT_EQ(version, 2u);
}

TEST(OpenHandleAcrossRestarts, ReplacedSegmentKeepsLastVersionAndWaitSaysIncompatible) {
  PublishedSegment seg(UniqueName("replaced"), 64 << 10);
  seg.Publish({{"n", 1}});
  Handle h = OpenC(seg.segment());
  seg.CloseWriter();
  seg.OpenWriter(128 << 10);  // another capacity: replaced at the first publish, not before
  EXPECT_FALSE(seg.writer().adopted());
  uint64_t seen = 0;
  EXPECT_EQ(confcast_wait(h.get(), 1, 0, &seen), CONFCAST_ERR_TIMEOUT) << "nothing replaced yet";
  EXPECT_EQ(seg.Publish({{"n", 5}}), 2u) << "versions continue across the replacement";
  EXPECT_EQ(confcast_wait(h.get(), 1, 2000, &seen), CONFCAST_ERR_INCOMPATIBLE);
  int64_t i = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 1) << "the old handle keeps the last version it could read";
  // A fresh handle follows the new segment.
  Handle fresh = OpenC(seg.segment());
  EXPECT_EQ(confcast_get_int(fresh.get(), "n", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 5);
}

// A segment whose name was taken over by another file without the old one
// being marked retired (a publisher killed between its rename and the mark,
// or the segment deleted and created again): waiters learn it within about
// a second, whether they wait with a timeout or forever.
TEST(OpenHandleAcrossRestarts, WaitSaysIncompatibleWhenTheNameMovesToAnotherSegment) {
  PublishedSegment old_segment(UniqueName("moved"));
  old_segment.Publish({{"n", 1}});
  Handle h = OpenC(old_segment.segment());
  Subscriber sub(old_segment.segment());
  uint64_t seen = 0;
  EXPECT_EQ(confcast_wait(h.get(), 1, 0, &seen), CONFCAST_ERR_TIMEOUT);
  // Long timeouts rather than -1, so that a failure here ends the test
  // instead of hanging it; -1 takes the same sliced sleep.
  auto cxx = std::async(std::launch::async, [&] { return sub.Wait(1, 60000); });
  auto c = std::async(std::launch::async, [&] { return confcast_wait(h.get(), 1, 60000, nullptr); });
  // The old publisher is gone (its lock free), its segment deleted, and a
  // new one created under the same name.
  old_segment.CloseWriter();
  ASSERT_EQ(shm_unlink(("/" + old_segment.segment()).c_str()), 0);
  PublishedSegment successor(old_segment.segment());  // destroyed first: it removes the name
  successor.Publish({{"n", 2}});
  ASSERT_EQ(cxx.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "Subscriber::Wait never noticed";
  ASSERT_EQ(c.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "confcast_wait never noticed";
  EXPECT_EQ(cxx.get(), CONFCAST_ERR_INCOMPATIBLE);
  EXPECT_EQ(c.get(), CONFCAST_ERR_INCOMPATIBLE);
  int64_t n = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &n, nullptr), CONFCAST_OK);
  EXPECT_EQ(n, 1) << "the old handle keeps reading what it mapped";
  EXPECT_EQ(Subscriber(successor.segment()).GetInt("n"), 2);
}

}  // namespace
}  // namespace confcast
