#include "segment_writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
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

#include "confcast/segment_trust.hpp"
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

// Plain POSIX, not Boost.Interprocess: Boost's create/open take no
// O_NOFOLLOW, O_EXCL-then-fstat or mode of our choosing on this descriptor.
int OpenTarget(const Target& t, int flags, mode_t mode) {
  flags |= O_CLOEXEC;
  if (t.is_shm) return shm_open(t.shm_name.c_str(), flags, mode);
  return ::open(t.path.c_str(), flags | O_NOFOLLOW, mode);
}

int UnlinkTarget(const Target& t) {
  return t.is_shm ? shm_unlink(t.shm_name.c_str()) : ::unlink(t.path.c_str());
}

// What an open of a file we create or adopt failed with, naming who owns it
// when that is the reason.
std::string OpenRefusal(const char* what, const std::string& path, int err) {
  struct stat st;
  if (err == ELOOP) return std::string("refusing the ") + what + " " + path + ": it is a symbolic link";
  if (err == EACCES && ::lstat(path.c_str(), &st) == 0) {
    return std::string("cannot open the ") + what + " " + path + " for writing (" + std::strerror(err) + "): " +
           trust::DescribeOwnerAndMode(st) + "; remove it, or use a segment path in a directory only the "
           "publisher's user can write (e.g. /run/confcast/NAME)";
  }
  return Errno(std::string("cannot open ") + what + " " + path, err);
}

std::string SquatMessage(const char* what, const std::string& path, const std::string& why) {
  return std::string("refusing to use the ") + what + " " + path + ": " + why +
         ". Workers would read whatever its owner writes there. On a shared /dev/shm any local user can create "
         "the name first: remove the file, or use a segment path in a directory only the publisher's user can "
         "write (e.g. /run/confcast/NAME, or a Kubernetes emptyDir)";
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

// Files that belong to a segment sit beside its name, in the same directory
// (rename(2) is atomic only within one filesystem), named NAME + a suffix:
//   NAME.confcast-lock       the publisher lock (publisher_lock.hpp)
//   NAME.confcast-new-PID    a replacement being built; the pid keeps two
//                            publishers' apart, the fixed stem lets a later
//                            publisher find what a killed one left.
// A name too long for NAME_MAX with a suffix is cut and given a hash of the
// whole name, so two long names that share a beginning stay apart.
struct SiblingNames {
  std::string dir;   // "/dev/shm" or the file segment's directory
  std::string stem;  // NAME (perhaps cut) + suffix
  std::string PathOf(const std::string& file) const { return (dir == "/" ? "" : dir) + "/" + file; }
};
SiblingNames SiblingsOf(const Target& t, const std::string& suffix) {
  std::string dir, base;
  if (t.is_shm) {
    dir = "/dev/shm";
    base = t.shm_name.substr(1);
  } else {
    const size_t slash = t.path.rfind('/');
    dir = slash == 0 ? "/" : t.path.substr(0, slash);
    base = t.path.substr(slash + 1);
  }
  if (base.size() + suffix.size() + 10 > NAME_MAX) {  // 10: the digits of any pid
    uint64_t h = 14695981039346656037ull;
    for (unsigned char c : base) h = (h ^ c) * 1099511628211ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    base = base.substr(0, 160) + "~" + hex;
  }
  return {dir, base + suffix};
}
SiblingNames TempNamesFor(const Target& t) { return SiblingsOf(t, ".confcast-new-"); }
Target TempTarget(const Target& t, const SiblingNames& names, pid_t pid) {
  const std::string file = names.stem + std::to_string(pid);
  return Target{t.is_shm, t.is_shm ? "/" + file : std::string(), names.PathOf(file)};
}
Target LockTarget(const Target& t) {
  const SiblingNames names = SiblingsOf(t, ".confcast-lock");
  return Target{t.is_shm, t.is_shm ? "/" + names.stem : std::string(), names.PathOf(names.stem)};
}

// Removes what a publisher killed during a replacement left: "STEM<digits>"
// regular files of our own user. Called only while holding the publisher
// lock, which every publisher of the name holds for as long as it has a
// temporary, so no live publisher's is removed. Another user's file of that
// name is left alone: it was never ours to build on.
void RemoveStaleTemporaries(const Target& t) {
  const SiblingNames names = TempNamesFor(t);
  DIR* dir = opendir(names.dir.c_str());
  if (dir == nullptr) return;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() <= names.stem.size() || name.compare(0, names.stem.size(), names.stem) != 0) continue;
    if (name.find_first_not_of("0123456789", names.stem.size()) != std::string::npos) continue;
    const std::string path = names.PathOf(name);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) ::unlink(path.c_str());
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
  // and never a SIGBUS in a reader later (Boost's truncate only ftruncates).
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

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
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
  if ((options.mode & trust::kForeignWriteBits) != 0 || (options.mode & ~mode_t{0777}) != 0) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(options.mode));
    return Failure{OpenError::kOther, std::string("--segment-mode ") + mode +
                                          " is refused: only the publisher may write the segment, so group and "
                                          "other users get read access at most (e.g. 0640 or 0644), and no "
                                          "setuid, setgid or sticky bits"};
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

  // An flock on a 0200 lock file (publisher_lock.cc), not Boost's file_lock,
  // which only opens an existing file read-write: no O_CREAT, mode or O_NOFOLLOW.
  auto lock = PublisherLock::Acquire(LockTarget(target).path);
  if (auto* failure = std::get_if<PublisherLock::Failure>(&lock)) {
    if (!failure->busy) return Failure{OpenError::kOther, failure->message};
    std::string who;
    if (int rfd = OpenTarget(target, O_RDONLY | O_NONBLOCK, 0); rfd >= 0) {
      layout::SegmentHeader h{};
      struct stat st;
      if (fstat(rfd, &st) == 0 && S_ISREG(st.st_mode) &&
          pread(rfd, &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h)) && h.magic == layout::kMagic) {
        who = " (pid " + std::to_string(h.publisher_pid) + ")";
      }
      ::close(rfd);
    }
    return Failure{OpenError::kBusy, "another confcast-publisher" + who + " already publishes to segment " +
                                         target.path + " (it holds " + failure->message +
                                         "); only one publisher per segment"};
  }
  w->lock_ = std::move(std::get<PublisherLock>(lock));
  // A publisher that gives up here (a segment it must refuse, no room) takes
  // back a lock file it made, so it leaves the name as it found it.
  struct DropNewLockOnFailure {
    SegmentWriter* w;
    bool armed = true;
    ~DropNewLockOnFailure() {
      if (armed && w->lock_.created()) w->lock_.RemoveAndRelease();
    }
  } drop_new_lock{w.get()};

  // We hold the lock, so no other publisher creates, replaces or removes the
  // segment now. Create it exclusively, or open what is there and check that
  // it is ours before reading a byte of it.
  bool created = false;
  for (int attempt = 0; attempt < 8 && w->fd_ < 0; ++attempt) {
    int fd = OpenTarget(target, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, options.mode);
    if (fd >= 0) {
      created = true;
    } else if (errno == EEXIST) {
      fd = OpenTarget(target, O_RDWR | O_NONBLOCK, 0);
      if (fd < 0 && errno == ENOENT) continue;  // removed in between (by hand): try creating again
    }
    if (fd < 0) {
      const int err = errno;
      return Failure{OpenError::kOther, OpenRefusal("segment", target.path, err)};
    }
    if (!created) {
      struct stat st;
      if (fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return Failure{OpenError::kOther, Errno("fstat " + target.path, err)};
      }
      if (std::string why = trust::PublisherRefusal(st, geteuid(), /*no_foreign_access=*/false); !why.empty()) {
        ::close(fd);
        return Failure{OpenError::kOther, SquatMessage("segment", target.path, why)};
      }
    }
    w->fd_ = fd;
  }
  if (w->fd_ < 0) return Failure{OpenError::kOther, "cannot create segment " + target.path + ": it keeps disappearing"};
  // We hold the lock: no live publisher of this name has a temporary.
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
      // --segment-mode decides who may read, also for a segment kept across restarts.
      if ((st.st_mode & 07777) != options.mode && fchmod(w->fd_, options.mode) != 0) {
        return Failure{OpenError::kOther, Errno("fchmod " + target.path, errno)};
      }
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
  drop_new_lock.armed = false;
  return w;
}

SegmentWriter::~SegmentWriter() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
  // lock_ is released last. Its file stays beside the segment: on a shared
  // /dev/shm, a name we keep is a name nobody else can take.
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

// What a SIGKILL leaves at each step (we hold the publisher lock
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
  // process's (pid reuse): we hold the publisher lock, and remove ours on
  // failure. O_EXCL: a file someone else put at that name is never used.
  int fd = OpenTarget(temp, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, mode_);
  if (fd < 0 && errno == EEXIST) {
    struct stat st;
    if (::lstat(temp.path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) UnlinkTarget(temp);
    fd = OpenTarget(temp, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, mode_);
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

  // 2. (No lock of its own: the publisher lock beside the name guards the
  // segment under every inode the name stands for.)

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
  ::close(old_fd);
  return version;
}

void SegmentWriter::RemoveIfCreatedAndEmpty() {
  // A pending replacement created nothing, and the old segment is what workers read.
  if (pending_ || adopted_ || version() != 0) return;
  // We still hold the publisher lock, so no other publisher can have adopted it.
  if (shm_name_.empty()) {
    ::unlink(location_.c_str());
  } else {
    shm_unlink(shm_name_.c_str());
  }
  lock_.RemoveAndRelease();  // nothing left to guard
}

void SegmentWriter::Heartbeat(int64_t now_unix_ns) {
  if (!base_) return;
  StoreRelease(&header()->heartbeat_mono_ns, MonotonicNs());
  StoreRelease(&header()->heartbeat_unix_ns, now_unix_ns);
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
