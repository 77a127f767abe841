// confcast/subscriber.hpp - the C++ reader of a published config: open the
// segment once, then read values wait-free (no lock, no system call, no
// allocation) from any number of threads.
//
//   confcast::Subscriber sub("holmesgpt-config");      // throws confcast::Error
//   static const confcast::Key kRetries("llm.max_retries");
//   int64_t retries = sub.GetInt(kRetries);             // ~2.5 ns
//   confcast::Snapshot snap = sub.Pin();                // one version, private copy
//   std::string_view model = snap.GetString("llm.model");
//                                                      // snap's version is held in the worker ledger
//
// A façade over the reader's layers, each in its own header, top to bottom:
//   lookup.hpp           a Key or a path -> its entry (one cached lookup)
//   read_section.hpp     the seqlock read section over the active slot
//   segment_mapping.hpp  the verified read-only mapping (opened in the library)
//   layout.hpp, snapshot_format.hpp  the bytes themselves
// The getters below are inline: a read is a handful of loads, and inlining
// it into the caller is what makes a Key read cost about an L1 hit.
// Opening, waiting (a futex), Info and Pin are in the compiled library
// (link confcast::subscriber); libconfcast.so, the C ABI, is built on it.
//
// Threading and memory ordering
// -----------------------------
// A Subscriber is safe to use from any number of threads at once (all
// getters are const); each getter is one read section (read_section.hpp)
// and reports the version it read. Two getters may read two versions: pass
// `version` and compare, or Pin() one. A Key may be shared by threads and
// subscribers (lookup.hpp). The noexcept getters return a CONFCAST_* status;
// the convenience getters throw confcast::Error.
#ifndef CONFCAST_SUBSCRIBER_HPP_
#define CONFCAST_SUBSCRIBER_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/lookup.hpp"
#include "confcast/read_section.hpp"
#include "confcast/segment_mapping.hpp"
#include "confcast/snapshot.hpp"
#include "confcast/status.hpp"

namespace confcast {
namespace ledger {
class Membership;  // this process's entry in the worker ledger (ledger_entry.hpp, inside the library)
}

class Subscriber {
 public:
  // Opens the segment; throws confcast::Error. An empty name means
  // $CONFCAST_SEGMENT, else "holmesgpt-config".
  // The process joins the segment's worker ledger (JoinLedger).
  explicit Subscriber(std::string_view segment = {});
  // Reads through a mapping already opened (SegmentMapping::Open), without
  // joining the worker ledger (confcastctl reads so); JoinLedger() joins.
  explicit Subscriber(SegmentMapping mapping) noexcept : mapping_(std::move(mapping)) {}
  Subscriber(Subscriber&& other) noexcept
      : ledger_(std::move(other.ledger_)), mapping_(std::move(other.mapping_)) {}
  Subscriber& operator=(Subscriber&& other) noexcept {
    ledger_ = std::move(other.ledger_);
    mapping_ = std::move(other.mapping_);
    path_cache_.Clear();  // places found in the old mapping mean nothing in this one
    return *this;
  }
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  static std::string ResolveName(std::string_view segment) { return SegmentMapping::ResolveName(segment); }

  // Opens without throwing; *out receives the mapping on CONFCAST_OK. When
  // the segment is refused (CONFCAST_ERR_PERMISSION: its owner or mode break
  // the trust rules of segment_trust.hpp), *why, if given, says why.
  // Joins the worker ledger as the constructor does.
  static int Open(std::string_view segment, Subscriber* out, std::string* why = nullptr) noexcept;

  // -- wait-free reads ---------------------------------------------------------
  // The published version: 0 when nothing is published. One atomic load.
  uint64_t version() const noexcept { return detail::LoadAcquire(&mapping_.header()->version); }

  int Get(const Key& key, int64_t* out, uint64_t* version = nullptr) const noexcept { return ByKey(key, out, version); }
  int Get(const Key& key, double* out, uint64_t* version = nullptr) const noexcept { return ByKey(key, out, version); }
  int Get(const Key& key, bool* out, uint64_t* version = nullptr) const noexcept { return ByKey(key, out, version); }
  int Get(std::string_view path, int64_t* out, uint64_t* version = nullptr) const noexcept {
    return ByPath(path, out, version);
  }
  int Get(std::string_view path, double* out, uint64_t* version = nullptr) const noexcept {
    return ByPath(path, out, version);
  }
  int Get(std::string_view path, bool* out, uint64_t* version = nullptr) const noexcept {
    return ByPath(path, out, version);
  }
  // Copies a string value into buf (the buffer rules of confcast_get_string).
  int GetString(const Key& key, char* buf, size_t cap, size_t* len, uint64_t* version = nullptr) const noexcept {
    return reader::CachedRead(mapping_, reader::KeyTarget{key}, version, [&](const reader::View& v, uint64_t eoff) {
      return reader::CopyString(v, eoff, buf, cap, len);
    });
  }
  int GetString(std::string_view path, char* buf, size_t cap, size_t* len,
                uint64_t* version = nullptr) const noexcept {
    if (__builtin_expect(path.size() > snapshot::kMaxPathBytes, 0)) return NoSuchPath(version);
    return reader::CachedRead(mapping_, PathTarget(path), version, [&](const reader::View& v, uint64_t eoff) {
      return reader::CopyString(v, eoff, buf, cap, len);
    });
  }
  // The value or subtree at path as compact JSON ("" is the whole config).
  int GetJson(std::string_view path, char* buf, size_t cap, size_t* len,
              uint64_t* version = nullptr) const noexcept {
    if (__builtin_expect(path.size() > snapshot::kMaxPathBytes, 0)) return NoSuchPath(version);
    return reader::CachedRead(mapping_, PathTarget(path), version, [&](const reader::View& v, uint64_t eoff) {
      return reader::CopyJson(v, eoff, buf, cap, len);
    });
  }
  // 1 when the value at path is a secret (its schema field, or a map or list
  // above it, is marked secret), 0 when not, else a CONFCAST_ERR_* code.
  // Readers get a secret's value like any other; this is for whatever shows
  // values to people (confcastctl, a /config route), so it can print
  // "<secret>" instead.
  int IsSecret(std::string_view path, uint64_t* version = nullptr) const noexcept {
    if (__builtin_expect(path.size() > snapshot::kMaxPathBytes, 0)) return NoSuchPath(version);
    bool secret = false;
    const int rc = reader::CachedRead(mapping_, PathTarget(path), version, [&](const reader::View& v, uint64_t eoff) {
      secret = v.SecretAt(eoff);
      return CONFCAST_OK;
    });
    return rc == CONFCAST_OK ? (secret ? 1 : 0) : rc;
  }
  // The whole config of one version as compact JSON.
  int SnapshotJson(char* buf, size_t cap, size_t* len, uint64_t* version = nullptr) const noexcept;

  // Throwing conveniences (the string ones allocate).
  int64_t GetInt(std::string_view path) const { return Must<int64_t>(path); }
  double GetDouble(std::string_view path) const { return Must<double>(path); }
  bool GetBool(std::string_view path) const { return Must<bool>(path); }
  int64_t GetInt(const Key& key) const { return Must<int64_t>(key); }
  double GetDouble(const Key& key) const { return Must<double>(key); }
  bool GetBool(const Key& key) const { return Must<bool>(key); }
  std::string GetString(std::string_view path) const;
  std::string GetJson(std::string_view path) const;

  // -- out of line (the compiled library) ---------------------------------------
  // A private copy of the current version (allocates once; then reads are
  // plain memory), held in the worker ledger until its last copy is gone.
  // Throws confcast::Error (CONFCAST_ERR_EMPTY if nothing yet).
  Snapshot Pin() const;
  int TryPin(Snapshot* out) const noexcept;

  // Blocks in the kernel (a futex on the segment) until version() >
  // after_version, at once if it already is; timeout_ms < 0 waits forever.
  // CONFCAST_ERR_INCOMPATIBLE when the segment was replaced or its name now
  // stands for another segment: reopen to follow.
  int Wait(uint64_t after_version, int timeout_ms, uint64_t* seen_version = nullptr) const noexcept;

  // -- the worker ledger ---------------------------------------------------------
  // Every reading process appears in the segment's worker ledger (a
  // directory beside the segment, see layout.hpp) with its pid, the newest
  // version it read and the versions it holds, so that an operator can wait
  // until nothing runs on an old config (confcastctl wait --converged).
  // Joining is done once per process and segment; a process that cannot
  // register (no ledger, a full one, a read-only mount) reads as ever, and
  // *why says why. CONFCAST_OK even then; CONFCAST_ERR_SYSTEM only when out
  // of memory.
  int JoinLedger(std::string* why = nullptr) noexcept;
  // Whether this process has an entry in the ledger through this subscriber.
  bool in_ledger() const noexcept;
  // This process uses `version` until the matching Release (holds nest; a
  // version may be held several times). Lock-free, no system call:
  // CONFCAST_ERR_INVALID for version 0, or a Release of a version not held.
  // Without a ledger (a Subscriber made from a mapping) both do nothing.
  // Pin() holds its version for the Snapshot's lifetime by itself.
  int Hold(uint64_t version) const noexcept;
  int Release(uint64_t version) const noexcept;

  // The publisher's status as stored in the segment.
  int Info(confcast_info* out) const noexcept;
  // How long ago the publisher last refreshed its heartbeat, in nanoseconds,
  // or -1 if it never did. Measured on CLOCK_MONOTONIC, which a wall-clock
  // step (NTP, an admin's `date`) does not move; Info()'s heartbeat_unix_ns
  // is the same beat on the wall clock, for display.
  int64_t HeartbeatAgeNs() const noexcept;
  // Per-reason rejection counters from the segment (index: layout::Reason).
  int ErrorsByReason(uint64_t out[layout::kReasonCount]) const noexcept;

  uint64_t slot_capacity() const noexcept { return mapping_.capacity(); }
  const SegmentMapping& mapping() const noexcept { return mapping_; }

 private:
  template <class T>
  int ByKey(const Key& key, T* out, uint64_t* version) const noexcept {
    return reader::ReadValue(mapping_, reader::KeyTarget{key}, out, version);
  }
  template <class T>
  int ByPath(std::string_view path, T* out, uint64_t* version) const noexcept {
    // No longer path can exist, and the pinned copy answers NOT_FOUND for
    // one without looking; only an empty or corrupt segment says so first.
    if (__builtin_expect(path.size() > snapshot::kMaxPathBytes, 0)) return NoSuchPath(version);
    return reader::ReadValue(mapping_, PathTarget(path), out, version);
  }
  reader::PathTarget PathTarget(std::string_view path) const noexcept {
    return reader::PathTarget(path_cache_, path);
  }
  int NoSuchPath(uint64_t* version) const noexcept;
  int CopyAndHold(Snapshot* out) const noexcept;
  static constexpr int kPinAttempts = 16;  // copies of a version that moved on before it was held

  template <class T, class Where>
  T Must(const Where& where) const {
    T v{};
    if (int rc = Get(where, &v); rc != CONFCAST_OK) throw Error(rc, Describe(where));
    return v;
  }
  static std::string Describe(std::string_view path) { return std::string(path); }
  static std::string Describe(const Key& key) { return key.path(); }

  std::shared_ptr<ledger::Membership> ledger_;  // before the mapping: the mapping points into it
  SegmentMapping mapping_;
  reader::PathCache path_cache_;
};

}  // namespace confcast

#endif  // CONFCAST_SUBSCRIBER_HPP_
