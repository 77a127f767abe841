#include "segment_writer.hpp"

#include <dirent.h>
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
#include <cstdio>
#include <cstring>
#include <stdexcept>

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

// A replacement segment is built under a temporary name in the directory of
// the segment's own name (rename(2) is atomic only within one filesystem):
// "NAME.confcast-new-PID" beside NAME. The pid keeps two publishers' names
// apart; the fixed stem lets a later publisher find what a killed one left.
// A name too long for NAME_MAX with the suffix is cut and given a hash of
// the whole name, so two long names that share a beginning stay apart.
struct TempNames {
  std::string dir;   // "/dev/shm" or the file segment's directory
  std::string stem;  // file name up to the pid
};
TempNames TempNamesFor(const Target& t) {
  std::string dir, base;
  if (t.is_shm) {
    dir = "/dev/shm";
    base = t.shm_name.substr(1);
  } else {
    const size_t slash = t.path.rfind('/');
    dir = slash == 0 ? "/" : t.path.substr(0, slash);
    base = t.path.substr(slash + 1);
  }
  const std::string suffix = ".confcast-new-";
  if (base.size() + suffix.size() + 10 > NAME_MAX) {  // 10: the digits of any pid
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : base) h = (h ^ c) * 1099511628211ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    base = base.substr(0, 160) + "~" + hex;
  }
  return {dir, base + suffix};
}
Target TempTarget(const Target& t, const TempNames& names, pid_t pid) {
  const std::string file = names.stem + std::to_string(pid);
  const std::string path = (names.dir == "/" ? "" : names.dir) + "/" + file;
  return Target{t.is_shm, t.is_shm ? "/" + file : std::string(), path};
}

// Removes what a publisher killed during a replacement left: "STEM<digits>"
// files whose flock nobody holds. Called only while holding the flock of the
// segment under the real name, which every publisher of that name holds for
// as long as it has a temporary of it (from before creating it until after
// renaming it), so a live one's is never removed; the flock test is a second
// guard, e.g. against a name cut to the same stem.
void RemoveStaleTemporaries(const Target& t) {
  const TempNames names = TempNamesFor(t);
  DIR* dir = opendir(names.dir.c_str());
  if (dir == nullptr) return;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() <= names.stem.size() || name.compare(0, names.stem.size(), names.stem) != 0) continue;
    if (name.find_first_not_of("0123456789", names.stem.size()) != std::string::npos) continue;
    const std::string path = (names.dir == "/" ? "" : names.dir) + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(path.c_str());
    ::close(fd);
  }
  closedir(dir);
}

// Sizes, reserves and maps a segment just created (fd), and writes its
// header; the first publish continues after last_version. Returns the
// mapping, or a message (the caller removes the file).
std::variant<uint8_t*, std::string> InitNewSegment(int fd, const std::string& where, mode_t mode, uint64_t capacity,
                                                   uint64_t last_version) {
  const uint64_t size = layout::SegmentSize(capacity);
  const uint64_t stride = layout::SlotStride(capacity);
  if (fchmod(fd, mode) != 0) return Errno("fchmod " + where, errno);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return Errno("cannot size segment " + where + " to " + std::to_string(size) + " bytes", errno);
  }
  // tmpfs allocates lazily: reserve now, so a full tmpfs is an error here
  // and never a SIGBUS in a reader later.
  if (int err = posix_fallocate(fd, 0, static_cast<off_t>(size)); err != 0 && err != EOPNOTSUPP) {
    return Errno("no room for segment " + where + " (" + std::to_string(size) + " bytes)", err);
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Errno("cannot map segment " + where, errno);
  auto* base = static_cast<uint8_t*>(p);
  auto* h = reinterpret_cast<layout::SegmentHeader*>(base);
  std::memset(base, 0, layout::kHeaderSize);  // magic stays 0 until the header is complete
  h->layout_version = layout::kLayoutVersion;
  h->layout_signature = layout::Signature();
  h->segment_size = size;
  h->slot_capacity = capacity;
  h->slot_count = layout::kSlotCount;
  h->slot_header_size = sizeof(layout::SlotHeader);
  h->slot_stride = stride;
  h->created_unix_ns = RealtimeNs();
  for (uint32_t i = 0; i < layout::kSlotCount; ++i) {
    std::memset(base + layout::kHeaderSize + i * stride, 0, sizeof(layout::SlotHeader));
  }
  // The replaced segment's last version goes into the slot the first
  // publish writes (never the active one, which readers look at), so that
  // Publish() continues after it, even in a successor if we die before
  // publishing. h->version stays 0: nothing is published yet.
  if (last_version != 0) {
    reinterpret_cast<layout::SlotHeader*>(base + layout::kHeaderSize +
                                          ((h->active_slot + 1) % layout::kSlotCount) * stride)
        ->version = last_version;
  }
  StoreRelease(&h->magic, layout::kMagic);
  return base;
}

}  // namespace

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::variant<std::unique_ptr<SegmentWriter>, SegmentWriter::Failure> SegmentWriter::Open(const Options& options) {
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
  w->mode_ = options.mode;
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
  // We hold the name's flock: no live publisher of this name has a temporary.
  RemoveStaleTemporaries(target);

  // An existing segment: adopt it if it is ours and the same shape.
  if (!created) {
    struct stat st;
    if (fstat(w->fd_, &st) != 0) return Failure{OpenError::kOther, Errno("fstat " + target.path, errno)};
    layout::SegmentHeader old{};
    const bool readable = static_cast<uint64_t>(st.st_size) >= sizeof(old) &&
                          pread(w->fd_, &old, sizeof(old), 0) == static_cast<ssize_t>(sizeof(old));
    const bool same_layout = readable && old.magic == layout::kMagic && old.layout_version == layout::kLayoutVersion &&
                             old.layout_signature == layout::Signature() &&
                             static_cast<uint64_t>(st.st_size) >= layout::kHeaderSize;
    const bool same_shape = same_layout && old.slot_capacity == capacity && old.segment_size == size &&
                            old.slot_count == layout::kSlotCount && old.slot_stride == w->stride_ &&
                            static_cast<uint64_t>(st.st_size) == size;
    if (same_shape) {
      w->adopted_ = true;
    } else if (readable && (old.magic == layout::kMagic || st.st_size > 0)) {
      // Another shape. Replacing it now would leave workers with nothing (or
      // an empty segment) if the first config turns out bad; keep it, and
      // its flock, until Publish() has a good snapshot for the new one.
      w->pending_ = true;
      w->size_ = 0;
      if (same_layout) {
        // Readers that reopen compare versions across the two segments, so
        // the new one continues the numbering. (Only a header of this layout
        // is known to mean what we read; another layout's words are not.)
        w->pending_last_version_ = LastVersionIn(w->fd_, old, static_cast<uint64_t>(st.st_size));
        w->replaced_shape_ = "capacity " + std::to_string(old.slot_capacity);
        // The header page only: stats, heartbeat, version, retired and the
        // futex are all there, and it exists whatever the old capacity.
        void* p = mmap(nullptr, layout::kHeaderSize, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd_, 0);
        if (p == MAP_FAILED) return Failure{OpenError::kOther, Errno("cannot map segment " + target.path, errno)};
        w->base_ = static_cast<uint8_t*>(p);
        w->size_ = layout::kHeaderSize;
      } else {
        w->replaced_shape_ = old.magic == layout::kMagic ? "another layout" : "not a confcast segment";
      }
    } else {
      created = true;  // a zero-sized leftover (a creator died before sizing it): initialise in place
    }
  }

  if (created) {
    auto init = InitNewSegment(w->fd_, target.path, options.mode, capacity, 0);
    if (auto* err = std::get_if<std::string>(&init)) {
      UnlinkTarget(target);
      return Failure{OpenError::kOther, *err};
    }
    w->base_ = std::get<uint8_t*>(init);
  } else if (w->adopted_) {
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd_, 0);
    if (base == MAP_FAILED) return Failure{OpenError::kOther, Errno("cannot map segment " + target.path, errno)};
    w->base_ = static_cast<uint8_t*>(base);
  }
  // Counters describe this publisher's lifetime, as its /metrics do.
  w->stats_ = layout::Stats{};
  if (w->base_) {
    StoreRelease(&w->header()->publisher_pid, static_cast<int32_t>(getpid()));
    w->Heartbeat(RealtimeNs());
    w->WriteStats();
  }
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

uint64_t SegmentWriter::version() const { return base_ ? detail::LoadAcquire(&header()->version) : 0; }

bool SegmentWriter::ActiveEquals(const uint64_t* words, size_t n_words,
                                 const std::array<unsigned char, 32>& sha256) const {
  if (pending_) return false;
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
  if (pending_) return Replace(words, n_words, sha256, now_unix_ns);
  return PublishInPlace(words, n_words, sha256, now_unix_ns);
}

uint64_t SegmentWriter::PublishInPlace(const uint64_t* words, size_t n_words,
                                       const std::array<unsigned char, 32>& sha256, int64_t now_unix_ns) {
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

// What a SIGKILL leaves at each step (we hold the old segment's flock
// throughout, so no other publisher of this name runs meanwhile):
//   1-5 (temporary created .. filled): the old segment, untouched, still
//       under the name and serving; a stale NAME.confcast-new-PID, which
//       the next publisher of this name removes when it opens the segment.
//   6 (rename done, old not yet retired): the new segment under the name,
//       complete; readers of the old one keep its data and only learn to
//       reopen at their next open (Wait does not return INCOMPATIBLE);
//       nothing stale is left.
//   7 (retired): the finished replacement.
uint64_t SegmentWriter::Replace(const uint64_t* words, size_t n_words, const std::array<unsigned char, 32>& sha256,
                                int64_t now_unix_ns) {
  const Target target{!shm_name_.empty(), shm_name_, location_};
  const Target temp = TempTarget(target, TempNamesFor(target), getpid());

  // 1. Create the temporary. One of our own pid's can only be a dead
  // process's (pid reuse): we hold the name's flock, and remove ours on failure.
  int fd = OpenTarget(temp, O_RDWR | O_CREAT | O_EXCL, mode_);
  if (fd < 0 && errno == EEXIST) {
    UnlinkTarget(temp);
    fd = OpenTarget(temp, O_RDWR | O_CREAT | O_EXCL, mode_);
  }
  if (fd < 0) throw std::runtime_error(Errno("cannot create the replacement segment " + temp.path, errno));

  // Undoes 1-5 on any failure (or exception) before the rename.
  struct Undo {
    const Target& temp;
    int fd;
    uint8_t* base = nullptr;
    uint64_t size = 0;
    bool armed = true;
    ~Undo() {
      if (!armed) return;
      if (base) munmap(base, size);
      UnlinkTarget(temp);
      ::close(fd);
    }
  } undo{temp, fd};

  // 2. Lock it before it can carry the name: a publisher that opens the name
  // after the rename must find it taken.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) throw std::runtime_error(Errno("cannot lock " + temp.path, errno));

  // 3. Size, reserve and initialise it, numbered after the old segment.
  auto init = InitNewSegment(fd, temp.path, mode_, capacity_, pending_last_version_);
  if (auto* err = std::get_if<std::string>(&init)) {
    throw std::runtime_error("cannot replace segment " + location_ + " (capacity " + std::to_string(capacity_) +
                             "): " + *err);
  }
  const uint64_t new_size = layout::SegmentSize(capacity_);
  undo.base = std::get<uint8_t*>(init);
  undo.size = new_size;

  // 4-5. Fill it as a publisher of it would: liveness, the counters, then the
  // version (counters first, as in every publish). Members point at it for
  // PublishInPlace; the old segment's stay in locals until the rename.
  const int old_fd = fd_;
  uint8_t* const old_base = base_;
  const uint64_t old_size = size_;
  fd_ = fd;
  base_ = undo.base;
  size_ = new_size;
  struct Restore {
    SegmentWriter* w;
    int fd;
    uint8_t* base;
    uint64_t size;
    bool armed = true;
    ~Restore() {
      if (!armed) return;
      w->fd_ = fd;
      w->base_ = base;
      w->size_ = size;
    }
  } restore{this, old_fd, old_base, old_size};
  StoreRelease(&header()->publisher_pid, static_cast<int32_t>(getpid()));
  Heartbeat(now_unix_ns);
  WriteStats();
  const uint64_t version = PublishInPlace(words, n_words, sha256, now_unix_ns);

  // 6. The name moves to the new segment in one step: an opener gets the old
  // one or the new one, never nothing.
  if (::rename(temp.path.c_str(), target.path.c_str()) != 0) {
    throw std::runtime_error(Errno("cannot rename " + temp.path + " over " + target.path, errno));
  }
  undo.armed = false;
  restore.armed = false;
  pending_ = false;

  // 7. Only now tell the old segment's readers to reopen: they find the new
  // one. (Before the rename they would have reopened the old one.)
  if (old_base) {
    auto* h = reinterpret_cast<layout::SegmentHeader*>(old_base);
    StoreRelease(&h->retired, uint32_t{1});
    __atomic_fetch_add(&h->change_futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &h->change_futex, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    munmap(old_base, old_size);
  }
  ::close(old_fd);  // its flock goes with it; the name is the new segment's
  return version;
}

void SegmentWriter::RemoveIfCreatedAndEmpty() {
  // A pending replacement created nothing, and the old segment is what workers read.
  if (pending_ || adopted_ || version() != 0) return;
  // We still hold the flock, so no other publisher can have adopted it.
  if (shm_name_.empty()) {
    ::unlink(location_.c_str());
  } else {
    shm_unlink(shm_name_.c_str());
  }
}

void SegmentWriter::Heartbeat(int64_t now_unix_ns) {
  if (base_) StoreRelease(&header()->heartbeat_unix_ns, now_unix_ns);
}

void SegmentWriter::WriteStats() {
  if (!base_) return;  // a foreign layout while pending: kept in stats_, written into the replacement
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
