// confcast/segment_mapping.hpp - one segment, opened, judged and mapped
// read-only: the memory every read of a Subscriber goes through.
//
// Open() decides whether the file may be read at all before it reads a byte
// (the trust rules of segment_trust.hpp: owner and mode of the very file
// that is then mapped), then verifies the header (magic, layout version and
// signature, sizes against the file) and maps the whole segment PROT_READ.
// Opening, verifying and mapping live in the compiled library
// (segment_mapping.cc); this header keeps only what the inline reads need:
// where the header and the two slots are, and the slot capacity.
//
// Threading: a mapping is immutable once opened, so any number of threads
// may read through it. Moving or destroying it while another thread reads
// through it is a bug, as for any object.
#ifndef CONFCAST_SEGMENT_MAPPING_HPP_
#define CONFCAST_SEGMENT_MAPPING_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "confcast/layout.hpp"

namespace confcast {

class SegmentMapping {
 public:
  // Whoever keeps the bytes mapped. Defined inside the library only (a
  // Boost.Interprocess mapped_region of a file it opened), so that no user
  // can hand a Subscriber memory that did not pass Open()'s checks.
  class Bytes;

  SegmentMapping() noexcept;
  SegmentMapping(SegmentMapping&& other) noexcept;
  SegmentMapping& operator=(SegmentMapping&& other) noexcept;
  ~SegmentMapping();

  // The name used when none is given: $CONFCAST_SEGMENT, else the default
  // segment (confcast/defaults.hpp; "holmesgpt-config").
  static std::string ResolveName(std::string_view segment);

  // Opens `segment` (a name without '/' is a POSIX shared-memory object, an
  // absolute path a file in a tmpfs; empty: ResolveName). CONFCAST_OK or a
  // CONFCAST_ERR_* status; for CONFCAST_ERR_PERMISSION (and a bad
  // $CONFCAST_SEGMENT_OWNER) *why, if given, says why in words, naming the
  // file's owner and mode.
  static int Open(std::string_view segment, SegmentMapping* out, std::string* why = nullptr) noexcept;

  // Verifies the header in `bytes` and takes them over. Open() ends here;
  // so do the library's own tests, with memory they mapped themselves.
  static int Adopt(std::unique_ptr<Bytes> bytes, SegmentMapping* out) noexcept;

  bool is_open() const noexcept { return base_ != nullptr; }
  const layout::SegmentHeader* header() const noexcept {
    return reinterpret_cast<const layout::SegmentHeader*>(base_);
  }
  // i < layout::kSlotCount. Precomputed at open: a read needs no multiply.
  const layout::SlotHeader* slot(uint64_t i) const noexcept { return slots_[i]; }
  static const uint8_t* SlotBytes(const layout::SlotHeader* slot) noexcept {
    return reinterpret_cast<const uint8_t*>(slot) + sizeof(layout::SlotHeader);
  }
  // Snapshot bytes per slot (the publisher's --capacity).
  uint64_t capacity() const noexcept { return capacity_; }
  // The last index (offset / 8) at which a whole snapshot::Entry fits a slot.
  uint64_t last_entry_index() const noexcept { return last_entry_index_; }

  // Whether the segment's name now stands for another file than the one
  // mapped (one stat). A publisher marks a segment it replaces as retired,
  // but one killed between its rename and that mark, or a segment deleted
  // and created anew, leaves readers no word: this is how they find out.
  bool NameMovedToAnotherSegment() const noexcept;

  // The segment's file ("" for memory not opened from a file) and its owner:
  // its worker ledger is beside the file and must belong to that owner.
  std::string file() const;
  uid_t owner() const noexcept;

  // Where a read that finds a new version notes it: this process's
  // "newest version read" in the worker ledger (a store into its own entry,
  // no system call; only when the version is newer). Set by the Subscriber
  // that joined the ledger; nowhere by default.
  void set_newest_read(uint64_t* word) noexcept { newest_read_ = word; }
  void NoteRead(uint64_t version) const noexcept {
    if (newest_read_ != nullptr && __atomic_load_n(newest_read_, __ATOMIC_RELAXED) < version) {
      __atomic_store_n(newest_read_, version, __ATOMIC_RELAXED);
    }
  }

 private:
  std::unique_ptr<Bytes> bytes_;
  const uint8_t* base_ = nullptr;
  const layout::SlotHeader* slots_[layout::kSlotCount] = {};
  uint64_t capacity_ = 0;
  uint64_t last_entry_index_ = 0;
  uint64_t* newest_read_ = nullptr;
};

}  // namespace confcast

#endif  // CONFCAST_SEGMENT_MAPPING_HPP_
