// subscriber.cc - the Subscriber's calls that are not on a read's hot path:
// opening (and joining the worker ledger), Pin, holds, Wait (a futex
// sleep), Info and the status strings. They are
// here rather than in the header so that users compile no Linux system-call
// header and link one copy of them.
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "confcast/subscriber.hpp"
#include "ledger.hpp"
#include "ledger_entry.hpp"

namespace confcast {
namespace {

// Wait() looks at the segment's name at least this often.
constexpr int64_t kNameCheckNs = 1000000000;

void HexSha256(const uint8_t sha[32], char* out) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = kHex[sha[i] >> 4];
    out[2 * i + 1] = kHex[sha[i] & 15];
  }
}

int64_t MonotonicNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One read of the stats latch (seqcount_latch: the writer bumps stats_seq
// around each of the two copies; a reader takes copy seq & 1).
template <class Copy>
bool ReadStats(const SegmentMapping& m, Copy&& copy) noexcept {
  const layout::SegmentHeader* h = m.header();
  for (uint32_t attempt = 0; attempt < reader::kMaxAttempts; ++attempt) {
    const uint64_t s1 = detail::LoadAcquire(&h->stats_seq);
    copy(&h->stats[s1 & 1]);
    detail::ReadFence();
    if (detail::LoadRelaxed(&h->stats_seq) == s1) return true;
  }
  return false;
}

template <class Fn>
std::string GrowRead(std::string_view path, Fn&& read) {
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

}  // namespace

const char* StatusMessage(int status) noexcept {
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

std::string Snapshot::sha256_hex() const {
  std::string s(64, '0');
  HexSha256(sha256_, s.data());
  return s;
}

Subscriber::Subscriber(std::string_view segment) {
  std::string why;
  if (int rc = SegmentMapping::Open(segment, &mapping_, &why); rc != CONFCAST_OK) {
    throw Error(rc, ResolveName(segment) + (why.empty() ? "" : ": " + why));
  }
  if (int rc = JoinLedger(); rc != CONFCAST_OK) throw Error(rc, "joining the worker ledger");
}

Subscriber::~Subscriber() = default;

int Subscriber::Open(std::string_view segment, Subscriber* out, std::string* why) noexcept {
  SegmentMapping mapping;
  int rc = SegmentMapping::Open(segment, &mapping, why);
  if (rc != CONFCAST_OK) return rc;
  Subscriber sub(std::move(mapping));
  if (rc = sub.JoinLedger(); rc == CONFCAST_OK) *out = std::move(sub);
  return rc;
}

int Subscriber::JoinLedger(std::string* why) noexcept {
  if (ledger_) return CONFCAST_OK;
  try {
    const std::string file = mapping_.file();
    if (file.empty()) {
      if (why) *why = "the segment has no file name to find its ledger beside";
      return CONFCAST_OK;
    }
    ledger_ = ledger::Membership::Join(ledger::DirectoryFor(file), mapping_.owner(), why);
  } catch (...) {
    return CONFCAST_ERR_SYSTEM;
  }
  if (!ledger_) return CONFCAST_ERR_SYSTEM;
  mapping_.set_newest_read(ledger_->newest_read_word());
  return CONFCAST_OK;
}

bool Subscriber::in_ledger() const noexcept { return ledger_ && ledger_->registered(); }

int Subscriber::Hold(uint64_t version) const noexcept { return ledger_ ? ledger_->Hold(version) : CONFCAST_OK; }

int Subscriber::Release(uint64_t version) const noexcept {
  return ledger_ ? ledger_->Release(version) : CONFCAST_OK;
}

int Subscriber::NoSuchPath(uint64_t* version) const noexcept {
  return reader::ReadConsistent(mapping_, version, [](reader::View&, uint64_t) { return CONFCAST_ERR_NOT_FOUND; });
}

int Subscriber::SnapshotJson(char* buf, size_t cap, size_t* len, uint64_t* version) const noexcept {
  constexpr uint64_t kUnread = ~uint64_t{0};
  uint64_t read_version = kUnread;
  const int rc = reader::ReadConsistent(mapping_, &read_version, [&](reader::View& v, uint64_t) -> int {
    if (!v.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    return reader::CopySpan(v, v.regions().json_off, v.header().json_size, buf, cap, len);
  });
  if (read_version != kUnread) {
    if (version) *version = read_version;
    if (rc == CONFCAST_OK) mapping_.NoteRead(read_version);
  }
  return rc;
}

std::string Subscriber::GetString(std::string_view path) const {
  return GrowRead(path, [&](char* b, size_t c, size_t* l) { return GetString(path, b, c, l); });
}
std::string Subscriber::GetJson(std::string_view path) const {
  return GrowRead(path, [&](char* b, size_t c, size_t* l) { return GetJson(path, b, c, l); });
}

Snapshot Subscriber::Pin() const {
  Snapshot s;
  if (int rc = TryPin(&s); rc != CONFCAST_OK) throw Error(rc, "pin");
  return s;
}

int Subscriber::TryPin(Snapshot* out) const noexcept {
  // Hold, then look again: if the version is still the one copied, any scan
  // of the ledger after a later publish sees the hold (the hold's
  // compare-and-swap is ordered before this load); if it moved on, a scan
  // may already have missed the hold, so the copy is taken again.
  for (int attempt = 0;; ++attempt) {
    const int rc = CopyAndHold(out);
    if (rc != CONFCAST_OK || !ledger_ || version() == out->version() || attempt == kPinAttempts) return rc;
    *out = Snapshot();  // releases the hold
  }
}

int Subscriber::CopyAndHold(Snapshot* out) const noexcept {
  std::unique_ptr<uint64_t[]> words;  // default-initialised: no zero-fill of bytes we overwrite
  uint64_t allocated = 0, n = 0, pinned_version = 0;
  int64_t published = 0;
  uint8_t sha[32];
  const int rc = reader::ReadSection(mapping_, nullptr, [&](const layout::SlotHeader* slot, uint64_t ver) -> int {
    const uint64_t size = reader::LoadData(&slot->data_size);
    published = static_cast<int64_t>(reader::LoadData(&slot->published_unix_ns));
    snapshot::SharedMemory::CopyOut(slot->sha256, reinterpret_cast<char*>(sha), 32);
    if (ver == 0) return CONFCAST_ERR_EMPTY;
    if (size > mapping_.capacity() || size % 8 != 0) return CONFCAST_ERR_CORRUPT;
    n = size;
    // Allocating inside the section is rare (a retry that finds a larger
    // snapshot) and keeps the copy to one pass over the slot.
    if (n / 8 > allocated) {
      words.reset(new (std::nothrow) uint64_t[n / 8]);
      if (!words) return CONFCAST_ERR_SYSTEM;
      allocated = n / 8;
    }
    snapshot::SharedMemory::CopyOut(SegmentMapping::SlotBytes(slot), reinterpret_cast<char*>(words.get()), n);
    pinned_version = ver;
    return CONFCAST_OK;
  });
  if (rc != CONFCAST_OK) return rc;
  snapshot::View<snapshot::PrivateMemory> view(reinterpret_cast<const uint8_t*>(words.get()), n);
  if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
  mapping_.NoteRead(pinned_version);
  try {
    if (ledger_ && ledger_->Hold(pinned_version) == CONFCAST_OK) {
      // The hold ends with the last copy of the Snapshot.
      std::shared_ptr<ledger::Membership> entry = ledger_;
      // If making the shared_ptr throws, it runs the deleter itself.
      const uint64_t* raw = words.release();
      out->words_ = std::shared_ptr<const uint64_t[]>(raw, [entry, pinned_version](const uint64_t* p) {
        delete[] p;
        entry->Release(pinned_version);
      });
    } else {
      out->words_ = std::shared_ptr<const uint64_t[]>(words.release());
    }
  } catch (...) {
    return CONFCAST_ERR_SYSTEM;
  }
  out->version_ = pinned_version;
  out->published_unix_ns_ = published;
  std::memcpy(out->sha256_, sha, 32);
  out->n_words_ = n / 8;
  return CONFCAST_OK;
}

int Subscriber::Wait(uint64_t after_version, int timeout_ms, uint64_t* seen_version) const noexcept {
  const int64_t deadline = timeout_ms >= 0 ? MonotonicNs() + int64_t{timeout_ms} * 1000000 : 0;
  const layout::SegmentHeader* h = mapping_.header();
  for (;;) {
    // The futex word before the version: a publish between the two loads
    // changes the word, so the sleep below returns at once instead of
    // missing the wake.
    const uint32_t seen = detail::LoadAcquire(&h->change_futex);
    const uint64_t v = version();
    if (v > after_version) {
      if (seen_version) *seen_version = v;
      return CONFCAST_OK;
    }
    if (detail::LoadAcquire(&h->retired) != 0 || mapping_.NameMovedToAnotherSegment()) {
      return CONFCAST_ERR_INCOMPATIBLE;
    }
    int64_t left = kNameCheckNs;
    if (timeout_ms >= 0) {
      left = deadline - MonotonicNs();
      if (left <= 0) {
        if (seen_version) *seen_version = v;
        return CONFCAST_ERR_TIMEOUT;
      }
    }
    // Sleep in slices, so that a segment replaced without a word to its
    // readers (SegmentMapping::NameMovedToAnotherSegment) is noticed within one.
    if (left > kNameCheckNs) left = kNameCheckNs;
    timespec rel{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    // Not FUTEX_PRIVATE_FLAG: the word is shared between processes. FUTEX_WAIT
    // only needs read access, so the read-only mapping is enough. No Boost
    // (nor std::atomic::wait) sleeps on a word in another process's mapping
    // with a timeout; the futex is the one system call that does.
    if (syscall(SYS_futex, &h->change_futex, FUTEX_WAIT, seen, &rel, nullptr, 0) != 0 && errno != EAGAIN &&
        errno != EINTR && errno != ETIMEDOUT) {
      return CONFCAST_ERR_SYSTEM;
    }
  }
}

int Subscriber::Info(confcast_info* out) const noexcept {
  const layout::SegmentHeader* h = mapping_.header();
  std::memset(out, 0, sizeof(*out));
  out->heartbeat_unix_ns = detail::LoadAcquire(&h->heartbeat_unix_ns);
  out->publisher_pid = detail::LoadAcquire(&h->publisher_pid);
  layout::Stats stats;
  if (!ReadStats(mapping_, [&](const layout::Stats* copy) {
        snapshot::SharedMemory::CopyOut(reinterpret_cast<const uint8_t*>(copy), reinterpret_cast<char*>(&stats),
                                        sizeof(stats));
      })) {
    return CONFCAST_ERR_CORRUPT;
  }
  out->reload_total = stats.reload_total;
  out->reload_errors_total = stats.reload_errors_total;
  const uint32_t elen =
      stats.last_error_len < layout::kLastErrorBytes ? stats.last_error_len : layout::kLastErrorBytes - 1;
  std::memcpy(out->last_error, stats.last_error, elen);
  out->last_error[elen] = '\0';
  int64_t published = 0;
  uint8_t sha[32];
  const int rc = reader::ReadSection(mapping_, &out->version, [&](const layout::SlotHeader* slot, uint64_t) -> int {
    published = static_cast<int64_t>(reader::LoadData(&slot->published_unix_ns));
    snapshot::SharedMemory::CopyOut(slot->sha256, reinterpret_cast<char*>(sha), 32);
    return CONFCAST_OK;
  });
  if (rc != CONFCAST_OK) return rc;
  if (out->version != 0) {
    out->published_unix_ns = published;
    HexSha256(sha, out->sha256_hex);
  }
  return CONFCAST_OK;
}

int64_t Subscriber::HeartbeatAgeNs() const noexcept {
  const int64_t beat = detail::LoadAcquire(&mapping_.header()->heartbeat_mono_ns);
  if (beat <= 0) return -1;
  const int64_t age = MonotonicNs() - beat;
  return age < 0 ? 0 : age;
}

int Subscriber::ErrorsByReason(uint64_t out[layout::kReasonCount]) const noexcept {
  const bool ok = ReadStats(mapping_, [&](const layout::Stats* copy) {
    for (uint32_t i = 0; i < layout::kReasonCount; ++i) out[i] = reader::LoadData(&copy->errors_by_reason[i]);
  });
  return ok ? CONFCAST_OK : CONFCAST_ERR_CORRUPT;
}

}  // namespace confcast
