// tests/support/segment_guard.hpp - owns a segment name for one test (or one
// benchmark run) and removes what a publisher leaves under it, whatever the
// test did.
//
// A publisher keeps a lock file NAME.confcast-lock and the worker ledger
// directory NAME.confcast-ledger/ beside its segment, and builds a
// replacement segment under NAME.confcast-new-*; a guard that removed only
// the segment would leave the rest behind for every test in /dev/shm (and a
// later run of the same name would find them).
//
// Threading: a SegmentGuard has one owner; Remove() is a pair of unlinks and
// safe from any thread. SegmentCleanup is filled from main() before other
// threads start; its removal runs from atexit or a signal handler (only
// shm_unlink: async-signal-safe; the ledger directories at exit only).
#ifndef CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_
#define CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "scratch.hpp"

namespace confcast::test_support {

// The file behind a segment name, as confcast-publisher and Subscriber resolve
// it: a name is a POSIX shm object in /dev/shm, an absolute path a tmpfs file.
inline std::string SegmentFile(const std::string& segment) {
  return segment.starts_with('/') ? segment : "/dev/shm/" + segment;
}

// The publisher's lock beside a segment (a name, or a path for a file segment).
inline std::string LockName(const std::string& segment) { return segment + ".confcast-lock"; }

// The worker ledger directory beside a segment.
inline std::string LedgerDir(const std::string& segment) { return SegmentFile(segment) + ".confcast-ledger"; }

// Removes a directory and the files in it (a ledger holds no subdirectory).
inline void RemoveTree(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* ent = readdir(d)) {
      const std::string name = ent->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  ::rmdir(dir.c_str());
}

class SegmentGuard {
 public:
  explicit SegmentGuard(std::string segment) : segment_(std::move(segment)) {}
  ~SegmentGuard() { Remove(); }
  SegmentGuard(const SegmentGuard&) = delete;
  SegmentGuard& operator=(const SegmentGuard&) = delete;

  const std::string& name() const { return segment_; }
  std::string file() const { return SegmentFile(segment_); }
  bool Exists() const { return PathExists(file()); }
  void Remove() const {
    RemoveTree(LedgerDir(segment_));
    if (segment_.starts_with('/')) {
      ::unlink(segment_.c_str());
      ::unlink(LockName(segment_).c_str());
    } else {
      shm_unlink(("/" + segment_).c_str());
      shm_unlink(("/" + LockName(segment_)).c_str());
    }
  }

 private:
  std::string segment_;
};

// Names in /dev/shm that a replacement of `segment` (another --capacity or
// layout) is built under before it is renamed over the segment: none may be
// left once the publisher stopped or finished the replacement.
inline std::vector<std::string> ReplacementTemporaries(const std::string& segment) {
  std::vector<std::string> found;
  const std::string stem = segment + ".confcast-new-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(stem, 0) == 0) found.push_back(name);
  }
  return found;
}

// For a process that may be interrupted (a benchmark run from a shell):
// remembers a few POSIX shm names and unlinks them at exit or on
// SIGINT/SIGTERM (and, at exit, the worker ledgers beside them). Fixed
// storage, so the signal handler needs no allocation.
class SegmentCleanup {
 public:
  // The segment and the publisher lock a writer keeps beside it.
  static void Register(const std::string& name) {
    Add(name);
    Add(LockName(name));
    Table& t = table();
    t.ledger_of[t.count - 2] = true;
  }
  static void Add(const std::string& name) {
    Table& t = table();
    if (t.count >= kMax || name.size() + 2 > kNameBytes) throw std::runtime_error("too many segments to clean up");
    std::snprintf(t.names[t.count], kNameBytes, "/%s", name.c_str());
    if (t.count++ == 0) {
      std::atexit(RemoveLedgers);
      std::atexit(UnlinkAll);
      struct sigaction sa {};
      sa.sa_handler = OnSignal;
      sigaction(SIGINT, &sa, nullptr);
      sigaction(SIGTERM, &sa, nullptr);
    }
  }
  static void UnlinkAll() {
    Table& t = table();
    for (int i = 0; i < t.count; ++i) shm_unlink(t.names[i]);
  }
  // At exit only: reading a directory is not async-signal-safe.
  static void RemoveLedgers() {
    Table& t = table();
    for (int i = 0; i < t.count; ++i) {
      if (t.ledger_of[i]) RemoveTree(LedgerDir(t.names[i] + 1));
    }
  }

 private:
  static constexpr int kMax = 64;
  static constexpr size_t kNameBytes = 128;
  struct Table {
    char names[kMax][kNameBytes];
    bool ledger_of[kMax] = {};  // names[i] is a segment (not its lock): remove its ledger too
    int count = 0;
  };
  static Table& table() {
    static Table t;
    return t;
  }
  static void OnSignal(int sig) {
    UnlinkAll();
    _exit(128 + sig);
  }
};

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_
