// tests/support/slot_view.hpp - a read-only look at a segment's slot
// sequence words, to see (not to read values: that is the Subscriber's job)
// whether a writer is inside a publish, or left a slot half-written when it
// was killed. A slot's sequence is odd while it is being written.
//
// Threading: a SlotView may be used from any thread; it maps the segment
// read-only and reads the words with acquire loads, as a reader does.
#ifndef CONFCAST_TESTS_SUPPORT_SLOT_VIEW_HPP_
#define CONFCAST_TESTS_SUPPORT_SLOT_VIEW_HPP_

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "confcast/layout.hpp"
#include "wait.hpp"

namespace confcast::test_support {

class SlotView {
 public:
  // Maps the segment file (see SegmentFile); ok() is false when there is no
  // file or it does not start with confcast's magic.
  explicit SlotView(const std::string& segment_file) {
    const int fd = ::open(segment_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    layout::SegmentHeader header{};
    if (::pread(fd, &header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header)) &&
        header.magic == layout::kMagic && header.segment_size > 0) {
      void* base = mmap(nullptr, header.segment_size, PROT_READ, MAP_SHARED, fd, 0);
      if (base != MAP_FAILED) {
        base_ = static_cast<const uint8_t*>(base);
        size_ = header.segment_size;
        stride_ = header.slot_stride;
      }
    }
    ::close(fd);
  }
  ~SlotView() {
    if (base_) munmap(const_cast<uint8_t*>(base_), size_);
  }
  SlotView(const SlotView&) = delete;
  SlotView& operator=(const SlotView&) = delete;

  bool ok() const { return base_ != nullptr; }

  // Each slot's sequence word now.
  std::vector<uint64_t> Sequences() const {
    std::vector<uint64_t> seqs;
    for (uint32_t i = 0; ok() && i < layout::kSlotCount; ++i) seqs.push_back(Sequence(i));
    return seqs;
  }

  // Spins (a publish lasts microseconds: sleeping would miss it) until some
  // slot's sequence is odd, or `timeout` passes.
  bool WaitForOddSequence(milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    for (uint64_t i = 0;; ++i) {
      for (uint32_t s = 0; ok() && s < layout::kSlotCount; ++s) {
        if (Sequence(s) & 1) return true;
      }
      if (i % 1024 == 0 && Clock::now() >= deadline) return false;
    }
  }

 private:
  uint64_t Sequence(uint32_t slot) const {
    const auto* header = reinterpret_cast<const layout::SlotHeader*>(base_ + layout::kHeaderSize + slot * stride_);
    return __atomic_load_n(&header->seq, __ATOMIC_ACQUIRE);
  }

  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t stride_ = 0;
};

// True when a slot is odd in `now` and was not odd with this value in
// `before`: a writer is inside a publish (a slot left odd by an earlier
// kill does not count).
inline bool InsidePublish(const std::vector<uint64_t>& before, const std::vector<uint64_t>& now) {
  for (size_t i = 0; i < now.size(); ++i) {
    if ((now[i] & 1) && (i >= before.size() || before[i] != now[i])) return true;
  }
  return false;
}

// Post-mortem: the slots of the segment file left odd (mid-write), as
// slot * 2^56 + seq, so that a leftover from an earlier kill is told apart
// from a new one.
inline std::vector<uint64_t> OddSlots(const std::string& segment_file) {
  std::vector<uint64_t> odd;
  const SlotView view(segment_file);
  const std::vector<uint64_t> seqs = view.Sequences();
  for (uint64_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] & 1) odd.push_back((i << 56) | seqs[i]);
  }
  return odd;
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_SLOT_VIEW_HPP_
