// segment_writer.hpp - the publisher's side of the segment (layout.hpp):
// creating or adopting it, holding it exclusively, and publishing into it.
//
// Threading: one SegmentWriter per process, used from one thread (the
// publisher's event loop). Exclusivity across processes is an flock(2) held
// on the segment for the writer's lifetime; the kernel drops it when the
// process dies, so a SIGKILLed publisher never blocks its successor.
// Memory ordering: see layout.hpp; Publish() is the latch writer.
#ifndef CONFCAST_PUBLISHER_SEGMENT_WRITER_HPP_
#define CONFCAST_PUBLISHER_SEGMENT_WRITER_HPP_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "confcast/layout.hpp"

namespace confcast::publisher {

class SegmentWriter {
 public:
  struct Options {
    std::string segment;        // a name without '/' (POSIX shm) or an absolute path (tmpfs file)
    uint64_t capacity = 1 << 20;  // snapshot bytes per slot
    mode_t mode = 0640;         // applied with fchmod, whatever the umask
  };
  enum class OpenError { kBusy, kOther };
  struct Failure {
    OpenError kind;
    std::string message;
  };

  // Creates the segment, or adopts one left by an earlier publisher (same
  // layout and capacity: versions continue, open readers keep working). A
  // segment of another layout or capacity is marked retired (so open readers
  // learn to reopen) and replaced; when its layout is this build's, the
  // replacement's versions continue after the last one it held. kBusy:
  // another live publisher holds it.
  static std::variant<std::unique_ptr<SegmentWriter>, Failure> Open(const Options& options);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Where the segment lives, for messages: "/dev/shm/NAME" or the path.
  const std::string& location() const { return location_; }
  bool adopted() const { return adopted_; }        // an earlier publisher's segment was reused
  uint64_t capacity() const { return capacity_; }
  // The writer's own mapping of the whole segment: for readers in this
  // process that must see the very addresses the writer stores to (the
  // ThreadSanitizer torn-read test).
  const uint8_t* mapping() const { return base_; }
  uint64_t mapping_size() const { return size_; }
  uint64_t version() const;                        // the published version, 0 if none

  // True when the active slot holds exactly these bytes with this hash (a
  // restarted publisher then has nothing new to publish).
  bool ActiveEquals(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256) const;

  // Writes a new version into the inactive slot and makes it active; wakes
  // waiters. Precondition: n_words * 8 <= capacity(). Returns the version.
  uint64_t Publish(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                   int64_t now_unix_ns);

  void Heartbeat(int64_t now_unix_ns);

  // A publisher that fails before its first publish removes a segment it
  // created itself, so no empty segment is left for workers to wait on.
  // Adopted segments (an earlier publisher's version) are never removed.
  void RemoveIfCreatedAndEmpty();

  // The counters as this process sees them; WriteStats() makes them visible.
  layout::Stats& stats() { return stats_; }
  void WriteStats();

 private:
  SegmentWriter() = default;
  // Open(), where a segment this one replaces held versions up to last_version.
  static std::variant<std::unique_ptr<SegmentWriter>, Failure> OpenAfter(const Options& options,
                                                                         uint64_t last_version);
  layout::SegmentHeader* header() const { return reinterpret_cast<layout::SegmentHeader*>(base_); }
  layout::SlotHeader* slot(uint64_t i) const;
  uint64_t* slot_data(uint64_t i) const;

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;
  uint64_t stride_ = 0;
  bool adopted_ = false;
  std::string location_;
  std::string shm_name_;  // "/NAME" for a POSIX shm segment, "" for a file
  layout::Stats stats_{};
};

// Nanoseconds since the epoch (CLOCK_REALTIME), as the segment stores times.
int64_t RealtimeNs();

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_SEGMENT_WRITER_HPP_
