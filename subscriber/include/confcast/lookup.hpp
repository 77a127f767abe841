// confcast/lookup.hpp - finding a path's entry in the active slot: by a Key
// (a path hashed once), by a path given per call, and what a found entry's
// value means.
//
// Every lookup is one read section (read_section.hpp). A lookup first tries
// the place its path was found last time, remembered in one cache word; on
// a miss it hashes the path and probes the snapshot's hash table, then
// remembers the place. That is written once (TryCached, the warm half, and
// Resolve, the cold half; CachedRead and ReadValue compose them) and parameterised
// by a Target that says where the cache word lives and how an entry proves
// to be the target's path:
//
//   KeyTarget   the word is the Key's own; the entry must carry the Key's
//               64-bit path hash (the Key paid for the hash once);
//   PathTarget  the word is a cell of the Subscriber's PathCache chosen by a
//               cheap fingerprint of the path; the entry's path must equal
//               the caller's, length first, then the bytes.
//
// A cache word is a hint, never trusted: it packs (version << 24) + entry
// index, so for the version a reader sees, word - (version << 24) is the
// entry's index exactly when the word was filled in that version, and a
// number past any slot otherwise; one compare tests "same version" and "in
// bounds". The entry there must still prove to be the path. Version 0
// (empty) is never cached.
//
// Threading: cache words are relaxed atomics. Threads and subscribers may
// share a Key or a PathCache cell: a racing store leaves one of two valid
// hints, and every use re-checks. No lookup reads a caller's path outside
// [data, data + size).
#ifndef CONFCAST_LOOKUP_HPP_
#define CONFCAST_LOOKUP_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "confcast/confcast.h"
#include "confcast/read_section.hpp"
#include "confcast/segment_mapping.hpp"
#include "confcast/snapshot_format.hpp"

namespace confcast {
namespace reader {
struct KeyTarget;

// The cache word of a lookup (see the top of this file).
namespace place {
inline constexpr uint64_t kNowhere = ~uint64_t{0};
constexpr uint64_t Pack(uint64_t version, uint64_t entry_off) { return (version << 24) + (entry_off >> 3); }
constexpr uint64_t IndexIn(uint64_t word, uint64_t version) { return word - (version << 24); }
static_assert(layout::kMaxSlotCapacity / 8 - snapshot::kEntryWords < (uint64_t{1} << 24),
              "a cached entry index has 24 bits");
}  // namespace place
}  // namespace reader

// A path hashed once, with the place it was last found: construct once (a
// static, a member), read often. A Key may be shared by threads and by
// subscribers of different segments; a place found in one segment is only
// used in another when the entry there carries the same path hash.
class Key {
 public:
  explicit Key(std::string path)
      : path_(std::move(path)), hash_(snapshot::PathHash(path_.data(), path_.size())) {}
  Key(const Key& other) : path_(other.path_), hash_(other.hash_) {}
  Key& operator=(const Key& other) {
    path_ = other.path_;
    hash_ = other.hash_;
    place_.store(reader::place::kNowhere, std::memory_order_relaxed);
    return *this;
  }
  const std::string& path() const noexcept { return path_; }

 private:
  friend struct reader::KeyTarget;
  std::string path_;
  uint64_t hash_;
  mutable std::atomic<uint64_t> place_{reader::place::kNowhere};
};

namespace reader {

// What a section returns when the cached place did not hold the target.
// Positive, so it never collides with a CONFCAST_* status.
inline constexpr int kMiss = 1;

// A subscriber's cache of where by-path reads found their paths. Cells are
// chosen by a fingerprint of the path that costs three loads and one
// multiply (the format's PathHash costs a multiply chain per word and is
// only needed on a miss); two paths that share a cell only evict each other.
class PathCache {
 public:
  static constexpr uint32_t kCells = 64;
  PathCache() noexcept { Clear(); }
  void Clear() noexcept {
    for (auto& cell : cells_) cell.store(place::kNowhere, std::memory_order_relaxed);
  }
  // The cell for a path whose first two words are already made: the
  // fingerprint reuses them, so a by-path read loads the caller's bytes once.
  std::atomic<uint64_t>& CellFor(const snapshot::PathWords& words) const noexcept {
    return cells_[Fingerprint(words) >> (64 - 6)];
  }
  std::atomic<uint64_t>& CellFor(std::string_view path) const noexcept {
    return CellFor(snapshot::PathWords(path.data(), path.size()));
  }

 private:
  static_assert(kCells == 64, "CellFor takes the top 6 bits");
  // The length, the first two words and, past 16 bytes, the last 8 bytes:
  // paths that share a prefix ("toolsets.X.enabled") differ at the end.
  static uint64_t Fingerprint(const snapshot::PathWords& w) noexcept {
    uint64_t x = w.size() ^ w.first() ^ (w.second() << 1 | w.second() >> 63);
    if (w.size() > 16) {
      const uint64_t last = w.Last();
      x ^= last << 2 | last >> 62;
    }
    return x * 0x9E3779B97F4A7C15ull;
  }
  mutable std::atomic<uint64_t> cells_[kCells];
};

struct KeyTarget {
  const Key& key;
  std::atomic<uint64_t>& cell() const noexcept { return key.place_; }
  std::string_view path() const noexcept { return key.path_; }
  uint64_t hash() const noexcept { return key.hash_; }
  // The Key already paid for a 64-bit hash: an entry that carries it is the
  // Key's path (the table's own probe trusts the same test before its
  // bytes). The view is bounded by the slot's capacity, not the snapshot's
  // size: memory-safe, one load fewer on the hottest read there is; a
  // corrupt snapshot may then answer a warm Key read differently from a
  // cold one, never outside the slot.
  bool Holds(const SegmentMapping& m, const layout::SlotHeader* slot, uint64_t eoff, View* view) const noexcept {
    *view = View(SegmentMapping::SlotBytes(slot), m.capacity());
    return view->Word(eoff) == key.hash_;
  }
};

struct PathTarget {
  PathTarget(const PathCache& cache, std::string_view path) noexcept
      : path_(path), words_(path.data(), path.size()), cell_(cache.CellFor(words_)) {}
  std::atomic<uint64_t>& cell() const noexcept { return cell_; }
  std::string_view path() const noexcept { return path_; }
  uint64_t hash() const noexcept { return snapshot::PathHash(path_.data(), path_.size()); }
  // No hash was computed for a cached read: the bytes decide, compared a
  // word at a time with words made before the section. Bounded by the
  // snapshot's size, as Resolve is, so that a cached and an uncached read
  // (and a pinned copy) judge the same bytes alike.
  bool Holds(const SegmentMapping& m, const layout::SlotHeader* slot, uint64_t eoff, View* view) const noexcept {
    return SlotView(m, slot, view) && view->EntryFits(eoff) && view->PathWordsAre(eoff, words_);
  }

 private:
  std::string_view path_;
  snapshot::PathWords words_;
  std::atomic<uint64_t>& cell_;
};

// The cold half of the lookup: hash the path, probe the table, remember
// the place for the next read. Returns use(view, entry_offset), run inside
// the section.
template <class Target, class Use>
int Resolve(const SegmentMapping& m, const Target& target, uint64_t* version, Use&& use) noexcept {
  const std::string_view path = target.path();
  const uint64_t hash = target.hash();
  uint64_t found_at = place::kNowhere, read_version = place::kNowhere;
  const int rc = ReadConsistent(m, &read_version, [&](View& view, uint64_t ver) -> int {
    found_at = place::kNowhere;
    if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    snapshot::Found f;
    switch (view.Find(path.data(), path.size(), hash, &f)) {
      case snapshot::LookupStatus::kFound: break;
      case snapshot::LookupStatus::kNotFound: return CONFCAST_ERR_NOT_FOUND;
      default: return CONFCAST_ERR_CORRUPT;
    }
    found_at = place::Pack(ver, f.entry_off);
    return use(view, uint64_t{f.entry_off});
  });
  if (found_at != place::kNowhere && rc != CONFCAST_ERR_CORRUPT) {
    target.cell().store(found_at, std::memory_order_relaxed);
  }
  if (read_version != place::kNowhere) {  // the section proved consistent
    if (version) *version = read_version;
    m.NoteRead(read_version);  // a miss is how a reader first meets a new version
  }
  return rc;
}

// The warm half: one read section that trusts the cached place only if
// the entry there proves to be the target's path; kMiss when it does not
// (or when nothing is cached for this version). A warm Key read is: active
// index, sequence, version, the Key's word, the entry's hash, what use()
// loads, sequence again. (__builtin_expect at each branch rather than a
// macro: the miss branches sit out of line and nothing leaks into user code.)
template <class Target, class Use>
inline int TryCached(const SegmentMapping& m, const Target& target, uint64_t* version, Use&& use) noexcept {
  std::atomic<uint64_t>& cell = target.cell();
  return ReadSection(m, version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
    const uint64_t index = place::IndexIn(cell.load(std::memory_order_relaxed), ver);
    if (__builtin_expect(index > m.last_entry_index(), 0)) return kMiss;
    View view(nullptr, 0);
    if (__builtin_expect(!target.Holds(m, slot, index * 8, &view), 0)) return kMiss;
    return use(view, index * 8);
  });
}

// The one cached lookup: finds target's entry in one read section and
// returns use(view, entry_offset), run inside that section. The cold half
// is out of line, so that the warm half stays small enough to inline into
// every caller; the target goes to it by value (a few words), so the
// caller's copy never needs an address and stays in registers.
template <class Target, class Use>
[[gnu::noinline]] int ResolveOutOfLine(const SegmentMapping& m, Target target, uint64_t* version,
                                       Use& use) noexcept {
  return Resolve(m, target, version, use);
}
template <class Target, class Use>
inline int CachedRead(const SegmentMapping& m, const Target& target, uint64_t* version, Use&& use) noexcept {
  const int rc = TryCached(m, target, version, use);
  if (!__builtin_expect(rc == kMiss, 0)) return rc;
  return ResolveOutOfLine(m, target, version, use);
}

// -- what an entry's value means --------------------------------------------

inline int Convert(snapshot::Type t, uint64_t value, int64_t* out) noexcept {
  if (t != snapshot::Type::kInt) return CONFCAST_ERR_TYPE;
  *out = static_cast<int64_t>(value);
  return CONFCAST_OK;
}
// A double getter also reads an int: configs write "1" for 1.0.
inline int Convert(snapshot::Type t, uint64_t value, double* out) noexcept {
  if (t == snapshot::Type::kDouble) {
    std::memcpy(out, &value, 8);
  } else if (t == snapshot::Type::kInt) {
    *out = static_cast<double>(static_cast<int64_t>(value));
  } else {
    return CONFCAST_ERR_TYPE;
  }
  return CONFCAST_OK;
}
inline int Convert(snapshot::Type t, uint64_t value, bool* out) noexcept {
  if (t != snapshot::Type::kBool) return CONFCAST_ERR_TYPE;
  *out = value != 0;
  return CONFCAST_OK;
}

// A typed value from an entry's type word (json_len is in its high half)
// and value word.
template <class T>
inline int ConvertEntry(uint64_t type, uint64_t value, T* out) noexcept {
  const uint32_t t = static_cast<uint32_t>(type);
  if (__builtin_expect(t >= snapshot::kTypeCount, 0)) return CONFCAST_ERR_CORRUPT;
  return Convert(static_cast<snapshot::Type>(t), value, out);
}

// ReadValue's miss: the same lookup, with its own locals, so that the warm
// path's type and value never have their address taken and stay in registers.
template <class Target, class T>
[[gnu::noinline]] int ResolveValue(const SegmentMapping& m, Target target, T* out, uint64_t* version) noexcept {
  uint64_t type = 0, value = 0;
  const int rc = Resolve(m, target, version, [&](const View& view, uint64_t eoff) {
    type = view.Word(eoff + offsetof(snapshot::Entry, type));
    value = view.Word(eoff + offsetof(snapshot::Entry, value));
    return CONFCAST_OK;
  });
  return rc == CONFCAST_OK ? ConvertEntry(type, value, out) : rc;
}

// A typed value of target: CachedRead with the type and value words
// carried out of the section and converted after it, so that a retried or
// failed read never leaves a torn value in *out.
template <class Target, class T>
inline int ReadValue(const SegmentMapping& m, const Target& target, T* out, uint64_t* version) noexcept {
  uint64_t type = 0, value = 0;
  const int rc = TryCached(m, target, version, [&](const View& view, uint64_t eoff) {
    type = view.Word(eoff + offsetof(snapshot::Entry, type));
    value = view.Word(eoff + offsetof(snapshot::Entry, value));
    return CONFCAST_OK;
  });
  if (!__builtin_expect(rc != CONFCAST_OK, 0)) return ConvertEntry(type, value, out);
  if (rc != kMiss) return rc;
  return ResolveValue(m, target, out, version);
}

// Copies a span out with the buffer rules of confcast_get_string: *len is
// the whole length; NUL-terminated when it fits with room to spare;
// TRUNCATED with the first cap - 1 bytes and a NUL when it does not.
template <class AnyView>
inline int CopySpan(const AnyView& view, uint64_t off, uint32_t n, char* buf, size_t cap, size_t* len) noexcept {
  *len = n;
  if (cap >= n) {
    view.Copy(off, buf, n);
    if (cap > n) buf[n] = '\0';
    return CONFCAST_OK;
  }
  if (cap > 0) {
    view.Copy(off, buf, cap - 1);
    buf[cap - 1] = '\0';
  }
  return CONFCAST_ERR_TRUNCATED;
}

// The string value at eoff, into buf.
template <class AnyView>
inline int CopyString(const AnyView& view, uint64_t eoff, char* buf, size_t cap, size_t* len) noexcept {
  snapshot::Found f;
  if (!view.EntryAt(eoff, &f)) return CONFCAST_ERR_CORRUPT;
  if (f.type != snapshot::Type::kString) return CONFCAST_ERR_TYPE;
  uint64_t off;
  uint32_t n;
  if (!view.StringSpan(f.value, &off, &n)) return CONFCAST_ERR_CORRUPT;
  return CopySpan(view, off, n, buf, cap, len);
}

// The JSON text of the node at eoff, into buf.
template <class AnyView>
inline int CopyJson(const AnyView& view, uint64_t eoff, char* buf, size_t cap, size_t* len) noexcept {
  snapshot::Found f;
  if (!view.EntryAt(eoff, &f)) return CONFCAST_ERR_CORRUPT;
  uint64_t off;
  uint32_t n;
  if (!view.JsonSpan(f.entry_off, &off, &n)) return CONFCAST_ERR_CORRUPT;
  return CopySpan(view, off, n, buf, cap, len);
}

}  // namespace reader
}  // namespace confcast

#endif  // CONFCAST_LOOKUP_HPP_
