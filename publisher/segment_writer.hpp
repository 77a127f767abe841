// segment_writer.hpp - the publisher's side of the segment (layout.hpp):
// creating or adopting it, holding it exclusively, and publishing into it.
//
// Threading: one SegmentWriter per process, used from one thread (the
// publisher's event loop). Exclusivity across processes is the publisher
// lock beside the segment (publisher_lock.hpp), held for the writer's
// lifetime; the kernel drops it when the process dies, so a SIGKILLed
// publisher never blocks its successor.
//
// Trust: the writer only ever writes a file its own user owns and nobody
// else can write (segment_trust.hpp); a file someone else put at the name is
// refused, never adopted, initialised or replaced in place.
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
#include "publisher_lock.hpp"

namespace confcast::publisher {

class SegmentWriter {
 public:
  struct Options {
    std::string segment;        // a name without '/' (POSIX shm) or an absolute path (tmpfs file)
    uint64_t capacity = 1 << 20;  // snapshot bytes per slot
    mode_t mode = 0640;         // applied with fchmod, whatever the umask; group/other write is refused
  };
  enum class OpenError { kBusy, kOther };
  struct Failure {
    OpenError kind;
    std::string message;
  };

  // Creates the segment, or adopts one left by an earlier publisher (same
  // layout and capacity: versions continue, open readers keep working).
  // kBusy: another live publisher holds it. kOther also covers a segment or
  // lock file that is not the publisher's own (the message names owner and mode).
  //
  // A segment of another shape (another capacity, another layout, or not a
  // segment at all) is NOT replaced here: the writer keeps it in place, holds
  // its flock (so no second publisher starts on it) and the replacement is
  // pending until the first Publish(), which has a good snapshot to put in
  // the new segment. Until then workers, including ones that start now, keep
  // the last good version: a publisher started with a bad config must not
  // take away what was being served. While pending, Heartbeat() and
  // WriteStats() go to the old segment when its layout is this build's (so
  // `confcastctl status` shows why nothing new is published, and readiness
  // probes see a live publisher); a foreign layout is never written.
  static std::variant<std::unique_ptr<SegmentWriter>, Failure> Open(const Options& options);
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Where the segment lives, for messages: "/dev/shm/NAME" or the path.
  const std::string& location() const { return location_; }
  mode_t mode() const { return mode_; }
  bool adopted() const { return adopted_; }        // an earlier publisher's segment was reused
  // The segment under the name has another shape; the first Publish() replaces it.
  bool replacement_pending() const { return pending_; }
  // While pending, how the old segment differs, for the log ("capacity 65536", "another layout").
  const std::string& replaced_shape() const { return replaced_shape_; }
  // The capacity of the segment this writer publishes into (while pending:
  // of the one the first Publish() creates).
  uint64_t capacity() const { return capacity_; }
  // The writer's own mapping of the whole segment: for readers in this
  // process that must see the very addresses the writer stores to (the
  // ThreadSanitizer torn-read test). While a replacement is pending: the old
  // segment's header page only, or nullptr for a foreign layout.
  const uint8_t* mapping() const { return base_; }
  uint64_t mapping_size() const { return size_; }
  // The version served under the segment's name, 0 if none. While a
  // replacement is pending, the old segment's (0 for a foreign layout, whose
  // words mean nothing to this build).
  uint64_t version() const;

  // True when the active slot holds exactly these bytes with this hash (a
  // restarted publisher then has nothing new to publish). Always false while
  // a replacement is pending: the same config must still be published, into
  // the new segment.
  bool ActiveEquals(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256) const;

  // Writes a new version into the inactive slot and makes it active; wakes
  // waiters. Precondition: n_words * 8 <= capacity(). Returns the version.
  //
  // While a replacement is pending, this is the replacement: a new segment
  // is created under a temporary name beside the old one, locked, filled
  // (stats, then this version, numbered after the old segment's last), and
  // renamed over the old name, so the name never goes missing; then the old
  // segment is marked retired and its waiters woken (they reopen and find
  // the new one). If any step fails, the temporary is removed, the old
  // segment keeps serving, the replacement stays pending, and this throws
  // std::runtime_error (the Reloader reports it as a rejected reload).
  uint64_t Publish(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                   int64_t now_unix_ns);

  void Heartbeat(int64_t now_unix_ns);

  // A publisher that fails before its first publish removes a segment it
  // created itself, so no empty segment is left for workers to wait on.
  // Adopted segments (an earlier publisher's version) are never removed, nor
  // is an old segment whose replacement is still pending.
  void RemoveIfCreatedAndEmpty();

  // The counters as this process sees them; WriteStats() makes them visible.
  layout::Stats& stats() { return stats_; }
  void WriteStats();

 private:
  SegmentWriter() = default;
  // Publish() while pending: creates, fills and renames in the new segment.
  uint64_t Replace(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                   int64_t now_unix_ns);
  uint64_t PublishInPlace(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                          int64_t now_unix_ns);
  layout::SegmentHeader* header() const { return reinterpret_cast<layout::SegmentHeader*>(base_); }
  layout::SlotHeader* slot(uint64_t i) const;
  uint64_t* slot_data(uint64_t i) const;

  PublisherLock lock_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;
  uint64_t stride_ = 0;
  bool adopted_ = false;
  std::string location_;
  std::string shm_name_;  // "/NAME" for a POSIX shm segment, "" for a file
  mode_t mode_ = 0640;
  // A pending replacement: fd_ is the old segment (its flock held), base_
  // maps its header page when its layout is this build's (else nullptr).
  bool pending_ = false;
  uint64_t pending_last_version_ = 0;  // the old segment's highest version; the new one continues after it
  std::string replaced_shape_;
  layout::Stats stats_{};
};

// Nanoseconds since the epoch (CLOCK_REALTIME), as the segment stores times.
int64_t RealtimeNs();
// CLOCK_MONOTONIC nanoseconds: what heartbeat ages are measured on.
int64_t MonotonicNs();

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_SEGMENT_WRITER_HPP_
