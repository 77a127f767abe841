// segment_bytes.hpp - who keeps a segment's bytes mapped: the library's own
// half of SegmentMapping::Bytes. Not installed: a user cannot construct a
// Bytes, so every mapping a Subscriber reads has passed SegmentMapping::Open
// (trust rules, header verification) or was made here, by the library.
//
// BorrowedBytes is memory someone else keeps mapped and that a mapping
// never unmaps: the publisher's own read-write mapping, for the
// ThreadSanitizer test that needs readers and the writer on the same
// addresses, and private copies that tests corrupt at will. Tests include
// this header; no user can.
//
// Threading: immutable once made.
#ifndef CONFCAST_SUBSCRIBER_SEGMENT_BYTES_HPP_
#define CONFCAST_SUBSCRIBER_SEGMENT_BYTES_HPP_

#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include <sys/types.h>

#include "confcast/confcast.h"
#include "confcast/segment_mapping.hpp"

namespace confcast {

class SegmentMapping::Bytes {
 public:
  virtual ~Bytes() = default;
  virtual const uint8_t* data() const noexcept = 0;
  virtual uint64_t size() const noexcept = 0;
  // Whether the name these bytes were opened by now stands for another file.
  virtual bool NameMoved() const noexcept { return false; }
  // The segment's file (a /proc/self/fd link resolved) and its owner: where
  // its worker ledger is, and whom that must belong to. "" when not a file.
  virtual const std::string& File() const noexcept {
    static const std::string kNone;
    return kNone;
  }
  virtual uid_t Owner() const noexcept { return 0; }
};

namespace internal {

class BorrowedBytes final : public SegmentMapping::Bytes {
 public:
  BorrowedBytes(const uint8_t* data, uint64_t size) noexcept : data_(data), size_(size) {}
  const uint8_t* data() const noexcept override { return data_; }
  uint64_t size() const noexcept override { return size_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
};

// A mapping of `size` bytes at `data` that stay mapped by the caller for as
// long as the mapping (and any Subscriber made from it) lives.
inline int MapBorrowed(const uint8_t* data, uint64_t size, SegmentMapping* out) noexcept {
  std::unique_ptr<SegmentMapping::Bytes> bytes(new (std::nothrow) BorrowedBytes(data, size));
  if (!bytes) return CONFCAST_ERR_SYSTEM;
  return SegmentMapping::Adopt(std::move(bytes), out);
}

}  // namespace internal
}  // namespace confcast

#endif  // CONFCAST_SUBSCRIBER_SEGMENT_BYTES_HPP_
