// segment_replacement_test.cc - a publisher restarted over a segment it
// cannot reuse: another --capacity, or a segment of another layout version.
// Old readers learn it (Wait: CONFCAST_ERR_INCOMPATIBLE, including one asleep
// in Wait in another process) and keep reading their data; new readers see
// the new segment. Until the new publisher has a good config (or if it stops
// before one), the old segment keeps serving, untouched, with nothing left
// beside it.
//
// Threading: single-threaded; forked readers only read and exit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/wait.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary

const milliseconds kTimeout(15000);

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += n + " ";
  return out;
}

class SegmentReplacement : public PublisherTest {
 protected:
  // What a worker starting now gets while a replacement is pending or was
  // abandoned: the old segment (capacity 65536), the version and data it
  // served, and no replacement under construction beside it.
  // Use as: ASSERT_NO_FATAL_FAILURE(ExpectTheOldSegmentStillServes(...)).
  void ExpectTheOldSegmentStillServes(uint64_t version, std::string_view fault_s) {
    {
      auto late = OpenWhenReady(segment_.name(), milliseconds(0));
      ASSERT_TRUE(late) << "a worker starting now finds no segment\n" << ReadFile(log_);
      EXPECT_EQ(late->slot_capacity(), 65536u);
      EXPECT_EQ(late->version(), version);
      EXPECT_EQ(late->GetString("fault.s"), fault_s);
    }
    EXPECT_TRUE(ReplacementTemporaries(segment_.name()).empty()) << Joined(ReplacementTemporaries(segment_.name()));
  }
};

TEST_F(SegmentReplacement, RestartWithAnotherCapacityRetiresTheOldSegment) {
  FirstPublisher first = StartFirst(NumberedConfig(7), kTimeout);
  ASSERT_TRUE(first.reader);
  Subscriber* old_reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_EQ(old_reader->slot_capacity(), 65536u);

  // A reader in another process, asleep in Wait on the old segment.
  ChildProcess sleeper = ChildProcess::Fork(
      [&] {
        Subscriber sub(segment_.name());
        const int rc = sub.Wait(sub.version(), 30000);
        return rc == CONFCAST_ERR_INCOMPATIBLE ? 0 : 10 - rc;
      },
      "a reader asleep in Wait");

  ASSERT_TRUE(StopCleanly(first.process, kTimeout));
  auto second =
      ChildProcess::Spawn(PublisherArgs(config_, segment_.name(), {"--capacity", "131072"}), {.output_path = log_});

  // The old reader learns that its segment was replaced, and still reads its data.
  EXPECT_EQ(old_reader->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_ERR_INCOMPATIBLE) << ReadFile(log_);
  EXPECT_EQ(old_reader->GetString("fault.s"), "n=7");
  ASSERT_TRUE(sleeper.WaitExit(kTimeout));
  EXPECT_TRUE(sleeper.exit_status()->ExitedWith(0)) << "the sleeping reader got " << sleeper.Describe();

  // A new reader sees the new segment.
  std::optional<Subscriber> fresh;
  ASSERT_TRUE(WaitUntil(
      [&] {
        fresh = OpenWhenReady(segment_.name(), milliseconds(0));
        return fresh && fresh->slot_capacity() == 131072u && fresh->version() > 0;
      },
      kTimeout))
      << ReadFile(log_);
  EXPECT_EQ(fresh->GetString("fault.s"), "n=7");
  RecordProperty("version_after_replace", static_cast<int64_t>(fresh->version()));
  RecordProperty("version_before_replace", static_cast<int64_t>(v));
  second.Signal(SIGTERM);
  ASSERT_TRUE(second.WaitExit(kTimeout));
}

// A publisher restarted with another --capacity while the config is bad: the
// old segment (and its version) must go on serving, for workers that had it
// and for workers that start now, with the rejection visible in it; the
// replacement waits for the first good config.
TEST_F(SegmentReplacement, RestartWithAnotherCapacityAndABadConfigKeepsTheOldSegmentServing) {
  FirstPublisher first = StartFirst(NumberedConfig(7), kTimeout);
  ASSERT_TRUE(first.reader);
  Subscriber* old_reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_TRUE(StopCleanly(first.process, kTimeout));

  WriteViaRename(config_, "llm:\n  model: [unclosed\n");
  auto second = ChildProcess::Spawn(
      PublisherArgs(config_, segment_.name(), {"--capacity", "131072", "--debounce-ms", "20"}), {.output_path = log_});
  // Its rejection lands in the old segment, which it now looks after.
  confcast_info info{};
  ASSERT_TRUE(WaitUntil(
      [&] {
        return old_reader->Info(&info) == CONFCAST_OK && info.publisher_pid == second.pid() &&
               info.reload_errors_total == 1;
      },
      kTimeout))
      << "the rejection never showed in the old segment\n"
      << ReadFile(log_);
  EXPECT_EQ(std::string(info.last_error).rfind(config_ + ":", 0), 0u) << info.last_error;
  EXPECT_TRUE(second.Running()) << "a publisher with an old version to serve must not exit\n" << ReadFile(log_);
  const ProcessResult status = RunCtl(segment_.name(), {"status"}, kTimeout);
  EXPECT_TRUE(status.status.ExitedWith(0)) << status.Describe();
  EXPECT_NE(status.out.find(config_ + ":"), std::string::npos) << "status does not say why:\n" << status.Describe();

  // Served as before: the old handle is not told to reopen, a new one maps the old segment.
  EXPECT_EQ(old_reader->version(), v);
  EXPECT_EQ(old_reader->Wait(v, 0), CONFCAST_ERR_TIMEOUT);
  ASSERT_NO_FATAL_FAILURE(ExpectTheOldSegmentStillServes(v, "n=7"));

  // The fixed file replaces the segment: the new capacity, the next version.
  ASSERT_TRUE(WaitUntilWatching(second.pid(), kTimeout));
  WriteViaRename(config_, NumberedConfig(8));
  EXPECT_EQ(old_reader->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_ERR_INCOMPATIBLE) << ReadFile(log_);
  EXPECT_EQ(old_reader->GetString("fault.s"), "n=7");
  std::optional<Subscriber> fresh = OpenWhenReady(segment_.name(), milliseconds(0));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->slot_capacity(), 131072u);
  EXPECT_EQ(fresh->version(), v + 1);
  EXPECT_EQ(fresh->GetString("fault.s"), "n=8");
  ASSERT_EQ(fresh->Info(&info), CONFCAST_OK);
  EXPECT_EQ(info.publisher_pid, second.pid());
  EXPECT_EQ(info.reload_total, 1u);
  EXPECT_EQ(info.reload_errors_total, 1u);
  EXPECT_TRUE(ReplacementTemporaries(segment_.name()).empty()) << Joined(ReplacementTemporaries(segment_.name()));
  EXPECT_TRUE(StopCleanly(second, kTimeout));
}

// A publisher with another --capacity that stops (SIGTERM) or dies (SIGKILL)
// before any good config leaves the old segment serving exactly what it
// served, not retired, with nothing beside it.
TEST_F(SegmentReplacement, StoppingBeforeTheReplacementLeavesTheOldSegmentIntact) {
  FirstPublisher first = StartFirst(NumberedConfig(5), kTimeout);
  const std::string on_disk = "/dev/shm/" + segment_.name();
  ASSERT_TRUE(first.reader);
  Subscriber* reader = &*first.reader;
  const uint64_t v = first.version;
  ASSERT_TRUE(StopCleanly(first.process, kTimeout));
  const std::string slots_before = ReadFile(on_disk).substr(layout::kHeaderSize);

  WriteViaRename(config_, "llm:\n  max_retries: 99\n");  // fails the schema
  for (const int sig : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(strsignal(sig));
    auto pending =
        ChildProcess::Spawn(PublisherArgs(config_, segment_.name(), {"--capacity", "131072"}), {.output_path = log_});
    confcast_info info{};
    ASSERT_TRUE(WaitUntil(
        [&] {
          return reader->Info(&info) == CONFCAST_OK && info.publisher_pid == pending.pid() &&
                 info.reload_errors_total == 1;
        },
        kTimeout))
        << ReadFile(log_);
    pending.Signal(sig);
    ASSERT_TRUE(pending.WaitExit(kTimeout));
    if (sig == SIGTERM) {
      EXPECT_EQ(pending.exit_code(), 0) << ReadFile(log_);
    }

    EXPECT_EQ(ReadFile(on_disk).substr(layout::kHeaderSize), slots_before) << "the old segment's slots changed";
    EXPECT_EQ(reader->Wait(v, 0), CONFCAST_ERR_TIMEOUT) << "the old segment was retired";
    ASSERT_NO_FATAL_FAILURE(ExpectTheOldSegmentStillServes(v, "n=5"));
  }
}

TEST_F(SegmentReplacement, SegmentOfAnotherLayoutIsRefusedByReadersAndReplacedByThePublisher) {
  WriteViaRename(config_, NumberedConfig(3));
  {
    // What a future build's publisher might have left: our magic, another layout.
    const int fd = shm_open(("/" + segment_.name()).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
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
    Subscriber sub(segment_.name());
    FAIL() << "a reader opened a segment of another layout";
  } catch (const confcast::Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_INCOMPATIBLE);
  }
  // A publisher whose first config is bad has nothing to replace it with:
  // it exits 1 and leaves the segment to the build that reads it.
  const std::string foreign = ReadFile("/dev/shm/" + segment_.name());
  WriteViaRename(config_, "llm: [\n");
  auto bad = ChildProcess::Spawn(PublisherArgs(config_, segment_.name()), {.output_path = log_});
  ASSERT_TRUE(bad.WaitExit(kTimeout));
  EXPECT_EQ(bad.exit_code(), 1) << ReadFile(log_);
  EXPECT_TRUE(ReadFile("/dev/shm/" + segment_.name()) == foreign) << "the foreign segment was removed or written";
  EXPECT_TRUE(ReplacementTemporaries(segment_.name()).empty());
  WriteViaRename(config_, NumberedConfig(3));

  auto pub = ChildProcess::Spawn(PublisherArgs(config_, segment_.name()), {.output_path = log_});
  std::optional<Subscriber> sub;
  ASSERT_TRUE(WaitUntil(
      [&] {
        sub = OpenWhenReady(segment_.name(), milliseconds(0));
        return sub && sub->version() > 0;
      },
      kTimeout))
      << ReadFile(log_);
  EXPECT_EQ(sub->GetString("fault.s"), "n=3");
  EXPECT_TRUE(StopCleanly(pub, kTimeout));
}

}  // namespace
}  // namespace confcast
