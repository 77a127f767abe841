// confcast/read_section.hpp - the seqlock read section: how a reader gets a
// consistent view of the active slot without ever waiting for the writer.
//
// The segment holds two slots, each under its own sequence counter (a latch,
// as Linux's seqcount_latch); the publisher only writes the slot readers are
// not using and then switches the active index (layout.hpp draws it). A read
// section is Boehm's seqlock reader on the active slot:
//
//   i = active_slot (acquire); s1 = slot[i].seq (acquire); odd -> retry
//   body: relaxed atomic loads of whatever the read needs
//   acquire fence; slot[i].seq (relaxed) != s1 -> retry
//
// The body's result only counts once the re-check passed, so a body must
// carry what it read out through captures (or a return code) and let the
// caller use it after the section; it must never write the caller's output
// from inside (a retried body would leave a torn value there). Because the
// active slot is only rewritten after a later publish made it inactive, a
// retry needs two publishes during one read and never waits for a writer; a
// writer killed at any instruction leaves the active slot complete.
//
// Threading: any number of threads; no locks, no system calls, no stores to
// shared memory. kMaxAttempts bounds the loop, so a hostile or corrupt
// segment (a sequence stuck odd) gives CONFCAST_ERR_CORRUPT, never a hang.
#ifndef CONFCAST_READ_SECTION_HPP_
#define CONFCAST_READ_SECTION_HPP_

#include <cstdint>

#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/segment_mapping.hpp"
#include "confcast/snapshot_format.hpp"
#include "confcast/word_access.hpp"

namespace confcast::reader {

using View = snapshot::View<snapshot::SharedMemory>;

// A correct writer makes a reader retry only when two publishes overlap one
// read; this bound is only reached by a corrupt or hostile segment.
inline constexpr uint32_t kMaxAttempts = 1u << 20;

// A data word of the slot or header: relaxed inside a section (the fence
// orders it), acquire under ThreadSanitizer, which does not model fences.
template <class T>
inline T LoadData(const T* p) noexcept {
  return static_cast<T>(__atomic_load_n(p, detail::kDataLoadOrder));
}

inline void CpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Runs body(slot, version) in one read section over the active slot and
// returns its result once the section proved consistent (*version, if
// given, then receives the slot's version).
template <class Body>
inline int ReadSection(const SegmentMapping& m, uint64_t* version, Body&& body) noexcept {
  for (uint32_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const uint64_t active = detail::LoadAcquire(&m.header()->active_slot);
    if (__builtin_expect(active >= layout::kSlotCount, 0)) return CONFCAST_ERR_CORRUPT;
    const layout::SlotHeader* slot = m.slot(active);
    const uint64_t s1 = detail::LoadAcquire(&slot->seq);
    if (__builtin_expect((s1 & 1) != 0, 0)) {
      CpuRelax();
      continue;
    }
    const uint64_t ver = LoadData(&slot->version);
    const int rc = body(slot, ver);
    detail::ReadFence();
    if (__builtin_expect(detail::LoadRelaxed(&slot->seq) != s1, 0)) continue;
    if (version) *version = ver;
    return rc;
  }
  return CONFCAST_ERR_CORRUPT;
}

// The bytes the publisher wrote into the slot, as a bounds-checked view;
// false if the slot's size is impossible. Bounded by the snapshot's size,
// not the slot's capacity, so that a live read and a pinned copy (which
// copies exactly that many bytes) judge the same bytes alike.
inline bool SlotView(const SegmentMapping& m, const layout::SlotHeader* slot, View* out) noexcept {
  const uint64_t size = LoadData(&slot->data_size);
  if (__builtin_expect(size > m.capacity() || size % 8 != 0, 0)) return false;
  *out = View(SegmentMapping::SlotBytes(slot), size);
  return true;
}

// A section over a published version's snapshot: fn(view, version);
// CONFCAST_ERR_EMPTY before the first publish.
template <class Fn>
inline int ReadConsistent(const SegmentMapping& m, uint64_t* version, Fn&& fn) noexcept {
  return ReadSection(m, version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
    if (ver == 0) return CONFCAST_ERR_EMPTY;
    View view(nullptr, 0);
    if (!SlotView(m, slot, &view)) return CONFCAST_ERR_CORRUPT;
    return fn(view, ver);
  });
}

}  // namespace confcast::reader

#endif  // CONFCAST_READ_SECTION_HPP_
