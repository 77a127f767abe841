// tests/support/in_process_segment.hpp - a segment published from inside the
// test process by the publisher's own SegmentWriter and snapshot builder, for
// reader tests that need exact control of what is published and when
// (no confcast-publisher process, no config file).
//
// Needs the publisher's segment writer and the snapshot builder on the
// include path and linked (confcast_segment_writer, confcast_common).
//
// Threading: a PublishedSegment has one writer thread at a time (Publish is
// the only writer of the segment); readers may run on any thread or process.
#ifndef CONFCAST_TESTS_SUPPORT_IN_PROCESS_SEGMENT_HPP_
#define CONFCAST_TESTS_SUPPORT_IN_PROCESS_SEGMENT_HPP_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "digest.hpp"
#include "names.hpp"
#include "segment_guard.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace confcast::test_support {

// A SegmentWriter on `segment` (created, adopted or replaced as the publisher
// would); throws with the writer's message when it cannot be opened.
inline std::unique_ptr<publisher::SegmentWriter> OpenSegmentWriter(const std::string& segment, uint64_t capacity,
                                                                   mode_t mode = 0600) {
  auto opened = publisher::SegmentWriter::Open({segment, capacity, mode});
  if (auto* failure = std::get_if<publisher::SegmentWriter::Failure>(&opened)) {
    throw std::runtime_error("SegmentWriter::Open " + segment + ": " + failure->message);
  }
  return std::move(std::get<std::unique_ptr<publisher::SegmentWriter>>(opened));
}

// The snapshot words of `config`, as the publisher lays them out (with the
// values at `secret_paths` and below marked secret); throws if the builder
// refuses it.
inline std::vector<uint64_t> SnapshotWords(const nlohmann::json& config,
                                           const std::vector<std::string>& secret_paths = {}) {
  auto built = snapshot::BuildSnapshot(config, secret_paths);
  if (auto* err = std::get_if<std::string>(&built)) throw std::runtime_error("BuildSnapshot: " + *err);
  return std::move(std::get<snapshot::BuiltSnapshot>(built).words);
}

// A segment (POSIX shm name or absolute path) with an in-process publisher.
// Removes the segment and its lock when it goes away, also after a failed
// assertion.
class PublishedSegment {
 public:
  explicit PublishedSegment(std::string segment, uint64_t capacity = 64 << 10)
      : guard_(std::move(segment)), capacity_(capacity) {
    OpenWriter();
  }
  PublishedSegment() : PublishedSegment(UniqueName("seg")) {}
  PublishedSegment(const PublishedSegment&) = delete;
  PublishedSegment& operator=(const PublishedSegment&) = delete;

  const std::string& segment() const { return guard_.name(); }
  const char* c_str() const { return guard_.name().c_str(); }
  publisher::SegmentWriter& writer() { return *writer_; }

  // Publishes `config` as the next version and returns that version.
  uint64_t Publish(const nlohmann::json& config, int64_t now_unix_ns = publisher::RealtimeNs(),
                   const std::vector<std::string>& secret_paths = {}) {
    const std::vector<uint64_t> words = SnapshotWords(config, secret_paths);
    if (words.size() * 8 > writer_->capacity()) throw std::runtime_error("config larger than the test capacity");
    return writer_->Publish(words.data(), words.size(), Sha256(config.dump()), now_unix_ns);
  }

  // A publisher that exits (the segment stays) and one that starts again.
  void CloseWriter() { writer_.reset(); }
  void OpenWriter(uint64_t capacity = 0) {
    if (capacity) capacity_ = capacity;
    writer_ = OpenSegmentWriter(guard_.name(), capacity_);
  }

 private:
  SegmentGuard guard_;  // declared first: removes the segment after the writer closed it
  uint64_t capacity_;
  std::unique_ptr<publisher::SegmentWriter> writer_;
};

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_IN_PROCESS_SEGMENT_HPP_
