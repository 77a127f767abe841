// confcast/subscriber.hpp - the C++ subscriber API: read the published config
// from the shared-memory segment, wait-free.
//
// Header-only on purpose: a getter is a handful of loads from the mapping, and
// inlining it into the caller is what makes a key-handle read cost about as
// much as an L1 hit. libconfcast.so (the C ABI, confcast.h) is built from this
// same code.
//
//   confcast::Subscriber sub("holmesgpt-config");      // throws confcast::Error
//   static const confcast::Key kRetries("llm.max_retries");
//   int64_t retries = sub.GetInt(kRetries);             // ~2.5 ns, no syscall
//   confcast::Snapshot snap = sub.Pin();                // one version, private copy
//   std::string_view model = snap.GetString("llm.model");
//
// Threading and memory ordering
// -----------------------------
// A Subscriber is safe to use from any number of threads at once (all getters
// are const). Getters never lock, never allocate, never make a system call:
// each is one seqlock read of the active slot (see layout.hpp). A Key caches
// where its path lives in the version it last saw; the cache is one relaxed
// atomic word, so a Key may be shared between threads and subscribers (a Key
// used with another segment simply re-resolves: a cached place is only
// trusted when the entry there carries the Key's path hash). A Snapshot is an immutable
// private copy of one version; share it freely.
// The noexcept getters return a CONFCAST_* status; the convenience getters
// throw confcast::Error.
#ifndef CONFCAST_SUBSCRIBER_HPP_
#define CONFCAST_SUBSCRIBER_HPP_

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/segment_trust.hpp"
#include "confcast/snapshot_format.hpp"
#include "confcast/word_access.hpp"

namespace confcast {

inline constexpr const char* kDefaultSegment = "holmesgpt-config";

// The message of a CONFCAST_* status (what confcast_strerror returns).
inline const char* StatusMessage(int status) noexcept {
  switch (status) {
    case CONFCAST_OK: return "ok";
    case CONFCAST_ERR_NO_SEGMENT: return "the segment does not exist (is confcast-publisher running?)";
    case CONFCAST_ERR_INCOMPATIBLE: return "the segment's layout version is not supported by this library";
    case CONFCAST_ERR_CORRUPT: return "the segment failed verification";
    case CONFCAST_ERR_EMPTY: return "nothing has been published yet";
    case CONFCAST_ERR_NOT_FOUND: return "no value at that path";
    case CONFCAST_ERR_TYPE: return "the value at that path has another type";
    case CONFCAST_ERR_TRUNCATED: return "the buffer is too small for the value";
    case CONFCAST_ERR_INVALID: return "invalid argument";
    case CONFCAST_ERR_PERMISSION: return "permission denied opening the segment";
    case CONFCAST_ERR_TIMEOUT: return "timed out waiting for a newer version";
    case CONFCAST_ERR_SYSTEM: return "system error (see errno)";
    default: return "unknown confcast status";
  }
}

class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& context)
      : std::runtime_error(context.empty() ? StatusMessage(status)
                                           : context + ": " + StatusMessage(status)),
        status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// A pre-resolved path for hot reads. Construct once (e.g. a static), read often.
class Key {
 public:
  explicit Key(std::string path)
      : path_(std::move(path)), hash_(snapshot::PathHash(path_.data(), path_.size())) {}
  Key(const Key& other) : path_(other.path_), hash_(other.hash_) {}
  Key& operator=(const Key& other) {
    path_ = other.path_;
    hash_ = other.hash_;
    cache_.store(kNoCache, std::memory_order_relaxed);
    return *this;
  }
  const std::string& path() const noexcept { return path_; }

 private:
  friend class Subscriber;
  // The last place this path was found: (version << 24) + entry offset / 8,
  // modulo 2^64. For the version a reader sees, cache - (version << 24) is
  // the entry's index (offset / 8) exactly when the cache was filled in that
  // version (mod 2^40), and some huge number otherwise; one compare against
  // the slot's last entry index tests both "same version" and "in bounds".
  // A reader then still checks that the entry there carries this path's hash,
  // so one Key can serve several subscribers and threads without coordination.
  // (Version 0, "empty", is never cached; neither is kNoCache a valid index.)
  static constexpr uint64_t kNoCache = ~uint64_t{0};
  static constexpr uint64_t Pack(uint64_t version, uint32_t entry_off) {
    return (version << 24) + (entry_off >> 3);
  }
  // The entry index the cache names in this version, or a number larger than
  // any slot's last index.
  static constexpr uint64_t CachedIndex(uint64_t cache, uint64_t version) { return cache - (version << 24); }
  std::string path_;
  uint64_t hash_;
  mutable std::atomic<uint64_t> cache_{kNoCache};
};

namespace detail {

// Typed reads shared by the live mapping and a pinned copy.
template <class Memory>
struct TypedRead {
  using View = snapshot::View<Memory>;
  using Type = snapshot::Type;

  static int Find(View& view, std::string_view path, snapshot::Found* f) {
    if (path.size() > snapshot::kMaxPathBytes) return CONFCAST_ERR_NOT_FOUND;
    return FindHashed(view, path, snapshot::PathHash(path.data(), path.size()), f);
  }
  static int FindHashed(View& view, std::string_view path, uint64_t hash, snapshot::Found* f) {
    if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    return StatusOf(view.Find(path.data(), path.size(), hash, f));
  }
  static int StatusOf(snapshot::LookupStatus st) {
    switch (st) {
      case snapshot::LookupStatus::kFound: return CONFCAST_OK;
      case snapshot::LookupStatus::kNotFound: return CONFCAST_ERR_NOT_FOUND;
      default: return CONFCAST_ERR_CORRUPT;
    }
  }
  static int AsInt(Type t, uint64_t value, int64_t* out) {
    if (t != Type::kInt) return CONFCAST_ERR_TYPE;
    *out = static_cast<int64_t>(value);
    return CONFCAST_OK;
  }
  static int AsDouble(Type t, uint64_t value, double* out) {
    if (t == Type::kDouble) {
      std::memcpy(out, &value, 8);
    } else if (t == Type::kInt) {
      *out = static_cast<double>(static_cast<int64_t>(value));
    } else {
      return CONFCAST_ERR_TYPE;
    }
    return CONFCAST_OK;
  }
  static int AsBool(Type t, uint64_t value, bool* out) {
    if (t != Type::kBool) return CONFCAST_ERR_TYPE;
    *out = value != 0;
    return CONFCAST_OK;
  }
  // Copies a span out with the buffer rules of confcast_get_string.
  static int CopySpan(const View& view, uint64_t off, uint32_t n, char* buf, size_t cap, size_t* len) {
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
  static int String(const View& view, const snapshot::Found& f, char* buf, size_t cap, size_t* len) {
    if (f.type != Type::kString) return CONFCAST_ERR_TYPE;
    uint64_t off;
    uint32_t n;
    if (!view.StringSpan(f.value, &off, &n)) return CONFCAST_ERR_CORRUPT;
    return CopySpan(view, off, n, buf, cap, len);
  }
  static int Json(const View& view, const snapshot::Found& f, char* buf, size_t cap, size_t* len) {
    uint64_t off;
    uint32_t n;
    if (!view.JsonSpan(f.entry_off, &off, &n)) return CONFCAST_ERR_CORRUPT;
    return CopySpan(view, off, n, buf, cap, len);
  }
  static int WholeJson(View& view, char* buf, size_t cap, size_t* len) {
    if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    return CopySpan(view, view.regions().json_off, view.header().json_size, buf, cap, len);
  }
};

inline void HexSha256(const uint8_t sha[32], char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = kHex[sha[i] >> 4];
    out[2 * i + 1] = kHex[sha[i] & 15];
  }
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

inline int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace detail

// An immutable private copy of one published version.
class Snapshot {
 public:
  Snapshot() = default;
  uint64_t version() const noexcept { return version_; }
  int64_t published_unix_ns() const noexcept { return published_unix_ns_; }
  std::string sha256_hex() const {
    std::string s(64, '0');
    detail::HexSha256(sha256_, s.data());
    return s;
  }
  bool empty() const noexcept { return version_ == 0; }

  int Get(std::string_view path, int64_t* out) const noexcept {
    return Typed(path, [&](snapshot::Type t, uint64_t v) { return Read::AsInt(t, v, out); });
  }
  int Get(std::string_view path, double* out) const noexcept {
    return Typed(path, [&](snapshot::Type t, uint64_t v) { return Read::AsDouble(t, v, out); });
  }
  int Get(std::string_view path, bool* out) const noexcept {
    return Typed(path, [&](snapshot::Type t, uint64_t v) { return Read::AsBool(t, v, out); });
  }
  // A view into this snapshot's own copy: valid as long as the Snapshot lives.
  int Get(std::string_view path, std::string_view* out) const noexcept {
    if (empty()) return CONFCAST_ERR_EMPTY;
    View view = MakeView();
    snapshot::Found f;
    if (int rc = Read::Find(view, path, &f); rc != CONFCAST_OK) return rc;
    if (f.type != snapshot::Type::kString) return CONFCAST_ERR_TYPE;
    uint64_t off;
    uint32_t n;
    if (!view.StringSpan(f.value, &off, &n)) return CONFCAST_ERR_CORRUPT;
    *out = std::string_view(reinterpret_cast<const char*>(Bytes()) + off, n);
    return CONFCAST_OK;
  }
  // The JSON of the value or subtree at path ("" = the whole config).
  int GetJson(std::string_view path, std::string_view* out) const noexcept {
    if (empty()) return CONFCAST_ERR_EMPTY;
    View view = MakeView();
    snapshot::Found f;
    if (int rc = Read::Find(view, path, &f); rc != CONFCAST_OK) return rc;
    uint64_t off;
    uint32_t n;
    if (!view.JsonSpan(f.entry_off, &off, &n)) return CONFCAST_ERR_CORRUPT;
    *out = std::string_view(reinterpret_cast<const char*>(Bytes()) + off, n);
    return CONFCAST_OK;
  }
  // Whether path exists, and its type.
  std::optional<snapshot::Type> TypeOf(std::string_view path) const noexcept {
    if (empty()) return std::nullopt;
    View view = MakeView();
    snapshot::Found f;
    if (Read::Find(view, path, &f) != CONFCAST_OK) return std::nullopt;
    return f.type;
  }

  // Throwing conveniences.
  int64_t GetInt(std::string_view path) const { return Must<int64_t>(path); }
  double GetDouble(std::string_view path) const { return Must<double>(path); }
  bool GetBool(std::string_view path) const { return Must<bool>(path); }
  std::string_view GetString(std::string_view path) const { return Must<std::string_view>(path); }
  std::string_view Json() const {
    std::string_view out;
    if (int rc = GetJson("", &out); rc != CONFCAST_OK) throw Error(rc, "snapshot json");
    return out;
  }

 private:
  friend class Subscriber;
  using Read = detail::TypedRead<snapshot::PrivateMemory>;
  using View = snapshot::View<snapshot::PrivateMemory>;

  const uint8_t* Bytes() const { return reinterpret_cast<const uint8_t*>(words_.get()); }
  View MakeView() const { return View(Bytes(), n_words_ * 8); }
  template <class Fn>
  int Typed(std::string_view path, Fn&& fn) const noexcept {
    if (empty()) return CONFCAST_ERR_EMPTY;
    View view = MakeView();
    snapshot::Found f;
    if (int rc = Read::Find(view, path, &f); rc != CONFCAST_OK) return rc;
    return fn(f.type, f.value);
  }
  template <class T>
  T Must(std::string_view path) const {
    T v{};
    if (int rc = Get(path, &v); rc != CONFCAST_OK) throw Error(rc, std::string(path));
    return v;
  }

  uint64_t version_ = 0;
  int64_t published_unix_ns_ = 0;
  uint8_t sha256_[32] = {};
  std::shared_ptr<const uint64_t[]> words_;  // the slot's snapshot bytes, 8-aligned
  size_t n_words_ = 0;
};

class Subscriber {
 public:
  // Opens the segment; throws confcast::Error. An empty name means
  // $CONFCAST_SEGMENT, else "holmesgpt-config".
  explicit Subscriber(std::string_view segment = {}) {
    std::string why;
    if (int rc = Open(segment, this, &why); rc != CONFCAST_OK) {
      throw Error(rc, std::string(ResolveName(segment)) + (why.empty() ? "" : ": " + why));
    }
  }
  Subscriber(Subscriber&& o) noexcept { *this = std::move(o); }
  Subscriber& operator=(Subscriber&& o) noexcept {
    if (this != &o) {
      Unmap();
      base_ = std::exchange(o.base_, nullptr);
      owns_mapping_ = o.owns_mapping_;
      size_ = std::exchange(o.size_, 0);
      capacity_ = o.capacity_;
      stride_ = o.stride_;
      for (uint32_t i = 0; i < layout::kSlotCount; ++i) slot_headers_[i] = o.slot_headers_[i];
      last_entry_index_ = o.last_entry_index_;
      path_cache_ = std::move(o.path_cache_);
      site_cache_ = std::exchange(o.site_cache_, nullptr);
      location_ = std::move(o.location_);
      mapped_dev_ = o.mapped_dev_;
      mapped_ino_ = o.mapped_ino_;
    }
    return *this;
  }
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  ~Subscriber() { Unmap(); }

  // The segment name used when none is given.
  static std::string ResolveName(std::string_view segment) {
    if (!segment.empty()) return std::string(segment);
    const char* env = std::getenv("CONFCAST_SEGMENT");
    return (env && *env) ? std::string(env) : std::string(kDefaultSegment);
  }

  // Opens without throwing; *out receives the mapping on CONFCAST_OK. When
  // the segment is refused (CONFCAST_ERR_PERMISSION: its owner or mode break
  // the trust rules of segment_trust.hpp), *why, if given, says why, naming
  // the file's owner and mode.
  static int Open(std::string_view segment, Subscriber* out, std::string* why = nullptr) noexcept {
    std::string name, location;  // the shm_open name (or ""), and the file the name stands for
    try {
      name = ResolveName(segment);
      if (name.find('/') == std::string::npos) {
        if (name.empty() || name.size() > NAME_MAX - 1 || name == "." || name == "..") return CONFCAST_ERR_INVALID;
        location = "/dev/shm/" + name;  // where glibc's shm_open keeps it
        name = "/" + name;
      } else if (name[0] == '/') {
        location = std::move(name);
        name.clear();
      } else {
        return CONFCAST_ERR_INVALID;
      }
    } catch (...) {
      return CONFCAST_ERR_SYSTEM;
    }
    // O_NONBLOCK, O_NOCTTY: whatever someone put at the name (a FIFO, a
    // terminal) must neither hang nor adopt us before fstat refuses it.
    const int fd = name.empty() ? ::open(location.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
                                : shm_open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0) return ErrnoStatus(errno);
    int rc;
    try {
      std::string refusal;
      rc = MapVerified(fd, out, why ? &refusal : nullptr);
      if (why && !refusal.empty()) *why = location + ": " + refusal;
    } catch (...) {
      rc = CONFCAST_ERR_SYSTEM;
    }
    const int saved = errno;
    ::close(fd);
    errno = saved;
    if (rc == CONFCAST_OK) out->location_ = std::move(location);
    return rc;
  }

  // -- wait-free reads -------------------------------------------------------
  uint64_t version() const noexcept { return detail::LoadAcquire(&Header()->version); }

  int Get(std::string_view path, int64_t* out, uint64_t* version = nullptr) const noexcept {
    return ReadTyped(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsInt(t, v, out); });
  }
  int Get(std::string_view path, double* out, uint64_t* version = nullptr) const noexcept {
    return ReadTyped(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsDouble(t, v, out); });
  }
  int Get(std::string_view path, bool* out, uint64_t* version = nullptr) const noexcept {
    return ReadTyped(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsBool(t, v, out); });
  }
  int Get(const Key& key, int64_t* out, uint64_t* version = nullptr) const noexcept {
    return ReadKey(key, version, [&](snapshot::Type t, uint64_t v) { return Read::AsInt(t, v, out); });
  }
  int Get(const Key& key, double* out, uint64_t* version = nullptr) const noexcept {
    return ReadKey(key, version, [&](snapshot::Type t, uint64_t v) { return Read::AsDouble(t, v, out); });
  }
  int Get(const Key& key, bool* out, uint64_t* version = nullptr) const noexcept {
    return ReadKey(key, version, [&](snapshot::Type t, uint64_t v) { return Read::AsBool(t, v, out); });
  }
  // Copies a string value into buf (rules of confcast_get_string).
  int GetString(std::string_view path, char* buf, size_t cap, size_t* len,
                uint64_t* version = nullptr) const noexcept {
    return ReadPath(path, version, nullptr,
                    [&](View& v, const snapshot::Found& f) { return Read::String(v, f, buf, cap, len); });
  }
  int GetJson(std::string_view path, char* buf, size_t cap, size_t* len,
              uint64_t* version = nullptr) const noexcept {
    return ReadPath(path, version, nullptr,
                    [&](View& v, const snapshot::Found& f) { return Read::Json(v, f, buf, cap, len); });
  }
  int SnapshotJson(char* buf, size_t cap, size_t* len, uint64_t* version = nullptr) const noexcept {
    return ReadConsistent(version, [&](View& v, uint64_t) { return Read::WholeJson(v, buf, cap, len); });
  }

  // Throwing conveniences (the string ones allocate).
  int64_t GetInt(std::string_view path) const { return Must<int64_t>(path); }
  double GetDouble(std::string_view path) const { return Must<double>(path); }
  bool GetBool(std::string_view path) const { return Must<bool>(path); }
  int64_t GetInt(const Key& key) const { return MustKey<int64_t>(key); }
  double GetDouble(const Key& key) const { return MustKey<double>(key); }
  bool GetBool(const Key& key) const { return MustKey<bool>(key); }
  std::string GetString(std::string_view path) const {
    return GrowRead(path, [&](char* b, size_t c, size_t* l) { return GetString(path, b, c, l); });
  }
  std::string GetJson(std::string_view path) const {
    return GrowRead(path, [&](char* b, size_t c, size_t* l) { return GetJson(path, b, c, l); });
  }

  // A private copy of the current version (allocates once; then reads are
  // plain memory). Throws confcast::Error (CONFCAST_ERR_EMPTY if nothing yet).
  Snapshot Pin() const {
    Snapshot s;
    if (int rc = TryPin(&s); rc != CONFCAST_OK) throw Error(rc, "pin");
    return s;
  }
  int TryPin(Snapshot* out) const noexcept {
    std::unique_ptr<uint64_t[]> words;  // default-initialised: no zero-fill of bytes we overwrite
    uint64_t allocated = 0, n = 0, pinned_version = 0;
    int64_t published = 0;
    uint8_t sha[32];
    const int rc = ReadSection(nullptr, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
      const uint64_t size = LoadData(&slot->data_size);
      published = static_cast<int64_t>(LoadData(&slot->published_unix_ns));
      snapshot::SharedMemory::CopyOut(slot->sha256, reinterpret_cast<char*>(sha), 32);
      if (ver == 0) return CONFCAST_ERR_EMPTY;
      if (size > capacity_ || size % 8 != 0) return CONFCAST_ERR_CORRUPT;
      n = size;
      if (n / 8 > allocated) {
        words.reset(new (std::nothrow) uint64_t[n / 8]);
        if (!words) return CONFCAST_ERR_SYSTEM;
        allocated = n / 8;
      }
      snapshot::SharedMemory::CopyOut(SlotBytes(slot), reinterpret_cast<char*>(words.get()), n);
      pinned_version = ver;
      return CONFCAST_OK;
    });
    if (rc != CONFCAST_OK) return rc;
    snapshot::View<snapshot::PrivateMemory> view(reinterpret_cast<const uint8_t*>(words.get()), n);
    if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    try {
      out->words_ = std::shared_ptr<const uint64_t[]>(words.release());
    } catch (...) {
      return CONFCAST_ERR_SYSTEM;
    }
    out->version_ = pinned_version;
    out->published_unix_ns_ = published;
    std::memcpy(out->sha256_, sha, 32);
    out->n_words_ = n / 8;
    return CONFCAST_OK;
  }

  // Blocks in the kernel until version() > after_version (at once if it
  // already is). timeout_ms < 0 waits forever.
  int Wait(uint64_t after_version, int timeout_ms, uint64_t* seen_version = nullptr) const noexcept {
    timespec deadline{};
    if (timeout_ms >= 0) {
      clock_gettime(CLOCK_MONOTONIC, &deadline);
      deadline.tv_sec += timeout_ms / 1000;
      deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
      if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    }
    const layout::SegmentHeader* h = Header();
    for (;;) {
      const uint32_t seen = detail::LoadAcquire(&h->change_futex);
      const uint64_t v = version();
      if (v > after_version) {
        if (seen_version) *seen_version = v;
        return CONFCAST_OK;
      }
      if (detail::LoadAcquire(&h->retired) != 0 || NameMovedToAnotherSegment()) return CONFCAST_ERR_INCOMPATIBLE;
      int64_t left = kNameCheckNs;
      if (timeout_ms >= 0) {
        timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = (int64_t{deadline.tv_sec} - now.tv_sec) * 1000000000 + (deadline.tv_nsec - now.tv_nsec);
        if (left <= 0) {
          if (seen_version) *seen_version = v;
          return CONFCAST_ERR_TIMEOUT;
        }
      }
      // Sleep in slices, so that a segment replaced without a word to its
      // readers (see NameMovedToAnotherSegment) is noticed within one slice.
      if (left > kNameCheckNs) left = kNameCheckNs;
      timespec rel{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      timespec* relp = &rel;
      // Not FUTEX_PRIVATE_FLAG: the word is shared between processes. FUTEX_WAIT
      // only needs read access, so the read-only mapping is enough.
      if (syscall(SYS_futex, &h->change_futex, FUTEX_WAIT, seen, relp, nullptr, 0) != 0 &&
          errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
        return CONFCAST_ERR_SYSTEM;
      }
    }
  }

  // Whether the segment's name now stands for another file than the one this
  // handle mapped. A publisher marks a segment it replaces as retired, but
  // one killed between its rename and that mark, or a segment deleted and
  // created anew (by hand, or by a publisher after /dev/shm was cleaned),
  // leaves readers with no word: this is how they find out. A name that is
  // gone for now is not a move: the publisher may be about to create it.
  bool NameMovedToAnotherSegment() const noexcept {
    if (location_.empty()) return false;
    struct stat st;
    if (stat(location_.c_str(), &st) != 0) return false;
    return st.st_ino != mapped_ino_ || st.st_dev != mapped_dev_;
  }

  // The publisher's status as stored in the segment.
  int Info(confcast_info* out) const noexcept {
    const layout::SegmentHeader* h = Header();
    std::memset(out, 0, sizeof(*out));
    out->heartbeat_unix_ns = detail::LoadAcquire(&h->heartbeat_unix_ns);
    out->publisher_pid = detail::LoadAcquire(&h->publisher_pid);
    layout::Stats stats;
    if (!ReadStats([&](const layout::Stats* copy) {
          snapshot::SharedMemory::CopyOut(reinterpret_cast<const uint8_t*>(copy), reinterpret_cast<char*>(&stats),
                                          sizeof(stats));
        })) {
      return CONFCAST_ERR_CORRUPT;
    }
    out->reload_total = stats.reload_total;
    out->reload_errors_total = stats.reload_errors_total;
    const uint32_t elen = stats.last_error_len < layout::kLastErrorBytes ? stats.last_error_len
                                                                          : layout::kLastErrorBytes - 1;
    std::memcpy(out->last_error, stats.last_error, elen);
    out->last_error[elen] = '\0';
    int64_t published = 0;
    uint8_t sha[32];
    const int rc = ReadSection(&out->version, [&](const layout::SlotHeader* slot, uint64_t) -> int {
      published = static_cast<int64_t>(LoadData(&slot->published_unix_ns));
      snapshot::SharedMemory::CopyOut(slot->sha256, reinterpret_cast<char*>(sha), 32);
      return CONFCAST_OK;
    });
    if (rc != CONFCAST_OK) return rc;
    if (out->version != 0) {
      out->published_unix_ns = published;
      detail::HexSha256(sha, out->sha256_hex);
    }
    return CONFCAST_OK;
  }

  // How long ago the publisher last refreshed its heartbeat, in nanoseconds,
  // or -1 if it never did. Measured on CLOCK_MONOTONIC, which every process
  // of the host shares and which a wall-clock step (NTP, an admin's `date`)
  // does not move; Info()'s heartbeat_unix_ns is the same beat on the wall
  // clock, for display.
  int64_t HeartbeatAgeNs() const noexcept {
    const int64_t beat = detail::LoadAcquire(&Header()->heartbeat_mono_ns);
    if (beat <= 0) return -1;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t age = int64_t{now.tv_sec} * 1000000000 + now.tv_nsec - beat;
    return age < 0 ? 0 : age;
  }

  // Per-reason rejection counters from the segment (index: layout::Reason).
  int ErrorsByReason(uint64_t out[layout::kReasonCount]) const noexcept {
    const bool ok = ReadStats([&](const layout::Stats* copy) {
      for (uint32_t i = 0; i < layout::kReasonCount; ++i) out[i] = LoadData(&copy->errors_by_reason[i]);
    });
    return ok ? CONFCAST_OK : CONFCAST_ERR_CORRUPT;
  }

  uint64_t slot_capacity() const noexcept { return capacity_; }

 private:
  using Read = detail::TypedRead<snapshot::SharedMemory>;
  using View = snapshot::View<snapshot::SharedMemory>;
  // A correct writer makes a reader retry only when two publishes overlap one
  // read; this bound is only reached by a corrupt or hostile segment.
  static constexpr uint32_t kMaxAttempts = 1u << 20;

  struct Unopened {};
  explicit Subscriber(Unopened) noexcept {}
  friend struct SubscriberAccess;      // the C ABI (c_api.cc)
  friend struct SubscriberTestAccess;  // tests: AttachUnowned

  // What the C ABI calls: reads by NUL-terminated path (see ReadCPath).
  int GetCPath(const char* path, int64_t* out, uint64_t* version) const noexcept {
    return ReadTypedCPath(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsInt(t, v, out); });
  }
  int GetCPath(const char* path, double* out, uint64_t* version) const noexcept {
    return ReadTypedCPath(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsDouble(t, v, out); });
  }
  int GetCPath(const char* path, bool* out, uint64_t* version) const noexcept {
    return ReadTypedCPath(path, version, [&](snapshot::Type t, uint64_t v) { return Read::AsBool(t, v, out); });
  }
  int GetStringCPath(const char* path, char* buf, size_t cap, size_t* len, uint64_t* version) const noexcept {
    return ReadCPath(path, version, [&](View& v, const snapshot::Found& f) { return Read::String(v, f, buf, cap, len); });
  }
  int GetJsonCPath(const char* path, char* buf, size_t cap, size_t* len, uint64_t* version) const noexcept {
    return ReadCPath(path, version, [&](View& v, const snapshot::Found& f) { return Read::Json(v, f, buf, cap, len); });
  }

  static int ErrnoStatus(int err) {
    switch (err) {
      case ENOENT: return CONFCAST_ERR_NO_SEGMENT;
      case EACCES: case EPERM: return CONFCAST_ERR_PERMISSION;
      case ENAMETOOLONG: case EINVAL: return CONFCAST_ERR_INVALID;
      default: return CONFCAST_ERR_SYSTEM;
    }
  }

  struct Geometry {
    uint64_t size, capacity, stride;
  };

  // Checks the header of a segment whose file has file_size bytes. Every
  // word through an atomic load, as layout.hpp requires of readers: the file
  // may be anyone's, written while we look.
  static int VerifyHeader(const layout::SegmentHeader* h, uint64_t file_size, Geometry* g) noexcept {
    const uint64_t magic = detail::LoadAcquire(&h->magic);
    if (magic == 0) return CONFCAST_ERR_NO_SEGMENT;  // the publisher has not finished creating it
    if (magic != layout::kMagic) return CONFCAST_ERR_CORRUPT;
    if (detail::LoadRelaxed(&h->layout_version) != layout::kLayoutVersion ||
        detail::LoadRelaxed(&h->layout_signature) != layout::Signature()) {
      return CONFCAST_ERR_INCOMPATIBLE;
    }
    g->size = detail::LoadRelaxed(&h->segment_size);
    g->capacity = detail::LoadRelaxed(&h->slot_capacity);
    g->stride = detail::LoadRelaxed(&h->slot_stride);
    if (detail::LoadRelaxed(&h->slot_count) != layout::kSlotCount ||
        detail::LoadRelaxed(&h->slot_header_size) != sizeof(layout::SlotHeader) ||
        g->capacity < layout::kMinSlotCapacity || g->capacity > layout::kMaxSlotCapacity || g->capacity % 8 != 0 ||
        g->stride != layout::SlotStride(g->capacity) || g->size != layout::SegmentSize(g->capacity) ||
        g->size > file_size) {
      return CONFCAST_ERR_CORRUPT;
    }
    return CONFCAST_OK;
  }

  static int MapVerified(int fd, Subscriber* out, std::string* why) {
    struct stat st;
    if (fstat(fd, &st) != 0) return CONFCAST_ERR_SYSTEM;
    if (!S_ISREG(st.st_mode)) return CONFCAST_ERR_CORRUPT;
    // Before reading a byte: who could have written it (segment_trust.hpp).
    bool owner_variable_valid = true;
    const std::optional<uid_t> extra_owner = trust::TrustedOwnerFromEnv(&owner_variable_valid);
    if (!owner_variable_valid) {
      if (why) *why = std::string("$") + trust::kOwnerVariable + " must be a numeric uid";
      return CONFCAST_ERR_INVALID;
    }
    try {
      if (std::string refusal = trust::ReaderRefusal(st, geteuid(), extra_owner); !refusal.empty()) {
        if (why) *why = "bad ownership or modes: " + refusal;
        return CONFCAST_ERR_PERMISSION;
      }
    } catch (...) {
      return CONFCAST_ERR_SYSTEM;
    }
    if (st.st_size == 0) return CONFCAST_ERR_NO_SEGMENT;  // created, not yet sized: publisher starting
    if (static_cast<uint64_t>(st.st_size) < layout::kHeaderSize) return CONFCAST_ERR_CORRUPT;
    void* head = mmap(nullptr, layout::kHeaderSize, PROT_READ, MAP_SHARED, fd, 0);
    if (head == MAP_FAILED) return CONFCAST_ERR_SYSTEM;
    Geometry g{};
    const int rc = VerifyHeader(static_cast<const layout::SegmentHeader*>(head), static_cast<uint64_t>(st.st_size), &g);
    munmap(head, layout::kHeaderSize);
    if (rc != CONFCAST_OK) return rc;
    void* base = mmap(nullptr, g.size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return CONFCAST_ERR_SYSTEM;
    const int adopted = Adopt(static_cast<const uint8_t*>(base), g, /*owned=*/true, out);
    if (adopted != CONFCAST_OK) {
      munmap(base, g.size);
      return adopted;
    }
    out->mapped_dev_ = st.st_dev;
    out->mapped_ino_ = st.st_ino;
    return CONFCAST_OK;
  }

  // Reads a segment through memory this handle does not own (so never
  // unmaps): the publisher's own mapping, for a ThreadSanitizer test that
  // needs readers and the writer on the same addresses.
  static int AttachUnowned(const uint8_t* base, uint64_t size, Subscriber* out) noexcept {
    if (size < layout::kHeaderSize) return CONFCAST_ERR_CORRUPT;
    Geometry g{};
    if (int rc = VerifyHeader(reinterpret_cast<const layout::SegmentHeader*>(base), size, &g); rc != CONFCAST_OK) {
      return rc;
    }
    return Adopt(base, g, /*owned=*/false, out);
  }

  static int Adopt(const uint8_t* base, const Geometry& g, bool owned, Subscriber* out) noexcept {
    constexpr uint32_t kCacheSlots = kPathCacheSlots + kSiteCacheSlots;
    std::unique_ptr<std::atomic<uint64_t>[]> cache(new (std::nothrow) std::atomic<uint64_t>[kCacheSlots]);
    if (!cache) return CONFCAST_ERR_SYSTEM;
    for (uint32_t i = 0; i < kCacheSlots; ++i) cache[i].store(Key::kNoCache, std::memory_order_relaxed);
    out->Unmap();
    out->location_.clear();
    out->mapped_dev_ = 0;
    out->mapped_ino_ = 0;
    out->path_cache_ = std::move(cache);
    out->base_ = base;
    out->owns_mapping_ = owned;
    out->size_ = g.size;
    out->capacity_ = g.capacity;
    out->stride_ = g.stride;
    for (uint32_t i = 0; i < layout::kSlotCount; ++i) out->slot_headers_[i] = out->Slot(i);
    out->last_entry_index_ = g.capacity / 8 - snapshot::kEntryWords;
    out->site_cache_ = out->path_cache_.get() + kPathCacheSlots;
    return CONFCAST_OK;
  }

  void Unmap() noexcept {
    if (base_ && owns_mapping_) munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
    size_ = 0;
  }

  const layout::SegmentHeader* Header() const noexcept {
    return reinterpret_cast<const layout::SegmentHeader*>(base_);
  }
  const layout::SlotHeader* Slot(uint64_t i) const noexcept {
    return reinterpret_cast<const layout::SlotHeader*>(base_ + layout::kHeaderSize + i * stride_);
  }
  template <class T>
  static T LoadData(const T* p) noexcept {
    return static_cast<T>(__atomic_load_n(p, detail::kDataLoadOrder));
  }

  // One seqlock read section over the active slot: body(slot, version) runs
  // on bytes the publisher may be rewriting, and its result only counts once
  // the slot's sequence was even before and is unchanged after (Boehm: the
  // data loads are relaxed atomics, then an acquire fence, then the re-check).
  // The latch means the active slot is only rewritten after a later publish
  // made it inactive, so a retry is rare and never waits for a writer.
  template <class Body>
  int ReadSection(uint64_t* version, Body&& body) const noexcept {
    for (uint32_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
      const uint64_t active = detail::LoadAcquire(&Header()->active_slot);
      if (CONFCAST_UNLIKELY(active >= layout::kSlotCount)) return CONFCAST_ERR_CORRUPT;
      const layout::SlotHeader* slot = slot_headers_[active];
      const uint64_t s1 = detail::LoadAcquire(&slot->seq);
      if (CONFCAST_UNLIKELY(s1 & 1)) {
        detail::CpuRelax();
        continue;
      }
      const uint64_t ver = LoadData(&slot->version);
      const int rc = body(slot, ver);
      detail::ReadFence();
      if (CONFCAST_UNLIKELY(detail::LoadRelaxed(&slot->seq) != s1)) continue;
      if (version) *version = ver;
      return rc;
    }
    return CONFCAST_ERR_CORRUPT;
  }
  static const uint8_t* SlotBytes(const layout::SlotHeader* slot) noexcept {
    return reinterpret_cast<const uint8_t*>(slot) + sizeof(layout::SlotHeader);
  }
  // The bytes the publisher wrote into the slot, as a view; false if the
  // slot's size is impossible. Bounded by the snapshot's size, not the slot's
  // capacity, so that a live read and a pinned copy (which copies exactly
  // that many bytes) judge the same bytes alike.
  bool SlotView(const layout::SlotHeader* slot, View* out) const noexcept {
    const uint64_t size = LoadData(&slot->data_size);
    if (CONFCAST_UNLIKELY(size > capacity_ || size % 8 != 0)) return false;
    *out = View(SlotBytes(slot), size);
    return true;
  }

  // One read of the stats latch (seqcount_latch: the writer flips stats_seq
  // around each of the two copies, a reader takes copy seq & 1).
  template <class Copy>
  bool ReadStats(Copy&& copy) const noexcept {
    const layout::SegmentHeader* h = Header();
    for (uint32_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
      const uint64_t s1 = detail::LoadAcquire(&h->stats_seq);
      copy(&h->stats[s1 & 1]);
      detail::ReadFence();
      if (detail::LoadRelaxed(&h->stats_seq) == s1) return true;
    }
    return false;
  }

  // A section over a published version's snapshot: fn(view, version).
  template <class Fn>
  int ReadConsistent(uint64_t* version, Fn&& fn) const noexcept {
    return ReadSection(version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
      if (ver == 0) return CONFCAST_ERR_EMPTY;
      View view(nullptr, 0);
      if (!SlotView(slot, &view)) return CONFCAST_ERR_CORRUPT;
      return fn(view, ver);
    });
  }

  // Typed values are converted after the section, so that a read that is
  // retried or fails never leaves a torn value in the caller's *out.
  // read(keep) is a lookup that calls keep(view, found) inside its section.
  template <class Lookup, class Fn>
  static int ConvertAfter(Lookup&& read, Fn&& convert) noexcept {
    snapshot::Found found;
    const int rc = read([&](View&, const snapshot::Found& f) {
      found = f;
      return CONFCAST_OK;
    });
    return rc == CONFCAST_OK ? convert(found.type, found.value) : rc;
  }
  template <class Fn>
  int ReadTyped(std::string_view path, uint64_t* version, Fn&& convert) const noexcept {
    return ConvertAfter([&](auto&& keep) { return ReadPath(path, version, nullptr, keep); }, convert);
  }

  // Looks `path` up in one consistent read and runs use(view, found) on it.
  // A by-path read first tries the place this path was found last time
  // (a small per-handle cache keyed by the path's hash, checked against the
  // entry's hash and path bytes), so the steady state skips the hash-table
  // probe; a miss falls back to the full lookup. *place (if given) receives
  // Key::Pack(version, entry) of what was found.
  template <class Use>
  int ReadPath(std::string_view path, uint64_t* version, uint64_t* place, Use&& use) const noexcept {
    if (path.size() > snapshot::kMaxPathBytes) {
      // No such path can exist; still report an empty or corrupt segment
      // first, as every other read does (and as the C ABI, which cannot know
      // the length before it reads, does).
      return ReadConsistent(version, [](View&, uint64_t) { return CONFCAST_ERR_NOT_FOUND; });
    }
    const uint64_t hash = snapshot::PathHash(path.data(), path.size());
    std::atomic<uint64_t>& cell = path_cache_[hash % kPathCacheSlots];
    uint64_t found_at = Key::kNoCache;
    bool learned = false;
    const int rc = ReadConsistent(version, [&](View& v, uint64_t ver) -> int {
      const uint64_t index = Key::CachedIndex(cell.load(std::memory_order_relaxed), ver);
      snapshot::Found f;
      learned = false;
      if (index <= last_entry_index_ && v.Word(index * 8) == hash) {
        const auto st = v.Match(index * 8, path.data(), path.size(), &f);
        if (st == snapshot::LookupStatus::kCorrupt) return CONFCAST_ERR_CORRUPT;
        if (st == snapshot::LookupStatus::kFound) {
          found_at = Key::Pack(ver, f.entry_off);
          return use(v, f);
        }
      }
      if (int r = Read::FindHashed(v, path, hash, &f); r != CONFCAST_OK) return r;
      found_at = Key::Pack(ver, f.entry_off);
      learned = true;
      return use(v, f);
    });
    if (rc == CONFCAST_ERR_CORRUPT) return rc;
    if (learned) cell.store(found_at, std::memory_order_relaxed);
    if (place) *place = found_at;
    return rc;
  }

  // The C ABI's by-path read: `path` is NUL-terminated and, in a C or ctypes
  // caller, usually a literal or an interned object whose address is stable.
  // So a second cache, keyed by the string's address, remembers where the
  // path was found: the steady state needs no strlen and no hash, only the
  // comparison of the caller's bytes with the entry's path (which every read
  // still makes, so a reused buffer holding another path simply misses).
  // Any miss takes ReadPath.
  template <class Use>
  int ReadCPath(const char* path, uint64_t* version, Use&& use) const noexcept {
    std::atomic<uint64_t>& cell = site_cache_[SiteIndex(path)];
    const int rc = ReadSection(version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
      const uint64_t index = Key::CachedIndex(cell.load(std::memory_order_relaxed), ver);
      View view(nullptr, 0);
      if (CONFCAST_UNLIKELY(index > last_entry_index_ || !SlotView(slot, &view))) return kCacheMiss;
      if (CONFCAST_UNLIKELY(!view.IsCString(index * 8, path))) return kCacheMiss;
      snapshot::Found f;
      if (!view.EntryAt(index * 8, &f)) return CONFCAST_ERR_CORRUPT;
      return use(view, f);
    });
    if (!CONFCAST_UNLIKELY(rc == kCacheMiss)) return rc;
    return ResolveCPath(path, version, cell, use);
  }
  // Out of line, so that the steady state above needs no stack frame to speak of.
  template <class Use>
#if defined(__GNUC__)
  __attribute__((noinline))
#endif
  int ResolveCPath(const char* path, uint64_t* version, std::atomic<uint64_t>& cell, Use&& use) const noexcept {
    uint64_t place = Key::kNoCache;
    const int rc = ReadPath(std::string_view(path, strnlen(path, snapshot::kMaxPathBytes + 1)), version, &place, use);
    if (place != Key::kNoCache) cell.store(place, std::memory_order_relaxed);
    return rc;
  }
  // ReadCPath for a typed value: the same steps, with the type and value
  // carried out of the section in registers.
  template <class Fn>
  int ReadTypedCPath(const char* path, uint64_t* version, Fn&& convert) const noexcept {
    std::atomic<uint64_t>& cell = site_cache_[SiteIndex(path)];
    uint64_t type = 0, value = 0;
    const int rc = ReadSection(version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
      const uint64_t index = Key::CachedIndex(cell.load(std::memory_order_relaxed), ver);
      View view(nullptr, 0);
      if (CONFCAST_UNLIKELY(index > last_entry_index_ || !SlotView(slot, &view))) return kCacheMiss;
      if (CONFCAST_UNLIKELY(!view.IsCString(index * 8, path))) return kCacheMiss;
      type = view.Word(index * 8 + offsetof(snapshot::Entry, type));
      value = view.Word(index * 8 + offsetof(snapshot::Entry, value));
      return CONFCAST_OK;
    });
    if (!CONFCAST_UNLIKELY(rc != CONFCAST_OK)) return ConvertEntry(type, value, convert);
    if (rc != kCacheMiss) return rc;
    return ConvertAfter([&](auto&& keep) { return ResolveCPath(path, version, cell, keep); }, convert);
  }
  // Converts an entry's type word (json_len in its high half) and value.
  template <class Fn>
  static int ConvertEntry(uint64_t type_word, uint64_t value, Fn&& convert) noexcept {
    const uint32_t t = static_cast<uint32_t>(type_word);
    const int rc = convert(static_cast<snapshot::Type>(t), value);
    return rc == CONFCAST_OK || t < snapshot::kTypeCount ? rc : CONFCAST_ERR_CORRUPT;
  }
  static uint32_t SiteIndex(const char* path) noexcept {
    return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(path) * 0x9E3779B97F4A7C15ull) >> 58);
  }

  // The hot path: with a warm cache the entry's place is known for this
  // version, and the read is: active index, seq, version, entry (hash, type,
  // value), seq. Anything else (cold cache, new version, a Key last used
  // with another segment) goes to ResolveKey, kept out of line so that this
  // stays small enough to inline into the caller.
  template <class Fn>
  int ReadKey(const Key& key, uint64_t* version, Fn&& convert) const noexcept {
    uint64_t type = 0, value = 0;
    const int rc = ReadSection(version, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
      const uint64_t index = Key::CachedIndex(key.cache_.load(std::memory_order_relaxed), ver);
      if (CONFCAST_UNLIKELY(index > last_entry_index_)) return kCacheMiss;
      const uint8_t* entry = SlotBytes(slot) + index * 8;
      if (CONFCAST_UNLIKELY(snapshot::SharedMemory::Load64(entry) != key.hash_)) return kCacheMiss;
      type = snapshot::SharedMemory::Load64(entry + offsetof(snapshot::Entry, type));
      value = snapshot::SharedMemory::Load64(entry + offsetof(snapshot::Entry, value));
      return CONFCAST_OK;
    });
    if (!CONFCAST_UNLIKELY(rc != CONFCAST_OK)) return ConvertEntry(type, value, convert);
    if (rc != kCacheMiss) return rc;
    snapshot::Found f;
    const int resolved = ResolveKey(key, version, &f);
    return resolved == CONFCAST_OK ? convert(f.type, f.value) : resolved;
  }

  // Looks the Key's path up in one consistent read and caches where it is.
#if defined(__GNUC__)
  __attribute__((noinline))
#endif
  int ResolveKey(const Key& key, uint64_t* version, snapshot::Found* f) const noexcept {
    uint64_t place = Key::kNoCache;
    const int rc = ReadConsistent(version, [&](View& v, uint64_t ver) -> int {
      const int r = Read::FindHashed(v, key.path_, key.hash_, f);
      place = Key::Pack(ver, f->entry_off);
      return r;
    });
    if (rc == CONFCAST_OK) key.cache_.store(place, std::memory_order_relaxed);
    return rc;
  }

  template <class T>
  T Must(std::string_view path) const {
    T v{};
    if (int rc = Get(path, &v); rc != CONFCAST_OK) throw Error(rc, std::string(path));
    return v;
  }
  template <class T>
  T MustKey(const Key& key) const {
    T v{};
    if (int rc = Get(key, &v); rc != CONFCAST_OK) throw Error(rc, key.path());
    return v;
  }
  template <class Fn>
  static std::string GrowRead(std::string_view path, Fn&& read) {
    std::string s(64, '\0');
    for (;;) {
      size_t len = 0;
      const int rc = read(s.data(), s.size(), &len);
      if (rc == CONFCAST_OK) {
        s.resize(len);
        return s;
      }
      if (rc != CONFCAST_ERR_TRUNCATED) throw Error(rc, std::string(path));
      s.assign(len + 1, '\0');
    }
  }

  static constexpr int64_t kNameCheckNs = 1000000000;  // Wait() looks at the name at least this often
  static constexpr uint32_t kPathCacheSlots = 64;  // by path hash (ReadPath)
  static constexpr uint32_t kSiteCacheSlots = 64;  // by string address (ReadCPath); SiteIndex() makes 6 bits
  // An internal result of a read section: the cached place did not hold the
  // path. Positive, so it never collides with a CONFCAST_* status.
  static constexpr int kCacheMiss = 1;
  // The last index (offset / 8) at which a whole Entry fits a slot: also
  // below 2^24, the range of a cached index (see Key).
  static_assert(layout::kMaxSlotCapacity / 8 - snapshot::kEntryWords < (uint64_t{1} << 24),
                "a cached entry index has 24 bits");

  const uint8_t* base_ = nullptr;
  bool owns_mapping_ = true;  // false only for AttachUnowned
  const layout::SlotHeader* slot_headers_[layout::kSlotCount] = {};  // computed once at open
  uint64_t last_entry_index_ = 0;  // capacity_ / 8 - kEntryWords
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;
  uint64_t stride_ = 0;
  // Caches of where paths were found: [0, kPathCacheSlots) by path hash,
  // then kSiteCacheSlots by string address. Hints only: every use re-checks.
  std::unique_ptr<std::atomic<uint64_t>[]> path_cache_;
  std::atomic<uint64_t>* site_cache_ = nullptr;  // into path_cache_
  // The file the segment's name stands for, and which file this handle
  // mapped: Wait() notices when the name has moved on to another segment.
  std::string location_;  // "" for AttachUnowned
  dev_t mapped_dev_ = 0;
  ino_t mapped_ino_ = 0;
};

}  // namespace confcast

#endif  // CONFCAST_SUBSCRIBER_HPP_
