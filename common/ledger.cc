// ledger.cc - reading the worker ledger's directory as untrusted bytes, and
// the publisher's creation of it (ledger.hpp says what counts as an entry).
#include "ledger.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "confcast/layout.hpp"

namespace confcast::ledger {
namespace {

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

enum class Read { kStable, kChanging, kFailed };

// The entry's bytes, read until two reads agree: the owner writes while we
// read, and pread promises no atomicity per word, so a word read once may be
// torn. kChanging (the last read in *out) when a busy owner never held still.
Read ReadStable(int fd, layout::LedgerEntry* out) {
  layout::LedgerEntry second;
  if (pread(fd, out, sizeof(*out), 0) != static_cast<ssize_t>(sizeof(*out))) return Read::kFailed;
  for (int attempt = 0; attempt < 16; ++attempt) {
    if (pread(fd, &second, sizeof(second), 0) != static_cast<ssize_t>(sizeof(second))) return Read::kFailed;
    if (std::memcmp(out, &second, sizeof(second)) == 0) return Read::kStable;
    *out = second;
  }
  return Read::kChanging;
}

// Sums the Hold words of an entry into w; false when a word is impossible.
bool ReadHolds(const layout::LedgerEntry& e, Worker* w) {
  auto take = [&](uint64_t word) {
    const uint64_t count = layout::HoldCount(word), version = layout::HoldVersion(word);
    if (count == 0) return word == 0;  // a free slot is all zero
    if (version == 0) return false;
    w->held += count;
    if (w->oldest_held == 0 || version < w->oldest_held) w->oldest_held = version;
    return true;
  };
  for (uint64_t word : e.holds) {
    if (!take(word)) return false;
  }
  return take(e.overflow);
}

enum class Verdict { kLive, kDead, kIgnored };

// Judges one open entry file (name is its name in dirfd).
Verdict Judge(int fd, const struct stat& st, uint64_t own_pidns, Worker* w) {
  if (!S_ISREG(st.st_mode)) return Verdict::kDead;  // no worker made it: junk
  // No exclusive lock on it: the process that held it is gone (a lock dies
  // with its process), whatever the bytes say. A live owner locks its entry
  // before the entry has a name, so this is never a worker still starting.
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);
    return Verdict::kDead;
  }
  if (errno != EWOULDBLOCK) return Verdict::kIgnored;
  // Locked by a live process, but not an entry we can read: ignored, kept.
  if (st.st_size != static_cast<off_t>(sizeof(layout::LedgerEntry))) return Verdict::kIgnored;
  layout::LedgerEntry e;
  const Read read = ReadStable(fd, &e);
  if (read == Read::kFailed) return Verdict::kIgnored;
  if (e.magic != layout::kLedgerMagic || e.layout_version != layout::kLedgerLayoutVersion ||
      e.entry_size != sizeof(layout::LedgerEntry) || e.hold_slots != layout::kHoldSlots || e.pid <= 0) {
    return Verdict::kIgnored;
  }
  if (own_pidns != 0 && e.pid_namespace == own_pidns) {
    // Our namespace: the pid must run, since the recorded start (else it was
    // reused, or the entry lies), and as the file's owner.
    const std::optional<uint64_t> started = ProcessStartTime(e.pid);
    if (!started || *started != e.start_time) return Verdict::kDead;
    struct stat proc;
    const std::string proc_dir = "/proc/" + std::to_string(e.pid);
    if (stat(proc_dir.c_str(), &proc) != 0) return Verdict::kDead;
    if (proc.st_uid != st.st_uid && st.st_uid != 0) return Verdict::kIgnored;
  }
  w->pid = e.pid;
  w->newest_read = e.newest_read <= layout::kHoldVersionMax ? e.newest_read : 0;
  // Holds that would not hold still (or a word torn in the one read there
  // was) are not taken as "nothing held": the worker counts as not current.
  if (!ReadHolds(e, w)) {
    if (read == Read::kStable) return Verdict::kIgnored;  // a settled impossible word: not an entry
    *w = Worker{w->pid, w->newest_read};
  }
  w->changing = read == Read::kChanging;
  return Verdict::kLive;
}

}  // namespace

std::string DirectoryFor(const std::string& segment_file) { return segment_file + layout::kLedgerSuffix; }

mode_t DirectoryMode(mode_t segment_mode) {
  mode_t mode = S_ISVTX | S_IRWXU;
  if (segment_mode & S_IRGRP) mode |= S_IRWXG;
  if (segment_mode & S_IROTH) mode |= S_IRWXO;
  return mode;
}

std::optional<uint64_t> ProcessStartTime(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // "PID (COMM) STATE ..." where COMM may hold spaces and ')': fields count
  // from the last ')'. Field 22 is the 20th after it.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return std::nullopt;
  ++p;
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p + 1, ' ');
    if (p == nullptr) return std::nullopt;
  }
  char* end = nullptr;
  const unsigned long long value = std::strtoull(p + 1, &end, 10);
  if (end == p + 1) return std::nullopt;
  return value;
}

uint64_t OwnPidNamespace() {
  struct stat st;
  if (stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

std::string DirectoryRefusal(const struct stat& dir, uid_t segment_owner) {
  if (!S_ISDIR(dir.st_mode)) return "not a directory";
  if (dir.st_uid != segment_owner && dir.st_uid != 0) {
    return "owned by uid " + std::to_string(dir.st_uid) + ", not by the segment's owner (uid " +
           std::to_string(segment_owner) + ")";
  }
  if ((dir.st_mode & S_ISVTX) == 0) return "not sticky (any writer could remove another's entry)";
  return "";
}

std::string EnsureDirectory(const std::string& dir, mode_t segment_mode) {
  const mode_t mode = DirectoryMode(segment_mode);
  if (mkdir(dir.c_str(), S_IRWXU) != 0 && errno != EEXIST) return Errno("cannot create " + dir);
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return Errno("cannot open " + dir);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno("cannot stat " + dir);
  if (st.st_uid != geteuid()) {
    return dir + " is owned by uid " + std::to_string(st.st_uid) +
           ", not by this publisher: it is not used (remove it, or use a segment path in a directory only "
           "the publisher's user can write)";
  }
  // fchmod whatever the umask; the directory may be an earlier run's.
  if ((st.st_mode & 07777) != mode && fchmod(fd.get(), mode) != 0) return Errno("cannot chmod " + dir);
  return "";
}

Scan ScanDirectory(const std::string& dir, uid_t segment_owner, bool remove_dead) {
  Scan scan;
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    if (errno != ENOENT) {
      scan.found = true;
      scan.problem = Errno("cannot open " + dir);
    }
    return scan;
  }
  scan.found = true;
  DIR* d = fdopendir(dfd);
  if (d == nullptr) {
    ::close(dfd);
    scan.problem = Errno("cannot read " + dir);
    return scan;
  }
  struct stat dst;
  if (fstat(dfd, &dst) != 0) {
    scan.problem = Errno("cannot stat " + dir);
  } else if (std::string why = DirectoryRefusal(dst, segment_owner); !why.empty()) {
    scan.problem = dir + ": " + why;
  }
  if (!scan.problem.empty()) {
    closedir(d);
    return scan;
  }
  const uint64_t own_pidns = OwnPidNamespace();
  const size_t prefix_len = std::strlen(layout::kLedgerEntryPrefix);
  size_t seen = 0;
  while (dirent* ent = readdir(d)) {
    if (std::strncmp(ent->d_name, layout::kLedgerEntryPrefix, prefix_len) != 0) continue;
    if (++seen > kMaxEntries) {
      scan.full = true;
      break;
    }
    // Not followed, not waited on: a symbolic link, a FIFO or a device at an
    // entry's name is junk, judged by its lstat without being opened.
    struct stat st;
    if (fstatat(dfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    Fd fd(S_ISREG(st.st_mode) ? openat(dfd, ent->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
                              : -1);
    if (S_ISREG(st.st_mode) && (fd.get() < 0 || fstat(fd.get(), &st) != 0)) continue;
    Worker w;
    const Verdict verdict = S_ISDIR(st.st_mode) ? Verdict::kIgnored : Judge(fd.get(), st, own_pidns, &w);
    if (verdict == Verdict::kLive) {
      scan.workers.push_back(w);
    } else if (verdict == Verdict::kDead && remove_dead) {
      // Only if the name still stands for the file judged.
      struct stat now;
      if (fstatat(dfd, ent->d_name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino &&
          now.st_dev == st.st_dev && unlinkat(dfd, ent->d_name, 0) == 0) {
        ++scan.removed;
      }
    }
  }
  if (seen >= kMaxEntries) scan.full = true;
  closedir(d);
  std::sort(scan.workers.begin(), scan.workers.end(),
            [](const Worker& a, const Worker& b) { return a.pid < b.pid; });
  return scan;
}

Summary Summarize(const Scan& scan, uint64_t published) {
  Summary s;
  s.workers = scan.workers.size();
  s.oldest_held = published;
  for (const Worker& w : scan.workers) {
    if (w.changing) {  // cannot tell: not current
      ++s.holding_old;
      continue;
    }
    if (w.held == 0 || w.oldest_held >= published) continue;
    ++s.holding_old;
    s.oldest_held = std::min(s.oldest_held, w.oldest_held);
  }
  return s;
}

}  // namespace confcast::ledger
