// Tests of SegmentWriter's version numbering across a restart that replaces
// the segment with one of another shape (another --capacity).
//
// Single-threaded; each test uses its own POSIX shm segment, removed at the end.
#include "segment_writer.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace confcast::publisher {
namespace {

class SegmentWriterVersions : public ::testing::Test {
 protected:
  void TearDown() override { shm_unlink(("/" + name_).c_str()); }

  std::unique_ptr<SegmentWriter> OpenWriter(uint64_t capacity) {
    auto opened = SegmentWriter::Open({name_, capacity, 0600});
    if (auto* failure = std::get_if<SegmentWriter::Failure>(&opened)) {
      ADD_FAILURE() << "cannot open " << name_ << ": " << failure->message;
      return nullptr;
    }
    return std::move(std::get<std::unique_ptr<SegmentWriter>>(opened));
  }

  static uint64_t PublishOne(SegmentWriter& writer, uint64_t word) {
    const std::vector<uint64_t> words{word, word + 1};
    std::array<unsigned char, 32> sha{};
    sha[0] = static_cast<unsigned char>(word);
    return writer.Publish(words.data(), words.size(), sha, RealtimeNs());
  }

  const std::string name_ = "confcast-segment-writer-test-" + std::to_string(getpid()) + "-" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
};

TEST_F(SegmentWriterVersions, AnotherCapacityContinuesThePreviousVersions) {
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    for (uint64_t v = 1; v <= 3; ++v) EXPECT_EQ(PublishOne(*writer, v), v);
  }
  auto writer = OpenWriter(128 << 10);
  ASSERT_TRUE(writer);
  EXPECT_FALSE(writer->adopted()) << "another capacity must replace the segment";
  EXPECT_EQ(writer->capacity(), uint64_t{128 << 10});
  EXPECT_EQ(writer->version(), 0u) << "nothing is published in the new segment yet";
  EXPECT_EQ(PublishOne(*writer, 10), 4u);
  EXPECT_EQ(writer->version(), 4u);
  EXPECT_EQ(PublishOne(*writer, 11), 5u);
}

// A replacement that dies before its first publish (as a SIGKILL would
// leave it: no RemoveIfCreatedAndEmpty) still passes the numbering on, to a
// successor that adopts it and to one that replaces it again.
TEST_F(SegmentWriterVersions, AReplacementThatNeverPublishedStillPassesTheVersionOn) {
  {
    auto writer = OpenWriter(64 << 10);
    ASSERT_TRUE(writer);
    for (uint64_t v = 1; v <= 7; ++v) PublishOne(*writer, v);
  }
  { ASSERT_TRUE(OpenWriter(128 << 10)); }
  {
    auto adopter = OpenWriter(128 << 10);
    ASSERT_TRUE(adopter);
    EXPECT_TRUE(adopter->adopted());
    EXPECT_EQ(adopter->version(), 0u);
  }
  { ASSERT_TRUE(OpenWriter(256 << 10)); }
  auto writer = OpenWriter(256 << 10);
  ASSERT_TRUE(writer);
  EXPECT_EQ(PublishOne(*writer, 1), 8u);
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
  EXPECT_EQ(writer->version(), 2u);
  EXPECT_EQ(PublishOne(*writer, 3), 3u);
}

TEST_F(SegmentWriterVersions, AFreshSegmentStartsAtOne) {
  auto writer = OpenWriter(64 << 10);
  ASSERT_TRUE(writer);
  EXPECT_FALSE(writer->adopted());
  EXPECT_EQ(PublishOne(*writer, 1), 1u);
}

}  // namespace
}  // namespace confcast::publisher
