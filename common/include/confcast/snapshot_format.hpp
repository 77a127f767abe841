// confcast/snapshot_format.hpp - the flat snapshot inside one slot, and the
// bounds-checked lookup both sides use on it.
//
// A snapshot is one validated config (defaults applied) laid out so that a
// getter by path needs no parsing and no allocation: an open-addressing hash
// table over every node's full dotted path ("" is the root, "llm.model",
// "toolsets.kubernetes/core.enabled", "a.list.0"), typed scalar values in
// place, and the compact JSON text of the whole config, in which every node
// records the span of its own subtree (so a subtree's JSON is a substring).
//
//   0    SnapshotHeader (16 bytes)
//        u32 entry_count | u32 bucket_count (power of two) | u32 pool_size | u32 json_size
//   16   buckets: u32[bucket_count], entry index + 1, 0 = empty (linear probing)
//   ..   entries: Entry[entry_count], 40 bytes each
//   ..   pool: pool_size bytes (a multiple of 8): paths and string values,
//        each 8-aligned and NUL-padded
//   ..   json: json_size bytes, the whole config as compact JSON
//
// The regions follow each other with no gaps, so their offsets are computed
// from the four counts rather than stored: a reader validates one sum
// (the end of the json <= the slot's capacity) instead of four offsets.
//
// Threading: the lookup runs on bytes that the writer may be overwriting, so
// it trusts nothing: every offset and length is checked against the slot's
// capacity before use (with no overflow), every loop is bounded, and a result
// is only believed after the caller's sequence re-check. Memory access goes
// through an accessor (SharedMemory for the live mapping: atomic loads;
// PrivateMemory for a pinned private copy: plain loads), so one lookup serves both.
#ifndef CONFCAST_SNAPSHOT_FORMAT_HPP_
#define CONFCAST_SNAPSHOT_FORMAT_HPP_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "confcast/word_access.hpp"

namespace confcast::snapshot {

// Bumped with any change below; folded into layout::Signature().
inline constexpr uint32_t kFormatVersion = 2;  // 2: the secret bit in Entry::child_count

enum class Type : uint32_t {
  kNull = 0,
  kBool = 1,
  kInt = 2,
  kDouble = 3,
  kString = 4,
  kMap = 5,
  kList = 6,
};
inline constexpr uint32_t kTypeCount = 7;

struct SnapshotHeader {
  uint32_t entry_count;   // nodes in the config, the root included; 1 <= entry_count <= bucket_count
  uint32_t bucket_count;  // power of two, >= 2 * entry_count when built
  uint32_t pool_size;     // bytes in the string pool, a multiple of 8
  uint32_t json_size;     // bytes of the compact JSON of the whole config (no NUL)
};
static_assert(sizeof(SnapshotHeader) == 16, "SnapshotHeader is part of the shared layout");

// Where each region starts, derived from the header (see above).
struct Regions {
  uint64_t buckets_off, entries_off, pool_off, json_off, end;
};
inline Regions RegionsOf(const SnapshotHeader& h) {
  Regions r;
  r.buckets_off = sizeof(SnapshotHeader);
  r.entries_off = r.buckets_off + uint64_t{h.bucket_count} * 4;
  r.pool_off = r.entries_off + uint64_t{h.entry_count} * 40;
  r.json_off = r.pool_off + h.pool_size;
  r.end = r.json_off + h.json_size;  // < 2^39: no overflow from 32-bit counts
  return r;
}

// Offsets in an Entry are from the start of the snapshot (not of a region),
// so a reader that knows where an entry is can bounds-check what it points
// to against the slot's capacity alone, without reading the header.
struct Entry {
  uint64_t path_hash;   // PathHash(path)
  uint32_t path_off;    // offset of the path's bytes (8-aligned, in the pool)
  uint32_t path_len;    // bytes of the path, no NUL
  uint32_t type;        // Type
  uint32_t json_len;    // bytes of this node's JSON
  uint32_t json_off;    // offset of this node's JSON (in the json text)
  uint32_t child_count; // bits 0-30: entries of a map or list, else 0; bit 31: kSecretBit
  uint64_t value;       // kInt: int64; kDouble: IEEE bits; kBool: 0/1;
                        // kString: offset (low 32 bits, in the pool) | length (high 32 bits)
};
static_assert(sizeof(Entry) == 40, "Entry is part of the shared layout");
static_assert(offsetof(Entry, value) == 32, "value is the last word");
static_assert(sizeof(Entry) % 8 == 0, "entries are read as 64-bit words");

inline constexpr uint32_t kEntryWords = sizeof(Entry) / 8;

// Set in Entry::child_count when the value is a secret (its schema field, or
// a map or list above it, says so), so that every tool can redact without
// knowing the schema. Readers still get the value; no fast path looks at it.
inline constexpr uint32_t kSecretBit = 1u << 31;
inline constexpr uint32_t kChildCountMask = kSecretBit - 1;
inline constexpr uint32_t kMaxPathBytes = 4096;

// The last 1..7 bytes of a string as a little-endian word, zero-filled,
// without a variable-length memcpy (a libc call on the hot path).
inline uint64_t LoadTail(const char* p, size_t n) {
  const auto byte = [p](size_t i) { return uint64_t{static_cast<uint8_t>(p[i])}; };
  if (n >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    return uint64_t{lo} | (uint64_t{hi} << (8 * (n - 4)));
  }
  return byte(0) | (byte(n >> 1) << (8 * (n >> 1))) | (byte(n - 1) << (8 * (n - 1)));
}

// 64-bit hash of a path, 8 bytes at a time. The publisher and every reader
// must agree on it bit for bit; it is part of the format.
inline uint64_t PathHash(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  if (i < n) {
    h = (h ^ LoadTail(p + i, n - i)) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  h *= 0xFF51AFD7ED558CCDull;
  return h ^ (h >> 32);
}

// A caller's path as the pool stores it: 8-byte words, the last one
// zero-extended. The first two words are made once, before a read section
// (most paths fit in 16 bytes), so that the section only compares. Reads
// the caller's bytes only inside [p, p + n).
class PathWords {
 public:
  PathWords(const char* p, size_t n) : p_(p), n_(n), first_(At(0)), second_(At(8)) {}
  size_t size() const { return n_; }
  uint64_t first() const { return first_; }
  uint64_t second() const { return second_; }
  // The path's last 8 bytes; only for a path of at least 8 bytes.
  uint64_t Last() const {
    uint64_t w;
    std::memcpy(&w, p_ + n_ - 8, 8);
    return w;
  }
  // Bytes [i, i + 8) of the path, zero past its end; i a multiple of 8.
  uint64_t At(size_t i) const {
    if (i >= n_) return 0;
    uint64_t w;
    if (i + 8 <= n_) {
      std::memcpy(&w, p_ + i, 8);
      return w;
    }
    if (n_ >= 8) {  // the path's last 8 bytes, shifted down: one load, all inside the path
      std::memcpy(&w, p_ + n_ - 8, 8);
      return w >> (8 * (i + 8 - n_));
    }
    return LoadTail(p_ + i, n_ - i);
  }

 private:
  const char* p_;
  size_t n_;
  uint64_t first_, second_;
};

// What a lookup found. Offsets are into the slot's data.
struct Found {
  uint32_t entry_off = 0;  // byte offset of the Entry
  Type type = Type::kNull;
  uint64_t value = 0;      // raw value word
};

enum class LookupStatus { kFound, kNotFound, kCorrupt };

// A bounds-checked view of one slot's snapshot bytes [base, base + capacity).
template <class Memory>
class View {
 public:
  View(const uint8_t* base, uint64_t capacity) : base_(base), cap_(capacity) {}

  // Reads the header and checks that the regions it implies lie inside the slot.
  bool LoadHeader() {
    if (cap_ < sizeof(SnapshotHeader)) return false;
    const uint64_t w0 = Word(0), w1 = Word(8);
    h_.entry_count = static_cast<uint32_t>(w0);
    h_.bucket_count = static_cast<uint32_t>(w0 >> 32);
    h_.pool_size = static_cast<uint32_t>(w1);
    h_.json_size = static_cast<uint32_t>(w1 >> 32);
    const uint32_t buckets = h_.bucket_count;
    if (buckets < 2 || (buckets & (buckets - 1)) != 0) return false;
    if (h_.entry_count == 0 || h_.entry_count > buckets || (h_.pool_size & 7) != 0) return false;
    r_ = RegionsOf(h_);
    return r_.end <= cap_;
  }

  const SnapshotHeader& header() const { return h_; }
  const Regions& regions() const { return r_; }
  // Finds the entry of `path` (already hashed). Call LoadHeader() first.
  LookupStatus Find(const char* path, size_t len, uint64_t hash, Found* out) const {
    const uint32_t mask = h_.bucket_count - 1;
    uint32_t b = static_cast<uint32_t>(hash) & mask;
    for (uint32_t probes = 0; probes <= mask; ++probes, b = (b + 1) & mask) {
      const uint32_t slot = Half(r_.buckets_off + uint64_t{b} * 4);
      if (slot == 0) return LookupStatus::kNotFound;
      if (slot > h_.entry_count) return LookupStatus::kCorrupt;
      const uint64_t eoff = r_.entries_off + uint64_t{slot - 1} * sizeof(Entry);
      if (Word(eoff) != hash) continue;
      switch (Match(eoff, path, len, out)) {
        case LookupStatus::kFound: return LookupStatus::kFound;
        case LookupStatus::kCorrupt: return LookupStatus::kCorrupt;
        default: continue;
      }
    }
    return LookupStatus::kNotFound;
  }

  // Whether the entry at eoff (which must fit the slot) is `path`, and if so
  // what it holds. Needs no header: the hot path of a cached lookup.
  LookupStatus Match(uint64_t eoff, const char* path, size_t len, Found* out) const {
    const LookupStatus st = PathIs(eoff, path, len);
    if (st != LookupStatus::kFound) return st;
    return EntryAt(eoff, out) ? LookupStatus::kFound : LookupStatus::kCorrupt;
  }

  // Whether the entry at eoff (which must fit the slot) has exactly this
  // path: lengths first, then the bytes a word at a time. Reads the
  // caller's path only inside [path, path + len).
  LookupStatus PathIs(uint64_t eoff, const char* path, size_t len) const {
    const uint64_t pw = Word(eoff + 8);
    const uint32_t poff = static_cast<uint32_t>(pw), plen = static_cast<uint32_t>(pw >> 32);
    if (plen != len) return LookupStatus::kNotFound;
    if ((poff & 7) != 0 || !Fits(poff, plen)) return LookupStatus::kCorrupt;
    return BytesEqual(poff, path, len) ? LookupStatus::kFound : LookupStatus::kNotFound;
  }

  // PathIs for a cached guess, in fewer instructions: the pool's words are
  // compared whole with the caller's words (PathWords), so the pool's NUL
  // padding must be NULs too. Stricter than PathIs (true only where PathIs
  // finds the path), so a caller that falls back to Find on false gives the
  // same answers.
  bool PathWordsAre(uint64_t eoff, const PathWords& path) const {
    const uint64_t pw = Word(eoff + 8);
    const uint64_t poff = static_cast<uint32_t>(pw), len = path.size();
    if ((pw >> 32) != len || (poff & 7) != 0 || !Fits(poff, (len + 7) & ~uint64_t{7})) return false;
    if (len == 0) return true;
    if (Word(poff) != path.first()) return false;
    if (len <= 8) return true;
    if (Word(poff + 8) != path.second()) return false;
    for (uint64_t i = 16; i < len; i += 8) {
      if (Word(poff + i) != path.At(i)) return false;
    }
    return true;
  }

  // What the entry at eoff (which must fit the slot) holds; false if its type
  // is not one of Type.
  bool EntryAt(uint64_t eoff, Found* out) const {
    const uint32_t type = static_cast<uint32_t>(Word(eoff + 16));
    if (type >= kTypeCount) return false;
    out->entry_off = static_cast<uint32_t>(eoff);
    out->type = static_cast<Type>(type);
    out->value = Word(eoff + 32);
    return true;
  }

  // Whether the entry at eoff (which must fit the slot) holds a secret value.
  bool SecretAt(uint64_t eoff) const { return (static_cast<uint32_t>(Word(eoff + 24) >> 32) & kSecretBit) != 0; }

  // Whether an entry at eoff would lie inside the slot.
  bool EntryFits(uint64_t eoff) const { return (eoff & 7) == 0 && Fits(eoff, sizeof(Entry)); }

  // The span of a string value, checked. False if it lies outside the slot.
  bool StringSpan(uint64_t value, uint64_t* off, uint32_t* len) const {
    const uint32_t soff = static_cast<uint32_t>(value), slen = static_cast<uint32_t>(value >> 32);
    if (!Fits(soff, slen)) return false;
    *off = soff;
    *len = slen;
    return true;
  }

  // The JSON span of the entry at entry_off, checked.
  bool JsonSpan(uint32_t entry_off, uint64_t* off, uint32_t* len) const {
    const uint32_t jlen = static_cast<uint32_t>(Word(entry_off + 16) >> 32);
    const uint32_t joff = static_cast<uint32_t>(Word(entry_off + 24));
    if (!Fits(joff, jlen)) return false;
    *off = joff;
    *len = jlen;
    return true;
  }

  // Copies n bytes at off (inside the slot, checked by the caller) to dst.
  void Copy(uint64_t off, char* dst, size_t n) const { Memory::CopyOut(base_ + off, dst, n); }

  uint64_t Word(uint64_t off) const { return Memory::Load64(base_ + off); }

 private:
  bool Fits(uint64_t off, uint64_t len) const { return off <= cap_ && len <= cap_ - off; }
  uint32_t Half(uint64_t off) const {
    const uint64_t w = Word(off & ~uint64_t{7});
    return static_cast<uint32_t>((off & 4) ? (w >> 32) : w);
  }
  bool BytesEqual(uint64_t off, const char* s, size_t n) const {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t a;
      std::memcpy(&a, s + i, 8);
      if (Word(off + i) != a) return false;
    }
    if (i < n) {
      const uint64_t keep = ~uint64_t{0} >> (8 * (8 - (n - i)));
      if ((Word(off + i) & keep) != LoadTail(s + i, n - i)) return false;
    }
    return true;
  }

  const uint8_t* base_;
  uint64_t cap_;
  SnapshotHeader h_;  // set by LoadHeader(): not zeroed, the hot path constructs a View per read
  Regions r_;
};

}  // namespace confcast::snapshot

#endif  // CONFCAST_SNAPSHOT_FORMAT_HPP_
