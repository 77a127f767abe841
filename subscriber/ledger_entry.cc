// ledger_entry.cc - registering this process in a worker ledger, and its
// holds (ledger_entry.hpp; the entry's bytes are drawn in layout.hpp).
#include "ledger_entry.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "confcast/confcast.h"
#include "ledger.hpp"

namespace confcast::ledger {
namespace {

constexpr int kOrder = __ATOMIC_SEQ_CST;  // a hold is ordered before the version check that follows it

// Every live Membership of this process, for Join to share and for the
// fork handler to renew. A leaked mutex: it must outlive static destructors.
std::mutex& RegistryMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::vector<std::weak_ptr<Membership>>& Registry() {
  static auto* r = new std::vector<std::weak_ptr<Membership>>;
  return *r;
}

void BeforeFork() { RegistryMutex().lock(); }
void AfterForkInParent() { RegistryMutex().unlock(); }
void AfterForkInChild() {
  // The child runs one thread and may be about to exec: only system calls
  // here (the registration itself waits for the child's next Hold or Join).
  // The mutex was taken by BeforeFork.
  for (auto& weak : Registry()) {
    if (std::shared_ptr<Membership> m = weak.lock()) m->StartOverInChild();
  }
  RegistryMutex().unlock();
}

bool CasWord(uint64_t* word, uint64_t* expected, uint64_t desired) noexcept {
  return __atomic_compare_exchange_n(word, expected, desired, false, kOrder, __ATOMIC_RELAXED);
}

size_t CountEntries(int dfd) {
  const int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return kMaxEntries;
  DIR* d = fdopendir(dup_fd);
  if (d == nullptr) {
    ::close(dup_fd);
    return kMaxEntries;
  }
  size_t n = 0;
  const size_t prefix_len = std::strlen(layout::kLedgerEntryPrefix);
  while (dirent* ent = readdir(d)) {
    if (std::strncmp(ent->d_name, layout::kLedgerEntryPrefix, prefix_len) == 0 && ++n >= kMaxEntries) break;
  }
  closedir(d);
  return n;
}

}  // namespace

std::shared_ptr<Membership> Membership::Join(const std::string& ledger_dir, uid_t segment_owner,
                                             std::string* why) noexcept {
  try {
    static std::once_flag fork_handler;
    std::call_once(fork_handler, [] { pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild); });
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto& registry = Registry();
    registry.erase(std::remove_if(registry.begin(), registry.end(), [](auto& w) { return w.expired(); }),
                   registry.end());
    for (auto& weak : registry) {
      std::shared_ptr<Membership> m = weak.lock();
      if (m && m->dir_ == ledger_dir && m->owner_ == segment_owner) {
        if (m->forked_.load(std::memory_order_relaxed)) m->RenewLocked(why);
        return m;
      }
    }
    std::shared_ptr<Membership> m(new Membership(ledger_dir, segment_owner));
    if (!m->Register(why)) m->MapPrivate();
    if (m->entry_ == nullptr) return nullptr;
    registry.push_back(m);
    return m;
  } catch (...) {
    return nullptr;
  }
}

Membership::~Membership() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Unregister();
  if (entry_ != nullptr) munmap(entry_, sizeof(layout::LedgerEntry));
}

void Membership::Unregister() noexcept {
  if (!name_.empty()) {
    // Only the name that still stands for our file: a newer entry of this
    // process may have taken it since.
    const std::string path = dir_ + "/" + name_;
    struct stat mine, there;
    if (fstat(fd_, &mine) == 0 && lstat(path.c_str(), &there) == 0 && mine.st_ino == there.st_ino &&
        mine.st_dev == there.st_dev) {
      unlink(path.c_str());
    }
    name_.clear();
  }
  if (fd_ >= 0) ::close(fd_);  // releases the lock
  fd_ = -1;
}

void Membership::MapPrivate() noexcept {
  const int fixed = entry_ != nullptr ? MAP_FIXED : 0;
  void* p = mmap(entry_, sizeof(layout::LedgerEntry), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | fixed,
                 -1, 0);
  entry_ = p == MAP_FAILED ? nullptr : static_cast<layout::LedgerEntry*>(p);
}

bool Membership::Register(std::string* why) noexcept {
  try {
    auto fail = [&](const std::string& what) {
      if (why) *why = dir_ + ": " + what;
      return false;
    };
    const int pid = getpid();
    const std::optional<uint64_t> start = ProcessStartTime(pid);
    const uint64_t pidns = OwnPidNamespace();
    if (!start || pidns == 0) return fail("cannot read this process's identity from /proc");
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return fail(std::string("no ledger directory: ") + std::strerror(errno));
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } dir_closer{dfd};
    struct stat dst;
    if (fstat(dfd, &dst) != 0) return fail(std::strerror(errno));
    if (std::string refusal = DirectoryRefusal(dst, owner_); !refusal.empty()) return fail("not trusted: " + refusal);
    if (CountEntries(dfd) >= kMaxEntries) return fail("the ledger is full");
    const int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) return fail(std::string("cannot create an entry: ") + std::strerror(errno));
    fd_ = fd;
    auto undo = [&](const std::string& what) {
      ::close(fd_);
      fd_ = -1;
      return fail(what);
    };
    // Readable by whoever may list the directory (the publisher, confcastctl), whatever the umask.
    if (fchmod(fd, 0644) != 0 || ftruncate(fd, sizeof(layout::LedgerEntry)) != 0 ||
        flock(fd, LOCK_EX | LOCK_NB) != 0) {
      return undo(std::string("cannot prepare an entry: ") + std::strerror(errno));
    }
    const int fixed = entry_ != nullptr ? MAP_FIXED : 0;
    void* p = mmap(entry_, sizeof(layout::LedgerEntry), PROT_READ | PROT_WRITE, MAP_SHARED | fixed, fd, 0);
    if (p == MAP_FAILED) return undo(std::string("cannot map an entry: ") + std::strerror(errno));
    entry_ = static_cast<layout::LedgerEntry*>(p);
    layout::LedgerEntry* e = entry_;
    e->layout_version = layout::kLedgerLayoutVersion;
    e->entry_size = sizeof(layout::LedgerEntry);
    e->pid = pid;
    e->hold_slots = layout::kHoldSlots;
    e->start_time = *start;
    e->pid_namespace = pidns;
    __atomic_store_n(&e->magic, layout::kLedgerMagic, __ATOMIC_RELEASE);
    const std::string name = std::string(layout::kLedgerEntryPrefix) + std::to_string(pidns) + "-" +
                             std::to_string(pid) + "-" + std::to_string(*start);
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (linkat(AT_FDCWD, proc.c_str(), dfd, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        name_ = name;
        return true;
      }
      // The same name: an earlier entry of this very process (same pid and
      // start time), which it no longer uses.
      if (errno != EEXIST || unlinkat(dfd, name.c_str(), 0) != 0) break;
    }
    const std::string reason = std::string("cannot name the entry: ") + std::strerror(errno);
    MapPrivate();  // over the shared mapping, at the same address
    return undo(reason);
  } catch (...) {
    return false;
  }
}

void Membership::StartOverInChild() noexcept {
  // Async-signal-safe calls only: a child of a threaded process may only
  // make those before it execs (and most children exec at once).
  if (fd_ >= 0) ::close(fd_);  // the child's copy: the parent keeps its lock
  fd_ = -1;
  name_.clear();  // keeps its buffer: no allocator call
  MapPrivate();   // over the parent's entry, at the same address: the child never writes the parent's
  forked_.store(true, std::memory_order_relaxed);
}

void Membership::RenewLocked(std::string* why) noexcept {
  forked_.store(false, std::memory_order_relaxed);
  if (!Register(why)) MapPrivate();
}

void Membership::Renew() noexcept {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (forked_.load(std::memory_order_relaxed)) RenewLocked(nullptr);
}

int Membership::Hold(uint64_t version) noexcept {
  if (version == 0 || version > layout::kHoldVersionMax) return CONFCAST_ERR_INVALID;
  // A fork()ed child registers on its first hold (or open), not in the fork handler.
  if (__builtin_expect(forked_.load(std::memory_order_relaxed), 0)) Renew();
  uint64_t* holds = entry_->holds;
  for (uint32_t i = 0; i < layout::kHoldSlots; ++i) {
    uint64_t w = __atomic_load_n(&holds[i], __ATOMIC_RELAXED);
    while (layout::HoldVersion(w) == version && layout::HoldCount(w) != 0 && layout::HoldCount(w) < layout::kHoldCountMax) {
      if (CasWord(&holds[i], &w, w + 1)) return CONFCAST_OK;
    }
  }
  for (uint32_t i = 0; i < layout::kHoldSlots; ++i) {
    uint64_t w = 0;
    if (__atomic_load_n(&holds[i], __ATOMIC_RELAXED) == 0 && CasWord(&holds[i], &w, layout::PackHold(version, 1))) {
      return CONFCAST_OK;
    }
  }
  uint64_t w = __atomic_load_n(&entry_->overflow, __ATOMIC_RELAXED);
  for (;;) {
    const uint64_t count = layout::HoldCount(w);
    if (count == layout::kHoldCountMax) return CONFCAST_ERR_SYSTEM;
    const uint64_t oldest = count == 0 ? version : std::min(layout::HoldVersion(w), version);
    if (CasWord(&entry_->overflow, &w, layout::PackHold(oldest, count + 1))) return CONFCAST_OK;
  }
}

int Membership::Release(uint64_t version) noexcept {
  if (version == 0 || version > layout::kHoldVersionMax) return CONFCAST_ERR_INVALID;
  auto drop = [](uint64_t w) { return layout::HoldCount(w) == 1 ? 0 : w - 1; };
  uint64_t* holds = entry_->holds;
  for (uint32_t i = 0; i < layout::kHoldSlots; ++i) {
    uint64_t w = __atomic_load_n(&holds[i], __ATOMIC_RELAXED);
    while (layout::HoldVersion(w) == version && layout::HoldCount(w) != 0) {
      if (CasWord(&holds[i], &w, drop(w))) return CONFCAST_OK;
    }
  }
  uint64_t w = __atomic_load_n(&entry_->overflow, __ATOMIC_RELAXED);
  while (layout::HoldCount(w) != 0 && layout::HoldVersion(w) <= version) {
    if (CasWord(&entry_->overflow, &w, drop(w))) return CONFCAST_OK;
  }
  return CONFCAST_ERR_INVALID;
}

}  // namespace confcast::ledger
