#include "segment_writer.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "confcast/word_access.hpp"

namespace confcast::publisher {
namespace {

using detail::StoreRelaxed;
using detail::StoreRelease;

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

struct Target {
  bool is_shm;
  std::string shm_name;  // "/NAME"
  std::string path;      // what the user sees: /dev/shm/NAME or the file
};

std::variant<Target, std::string> Resolve(const std::string& segment) {
  if (segment.empty()) return std::string("empty segment name");
  if (segment.find('/') == std::string::npos) {
    if (segment.size() > NAME_MAX - 1 || segment == "." || segment == "..") {
      return "invalid segment name '" + segment + "'";
    }
    return Target{true, "/" + segment, "/dev/shm/" + segment};
  }
  if (segment[0] != '/') {
    return "segment '" + segment + "' must be a name without '/' or an absolute path";
  }
  return Target{false, "", segment};
}

int OpenTarget(const Target& t, int flags, mode_t mode) {
  flags |= O_CLOEXEC;
  if (t.is_shm) return shm_open(t.shm_name.c_str(), flags, mode);
  return ::open(t.path.c_str(), flags | O_NOFOLLOW, mode);
}

int UnlinkTarget(const Target& t) {
  return t.is_shm ? shm_unlink(t.shm_name.c_str()) : ::unlink(t.path.c_str());
}

// The highest version a segment of this build's layout holds: the header's,
// or a slot's (a publisher killed mid-publish, or a replacement that never
// published, leaves a slot above the header). Read with pread while we hold
// the flock, bounded by the file size, so a damaged header cannot fault.
uint64_t LastVersionIn(int fd, const layout::SegmentHeader& header, uint64_t file_size) {
  uint64_t last = header.version;
  if (header.slot_stride == 0 || header.slot_stride > file_size) return last;
  for (uint64_t i = 0; i < layout::kSlotCount && i < header.slot_count; ++i) {
    const uint64_t at = layout::kHeaderSize + i * header.slot_stride;
    if (at + sizeof(layout::SlotHeader) > file_size) break;
    layout::SlotHeader slot{};
    if (pread(fd, &slot, sizeof(slot), static_cast<off_t>(at)) == static_cast<ssize_t>(sizeof(slot))) {
      last = std::max(last, slot.version);
    }
  }
  return last;
}

// Copies 64-bit words with relaxed atomic stores: readers may be loading them.
void StoreWords(uint64_t* dst, const uint64_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) StoreRelaxed(dst + i, src[i]);
}

}  // namespace

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::variant<std::unique_ptr<SegmentWriter>, SegmentWriter::Failure> SegmentWriter::Open(const Options& options) {
  return OpenAfter(options, 0);
}

std::variant<std::unique_ptr<SegmentWriter>, SegmentWriter::Failure> SegmentWriter::OpenAfter(const Options& options,
                                                                                            uint64_t last_version) {
  auto resolved = Resolve(options.segment);
  if (auto* err = std::get_if<std::string>(&resolved)) return Failure{OpenError::kOther, *err};
  const Target target = std::get<Target>(resolved);
  if (options.capacity < layout::kMinSlotCapacity || options.capacity > layout::kMaxSlotCapacity) {
    return Failure{OpenError::kOther, "--capacity must be between " + std::to_string(layout::kMinSlotCapacity) +
                                          " bytes and " +
                                          std::to_string(layout::kMaxSlotCapacity) + " bytes"};
  }
  const uint64_t capacity = (options.capacity + 7) & ~uint64_t{7};
  const uint64_t size = layout::SegmentSize(capacity);

  std::unique_ptr<SegmentWriter> w(new SegmentWriter());
  w->location_ = target.path;
  w->shm_name_ = target.is_shm ? target.shm_name : std::string();
  w->capacity_ = capacity;
  w->stride_ = layout::SlotStride(capacity);
  w->size_ = size;

  // Create exclusively, or open what is there. Whoever wins the flock owns it.
  bool created = false;
  for (int attempt = 0; attempt < 8 && w->fd_ < 0; ++attempt) {
    int fd = OpenTarget(target, O_RDWR | O_CREAT | O_EXCL, options.mode);
    if (fd >= 0) {
      created = true;
    } else if (errno == EEXIST) {
      fd = OpenTarget(target, O_RDWR, 0);
      if (fd < 0 && errno == ENOENT) continue;  // unlinked in between: try creating again
    }
    if (fd < 0) {
      const int err = errno;
      return Failure{OpenError::kOther, Errno("cannot open segment " + target.path, err)};
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        std::string who;
        if (int rfd = OpenTarget(target, O_RDONLY, 0); rfd >= 0) {
          layout::SegmentHeader h{};
          if (pread(rfd, &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h)) && h.magic == layout::kMagic) {
            who = " (pid " + std::to_string(h.publisher_pid) + ")";
          }
          ::close(rfd);
        }
        return Failure{OpenError::kBusy, "another confcast-publisher" + who + " already publishes to segment " +
                                             target.path + "; only one publisher per segment"};
      }
      return Failure{OpenError::kOther, Errno("cannot lock segment " + target.path, err)};
    }
    w->fd_ = fd;
  }
  if (w->fd_ < 0) return Failure{OpenError::kOther, "cannot create segment " + target.path + ": it keeps disappearing"};

  // An existing segment: adopt it if it is ours and the same shape.
  if (!created) {
    struct stat st;
    if (fstat(w->fd_, &st) != 0) return Failure{OpenError::kOther, Errno("fstat " + target.path, errno)};
    layout::SegmentHeader old{};
    const bool readable = static_cast<uint64_t>(st.st_size) >= sizeof(old) &&
                          pread(w->fd_, &old, sizeof(old), 0) == static_cast<ssize_t>(sizeof(old));
    const bool same_layout = readable && old.magic == layout::kMagic && old.layout_version == layout::kLayoutVersion &&
                             old.layout_signature == layout::Signature();
    const bool same_shape = same_layout && old.slot_capacity == capacity && old.segment_size == size &&
                            old.slot_count == layout::kSlotCount && old.slot_stride == w->stride_ &&
                            static_cast<uint64_t>(st.st_size) == size;
    if (same_shape) {
      w->adopted_ = true;
    } else if (readable && (old.magic == layout::kMagic || st.st_size > 0)) {
      // Another shape: tell readers of the old one to reopen, then replace it.
      if (same_layout) {
        // Readers that reopen compare versions across the two segments, so
        // the new one continues the numbering. (Only a header of this layout
        // is known to mean what we read; another layout's words are not.)
        last_version = std::max(last_version, LastVersionIn(w->fd_, old, static_cast<uint64_t>(st.st_size)));
        uint32_t one = 1;
        if (pwrite(w->fd_, &one, sizeof(one), offsetof(layout::SegmentHeader, retired)) == sizeof(one)) {
          // Wake waiters so they notice promptly.
          if (void* p = mmap(nullptr, layout::kHeaderSize, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd_, 0);
              p != MAP_FAILED) {
            auto* h = static_cast<layout::SegmentHeader*>(p);
            __atomic_fetch_add(&h->change_futex, 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, &h->change_futex, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
            munmap(p, layout::kHeaderSize);
          }
        }
      }
      if (UnlinkTarget(target) != 0 && errno != ENOENT) {
        return Failure{OpenError::kOther, Errno("cannot replace segment " + target.path, errno)};
      }
      ::close(w->fd_);
      w->fd_ = -1;
      return OpenAfter(options, last_version);
    } else {
      created = true;  // a zero-sized leftover (a creator died before sizing it): initialise in place
    }
  }

  if (created) {
    if (fchmod(w->fd_, options.mode) != 0) return Failure{OpenError::kOther, Errno("fchmod " + target.path, errno)};
    if (ftruncate(w->fd_, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      UnlinkTarget(target);
      return Failure{OpenError::kOther, Errno("cannot size segment " + target.path + " to " + std::to_string(size) +
                                                  " bytes", err)};
    }
    // tmpfs allocates lazily: reserve now, so a full tmpfs is an error at
    // start and never a SIGBUS in a reader later.
    if (int err = posix_fallocate(w->fd_, 0, static_cast<off_t>(size)); err != 0 && err != EOPNOTSUPP) {
      UnlinkTarget(target);
      return Failure{OpenError::kOther, Errno("no room for segment " + target.path + " (" + std::to_string(size) +
                                                  " bytes)", err)};
    }
  }

  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd_, 0);
  if (base == MAP_FAILED) return Failure{OpenError::kOther, Errno("cannot map segment " + target.path, errno)};
  w->base_ = static_cast<uint8_t*>(base);
  layout::SegmentHeader* h = w->header();

  if (created) {
    std::memset(w->base_, 0, layout::kHeaderSize);  // magic stays 0 until the header is complete
    h->layout_version = layout::kLayoutVersion;
    h->layout_signature = layout::Signature();
    h->segment_size = size;
    h->slot_capacity = capacity;
    h->slot_count = layout::kSlotCount;
    h->slot_header_size = sizeof(layout::SlotHeader);
    h->slot_stride = w->stride_;
    h->created_unix_ns = RealtimeNs();
    for (uint32_t i = 0; i < layout::kSlotCount; ++i) std::memset(w->slot(i), 0, sizeof(layout::SlotHeader));
    // The replaced segment's last version goes into the slot the first
    // publish writes (never the active one, which readers look at), so that
    // Publish() continues after it, even in a successor if we die before
    // publishing. h->version stays 0: nothing is published yet.
    if (last_version != 0) w->slot((h->active_slot + 1) % layout::kSlotCount)->version = last_version;
    StoreRelease(&h->magic, layout::kMagic);
  }
  StoreRelease(&h->publisher_pid, static_cast<int32_t>(getpid()));
  w->Heartbeat(RealtimeNs());
  // Counters describe this publisher's lifetime, as its /metrics do.
  w->stats_ = layout::Stats{};
  w->WriteStats();
  return w;
}

SegmentWriter::~SegmentWriter() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
}

layout::SlotHeader* SegmentWriter::slot(uint64_t i) const {
  return reinterpret_cast<layout::SlotHeader*>(base_ + layout::kHeaderSize + i * stride_);
}
uint64_t* SegmentWriter::slot_data(uint64_t i) const {
  return reinterpret_cast<uint64_t*>(base_ + layout::kHeaderSize + i * stride_ + sizeof(layout::SlotHeader));
}

uint64_t SegmentWriter::version() const { return detail::LoadAcquire(&header()->version); }

bool SegmentWriter::ActiveEquals(const uint64_t* words, size_t n_words,
                                 const std::array<unsigned char, 32>& sha256) const {
  // Only this process writes, so plain reads of our own segment are exact.
  const uint64_t active = detail::LoadAcquire(&header()->active_slot);
  if (active >= layout::kSlotCount || version() == 0) return false;
  const layout::SlotHeader* s = slot(active);
  if ((s->seq & 1) != 0 || s->data_size != n_words * 8) return false;
  if (std::memcmp(s->sha256, sha256.data(), 32) != 0) return false;
  return std::memcmp(slot_data(active), words, n_words * 8) == 0;
}

uint64_t SegmentWriter::Publish(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                                int64_t now_unix_ns) {
  layout::SegmentHeader* h = header();
  const uint64_t active = detail::LoadAcquire(&h->active_slot) % layout::kSlotCount;
  const uint64_t target = (active + 1) % layout::kSlotCount;
  // Continue after anything any earlier publisher wrote, even an aborted slot.
  uint64_t next = h->version;
  for (uint32_t i = 0; i < layout::kSlotCount; ++i) next = std::max(next, slot(i)->version);
  ++next;

  layout::SlotHeader* s = slot(target);
  const uint64_t seq = s->seq;
  const uint64_t odd = (seq & 1) ? seq + 2 : seq + 1;  // odd even if a dead writer left it odd
  StoreRelaxed(&s->seq, odd);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  StoreRelaxed(&s->version, next);
  StoreRelaxed(&s->published_unix_ns, now_unix_ns);
  StoreRelaxed(&s->data_size, static_cast<uint64_t>(n_words * 8));
  uint64_t hash_words[4];
  std::memcpy(hash_words, sha256.data(), 32);
  StoreWords(reinterpret_cast<uint64_t*>(s->sha256), hash_words, 4);
  StoreWords(slot_data(target), words, n_words);
  StoreRelease(&s->seq, odd + 1);
  StoreRelease(&h->active_slot, target);
  StoreRelease(&h->version, next);
  __atomic_fetch_add(&h->change_futex, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, &h->change_futex, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  return next;
}

void SegmentWriter::RemoveIfCreatedAndEmpty() {
  if (adopted_ || version() != 0) return;
  // We still hold the flock, so no other publisher can have adopted it.
  if (shm_name_.empty()) {
    ::unlink(location_.c_str());
  } else {
    shm_unlink(shm_name_.c_str());
  }
}

void SegmentWriter::Heartbeat(int64_t now_unix_ns) { StoreRelease(&header()->heartbeat_unix_ns, now_unix_ns); }

void SegmentWriter::WriteStats() {
  // Linux seqcount_latch: bump the sequence (readers switch to the other
  // copy), write the copy they left, twice. A writer killed at any point
  // leaves one complete copy selected.
  layout::SegmentHeader* h = header();
  uint64_t words[sizeof(layout::Stats) / 8];
  std::memcpy(words, &stats_, sizeof(stats_));
  for (int pass = 0; pass < 2; ++pass) {
    const uint64_t seq = h->stats_seq + 1;
    StoreRelease(&h->stats_seq, seq);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    StoreWords(reinterpret_cast<uint64_t*>(&h->stats[(seq & 1) ^ 1]), words, sizeof(words) / 8);
  }
}

}  // namespace confcast::publisher
