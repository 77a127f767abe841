// Tests of SegmentWriter across restarts: adoption, and the replacement of a
// segment of another shape (another --capacity, another layout), which waits
// for the first publish so that a bad first config never costs the workers
// the version they were reading.
//
// Single-threaded; each test uses its own POSIX shm segment and removes it,
// and any temporary of it, at the end.
#include "segment_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "../tests/support/in_process_segment.hpp"
#include "../tests/support/scratch.hpp"
#include "../tests/support/segment_guard.hpp"
#include "confcast/subscriber.hpp"

namespace confcast::publisher {
namespace {

class SegmentWriterVersions : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& t : Temporaries()) ::unlink(("/dev/shm/" + t).c_str());
  }

  std::unique_ptr<SegmentWriter> OpenWriter(uint64_t capacity) {
    try {
      return test_support::OpenSegmentWriter(name_, capacity);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot open: " << e.what();
      return nullptr;
    }
  }

  static uint64_t PublishOne(SegmentWriter& writer, uint64_t word) {
    const std::vector<uint64_t> words{word, word + 1};
    std::array<unsigned char, 32> sha{};
    sha[0] = static_cast<unsigned char>(word);
    return writer.Publish(words.data(), words.size(), sha, RealtimeNs());
  }

  // A real snapshot {"n": n}, for tests that read it back with a Subscriber.
  static uint64_t PublishN(SegmentWriter& writer, int64_t n) {
    const std::vector<uint64_t> words = test_support::SnapshotWords(nlohmann::json{{"n", n}});
    std::array<unsigned char, 32> sha{};
    sha[0] = static_cast<unsigned char>(n);
    return writer.Publish(words.data(), words.size(), sha, RealtimeNs());
  }

  // Names in /dev/shm that a replacement of this segment builds under.
  std::vector<std::string> Temporaries() const { return test_support::ReplacementTemporaries(name_); }

  std::string Bytes() const { return test_support::ReadFile(test_support::SegmentFile(name_)); }

  const std::string name_ = "confcast-segment-writer-test-" + std::to_string(getpid()) + "-" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const test_support::SegmentGuard segment_{name_};
};

// What a pending replacement may change in the old segment: the liveness
// line and the stats (this publisher's, for `confcastctl status`). Everything
// else (identity, version, active slot, futex, retired flag, the slots) must
// stay as the last publisher left it.
void ExpectServingBytesUnchanged(const std::string& before, const std::string& after) {
  ASSERT_EQ(before.size(), after.size());
  ASSERT_GE(before.size(), size_t{layout::kHeaderSize});
  const size_t live_begin = offsetof(layout::SegmentHeader, publisher_pid);
  const size_t live_end = offsetof(layout::SegmentHeader, retired);
  const size_t mono_beat = offsetof(layout::SegmentHeader, heartbeat_mono_ns);
  const size_t stats = offsetof(layout::SegmentHeader, stats_seq);
  EXPECT_EQ(before.substr(0, live_begin), after.substr(0, live_begin));
  EXPECT_EQ(before.substr(live_end, mono_beat - live_end), after.substr(live_end, mono_beat - live_end));
  EXPECT_EQ(before.substr(mono_beat + 8, stats - mono_beat - 8), after.substr(mono_beat + 8, stats - mono_beat - 8));
  EXPECT_TRUE(before.compare(layout::kHeaderSize, std::string::npos, after, layout::kHeaderSize,
                             std::string::npos) == 0)
      << "the slots of the old segment changed";
}

TEST_F(SegmentWriterVersions, AnotherCapacityIsReplacedOnlyByTheFirstPublish) {
  auto first = OpenWriter(64 << 10);
  ASSERT_TRUE(first);
  for (int64_t v = 1; v <= 3; ++v) ASSERT_EQ(PublishN(*first, v), static_cast<uint64_t>(v));
  Subscriber old_reader(name_);  // a worker that had it mapped all along
  first.reset();
  const std::string before = Bytes();

  auto writer = OpenWriter(128 << 10);
  ASSERT_TRUE(writer);
  EXPECT_TRUE(writer->replacement_pending());
  EXPECT_FALSE(writer->adopted()) << "another capacity must not be adopted";
  EXPECT_EQ(writer->capacity(), uint64_t{128 << 10}) << "a snapshot must fit the new capacity";
  EXPECT_EQ(writer->version(), 3u) << "the old segment's version is what is served";

  // A rejection meanwhile: visible in the old segment, which serves on.
  std::strcpy(writer->stats().last_error, "config.yaml:1:1: not YAML");
  writer->stats().last_error_len = 25;
  writer->stats().reload_errors_total = 1;
  writer->WriteStats();
  writer->Heartbeat(RealtimeNs());
  writer->RemoveIfCreatedAndEmpty();  // what a failed start runs: must not touch the old segment
  ExpectServingBytesUnchanged(before, Bytes());
  Subscriber late_reader(name_);  // a worker starting now
  EXPECT_EQ(late_reader.slot_capacity(), uint64_t{64 << 10});
  EXPECT_EQ(late_reader.version(), 3u);
  EXPECT_EQ(late_reader.GetInt("n"), 3);
  confcast_info info{};
  ASSERT_EQ(late_reader.Info(&info), CONFCAST_OK);
  EXPECT_STREQ(info.last_error, "config.yaml:1:1: not YAML");
  EXPECT_EQ(info.publisher_pid, getpid());
  EXPECT_EQ(old_reader.Wait(3, 0), CONFCAST_ERR_TIMEOUT) << "not retired while nothing replaces it";
  EXPECT_TRUE(Temporaries().empty());

  // The first good snapshot replaces it, continuing the numbering.
  EXPECT_EQ(PublishN(*writer, 40), 4u);
  EXPECT_FALSE(writer->replacement_pending());
  EXPECT_EQ(writer->version(), 4u);
  EXPECT_EQ(old_reader.Wait(3, 5000), CONFCAST_ERR_INCOMPATIBLE);
  EXPECT_EQ(late_reader.Wait(3, 5000), CONFCAST_ERR_INCOMPATIBLE);
  EXPECT_EQ(old_reader.GetInt("n"), 3) << "an old handle keeps the last version it had";
  Subscriber fresh(name_);
  EXPECT_EQ(fresh.slot_capacity(), uint64_t{128 << 10});
  EXPECT_EQ(fresh.version(), 4u);
  EXPECT_EQ(fresh.GetInt("n"), 40);
  ASSERT_EQ(fresh.Info(&info), CONFCAST_OK);
  EXPECT_EQ(info.reload_errors_total, 1u) << "the counters of the pending time move to the new segment";
  EXPECT_STREQ(info.last_error, "config.yaml:1:1: not YAML");
  EXPECT_TRUE(Temporaries().empty());
  EXPECT_EQ(PublishN(*writer, 50), 5u);
  EXPECT_EQ(fresh.Wait(4, 5000), CONFCAST_OK);
  EXPECT_EQ(fresh.GetInt("n"), 50);
}

// While the replacement is pending the writer holds the old segment's lock:
// a publisher of either shape is refused.
TEST_F(SegmentWriterVersions, APendingReplacementHoldsTheOnePublisherLock) {
  { ASSERT_TRUE(OpenWriter(64 << 10)); }
  auto writer = OpenWriter(128 << 10);
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->replacement_pending());
  for (uint64_t capacity : {uint64_t{64 << 10}, uint64_t{128 << 10}}) {
    auto second = SegmentWriter::Open({name_, capacity, 0600});
    ASSERT_TRUE(std::holds_alternative<SegmentWriter::Failure>(second)) << capacity;
    EXPECT_EQ(std::get<SegmentWriter::Failure>(second).kind, SegmentWriter::OpenError::kBusy);
  }
}

// A replacement dropped before any publish (a publisher stopped while its
// config is bad) leaves the old segment as it was, and the numbering goes
// on from it in a later replacement.
TEST_F(SegmentWriterVersions, AReplacementThatNeverPublishedLeavesTheOldSegment) {
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    for (int64_t v = 1; v <= 7; ++v) PublishN(*writer, v);
  }
  const std::string before = Bytes();
  for (int i = 0; i < 2; ++i) {
    auto pending = OpenWriter(128 << 10);
    ASSERT_TRUE(pending);
    EXPECT_TRUE(pending->replacement_pending());
    EXPECT_EQ(pending->version(), 7u);
  }
  ExpectServingBytesUnchanged(before, Bytes());
  EXPECT_TRUE(Temporaries().empty());
  {
    Subscriber reader(name_);
    EXPECT_EQ(reader.slot_capacity(), uint64_t{64 << 10});
    EXPECT_EQ(reader.GetInt("n"), 7);
  }
  {
    auto same = OpenWriter(64 << 10);  // the old shape again: adopted as it was
    ASSERT_TRUE(same);
    EXPECT_TRUE(same->adopted());
    EXPECT_EQ(same->version(), 7u);
  }
  auto writer = OpenWriter(256 << 10);
  ASSERT_TRUE(writer);
  EXPECT_EQ(PublishOne(*writer, 1), 8u);
  auto adopter = (writer.reset(), OpenWriter(256 << 10));
  ASSERT_TRUE(adopter);
  EXPECT_TRUE(adopter->adopted());
  EXPECT_EQ(PublishOne(*adopter, 2), 9u);
}

// A segment of another layout: never written while pending (its words mean
// nothing to this build), never removed by a failed start, replaced by the
// first publish.
TEST_F(SegmentWriterVersions, AForeignLayoutIsLeftUntouchedUntilTheFirstPublish) {
  std::string foreign(layout::SegmentSize(4096), '\0');
  {
    layout::SegmentHeader h{};
    h.magic = layout::kMagic;
    h.layout_version = layout::kLayoutVersion + 1;
    h.layout_signature = layout::Signature() ^ 1;
    h.version = 12;
    std::memcpy(foreign.data(), &h, sizeof h);
    for (size_t i = sizeof h; i < foreign.size(); ++i) foreign[i] = static_cast<char>(i * 7);
    const int fd = shm_open(("/" + name_).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, foreign.data(), foreign.size()), static_cast<ssize_t>(foreign.size()));
    close(fd);
  }
  auto writer = OpenWriter(64 << 10);
  ASSERT_TRUE(writer);
  EXPECT_TRUE(writer->replacement_pending());
  EXPECT_EQ(writer->version(), 0u) << "another layout's version word means nothing here";
  writer->stats().reload_errors_total = 1;
  writer->WriteStats();
  writer->Heartbeat(RealtimeNs());
  writer->RemoveIfCreatedAndEmpty();
  EXPECT_TRUE(Bytes() == foreign) << "a segment of another layout was written";
  EXPECT_EQ(PublishN(*writer, 1), 1u);
  Subscriber reader(name_);
  EXPECT_EQ(reader.GetInt("n"), 1);
  EXPECT_EQ(reader.slot_capacity(), uint64_t{64 << 10});
  EXPECT_TRUE(Temporaries().empty());
}

// A replacement that cannot be built (here: a file size limit below the new
// segment's size) fails the publish, leaves no temporary, and keeps the old
// segment serving and the replacement pending, to succeed later.
TEST_F(SegmentWriterVersions, AReplacementThatCannotBeBuiltKeepsTheOldSegment) {
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    PublishN(*writer, 1);
    PublishN(*writer, 2);
  }
  const std::string before = Bytes();
  auto writer = OpenWriter(1 << 20);
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->replacement_pending());
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore {}, saved_action {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &ignore, &saved_action);
  rlimit small = saved;
  small.rlim_cur = 256 << 10;  // above the old segment, below the new one
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    PublishN(*writer, 3);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &saved_action, nullptr);
  EXPECT_NE(message.find("cannot replace segment /dev/shm/" + name_), std::string::npos) << message;
  EXPECT_TRUE(writer->replacement_pending());
  EXPECT_EQ(writer->version(), 2u);
  EXPECT_TRUE(Temporaries().empty()) << "a failed replacement left its temporary";
  ExpectServingBytesUnchanged(before, Bytes());
  {
    Subscriber reader(name_);
    EXPECT_EQ(reader.GetInt("n"), 2);
  }
  EXPECT_EQ(PublishN(*writer, 3), 3u);
  Subscriber reader(name_);
  EXPECT_EQ(reader.slot_capacity(), uint64_t{1 << 20});
  EXPECT_EQ(reader.GetInt("n"), 3);
}

// What a publisher SIGKILLed in the middle of a replacement leaves (a
// temporary of its own user's) is removed by the next publisher of the
// segment; a file of that name that another user made is never touched.
TEST_F(SegmentWriterVersions, TheNextPublisherRemovesStaleTemporaries) {
  { ASSERT_TRUE(OpenWriter(64 << 10)); }
  const std::string stale = "/dev/shm/" + name_ + ".confcast-new-" + std::to_string(1u << 22);
  const std::string foreign = "/dev/shm/" + name_ + ".confcast-new-" + std::to_string((1u << 22) + 1);
  const std::string unrelated = "/dev/shm/" + name_ + ".confcast-new-x1";
  for (const std::string& p : {stale, foreign, unrelated}) {
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << p;
    ASSERT_EQ(ftruncate(fd, 4096), 0);
    close(fd);
  }
  const bool can_chown = geteuid() == 0 && ::chown(foreign.c_str(), 65534, 65534) == 0;
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    EXPECT_TRUE(writer->adopted());
  }
  EXPECT_NE(access(stale.c_str(), F_OK), 0) << "a stale temporary was left";
  if (can_chown) {
    EXPECT_EQ(access(foreign.c_str(), F_OK), 0) << "another user's file was removed";
  }
  EXPECT_EQ(access(unrelated.c_str(), F_OK), 0) << "a name that is not a temporary was removed";
  ::unlink(foreign.c_str());
  ::unlink(unrelated.c_str());
}

TEST_F(SegmentWriterVersions, SameCapacityIsAdoptedAndContinues) {
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    PublishOne(*writer, 1);
    PublishOne(*writer, 2);
  }
  auto writer = OpenWriter(64 << 10);
  ASSERT_TRUE(writer);
  EXPECT_TRUE(writer->adopted());
  EXPECT_FALSE(writer->replacement_pending());
  EXPECT_EQ(writer->version(), 2u);
  EXPECT_EQ(PublishOne(*writer, 3), 3u);
}

TEST_F(SegmentWriterVersions, AFreshSegmentStartsAtOne) {
  auto writer = OpenWriter(64 << 10);
  ASSERT_TRUE(writer);
  EXPECT_FALSE(writer->adopted());
  EXPECT_FALSE(writer->replacement_pending());
  EXPECT_EQ(PublishOne(*writer, 1), 1u);
}

}  // namespace
}  // namespace confcast::publisher
