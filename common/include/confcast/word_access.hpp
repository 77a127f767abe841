// confcast/word_access.hpp - how the bytes of a snapshot are read.
//
// The live mapping is read while the publisher may be writing it, so every
// load there is an atomic load of an aligned 64-bit word (SharedMemory): no
// data race in the C++ memory model, a torn value is simply discarded by the
// sequence re-check. Relaxed loads plus one acquire fence before the re-check
// are what Boehm's seqlock reader needs; ThreadSanitizer does not model
// standalone fences, so under TSan every data load is an acquire load instead.
// A pinned private copy is nobody else's memory and uses plain loads
// (PrivateMemory). Both require the region to start 8-aligned and to have a
// size that is a multiple of 8: a copy may touch the rest of a word it needs.
#ifndef CONFCAST_WORD_ACCESS_HPP_
#define CONFCAST_WORD_ACCESS_HPP_

#include <cstddef>
#include <cstdint>
#include <cstring>

// Whether this translation unit is built with ThreadSanitizer. A macro
// only for the moment it takes to turn it into a constant: it is #undef'd
// below, so it never reaches a user's code.
#if defined(__SANITIZE_THREAD__)
#define CONFCAST_WORD_ACCESS_TSAN_ 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONFCAST_WORD_ACCESS_TSAN_ 1
#endif
#endif

namespace confcast::detail {

#ifdef CONFCAST_WORD_ACCESS_TSAN_
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#undef CONFCAST_WORD_ACCESS_TSAN_

inline constexpr int kDataLoadOrder = kThreadSanitizer ? __ATOMIC_ACQUIRE : __ATOMIC_RELAXED;

// The fence that ends a seqlock read section (Boehm): orders the data loads
// before the re-read of the sequence word.
inline void ReadFence() {
  if constexpr (!kThreadSanitizer) __atomic_thread_fence(__ATOMIC_ACQUIRE);
}

template <class T>
inline T LoadAcquire(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <class T>
inline T LoadRelaxed(const T* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
template <class T>
inline void StoreRelease(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
template <class T>
inline void StoreRelaxed(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

}  // namespace confcast::detail

namespace confcast::snapshot {

struct SharedMemory {
  static uint64_t Load64(const uint8_t* p) {
    return __atomic_load_n(reinterpret_cast<const uint64_t*>(p), detail::kDataLoadOrder);
  }
  // Copies [src, src + n) with aligned 64-bit atomic loads: a partial first
  // and last word, and whole words (one load, one store) in between.
  static void CopyOut(const uint8_t* src, char* dst, size_t n) {
    if (n == 0) return;
    const uintptr_t start = reinterpret_cast<uintptr_t>(src);
    const uint8_t* word = reinterpret_cast<const uint8_t*>(start & ~uintptr_t{7});
    size_t skip = static_cast<size_t>(start & 7);
    size_t done = 0;
    if (skip != 0) {
      const uint64_t w = Load64(word);
      const size_t take = (8 - skip < n) ? 8 - skip : n;
      std::memcpy(dst, reinterpret_cast<const char*>(&w) + skip, take);
      done = take;
      word += 8;
    }
    for (; n - done >= 8; done += 8, word += 8) {
      const uint64_t w = Load64(word);
      std::memcpy(dst + done, &w, 8);
    }
    if (done < n) {
      const uint64_t w = Load64(word);
      std::memcpy(dst + done, &w, n - done);
    }
  }
};

struct PrivateMemory {
  static uint64_t Load64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  static void CopyOut(const uint8_t* src, char* dst, size_t n) { std::memcpy(dst, src, n); }
};

}  // namespace confcast::snapshot

#endif  // CONFCAST_WORD_ACCESS_HPP_
