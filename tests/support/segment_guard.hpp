// tests/support/segment_guard.hpp - owns a segment name for one test and
// removes what a publisher leaves under it, whatever the test did.
//
// A publisher keeps a lock file NAME.confcast-lock and the worker ledger
// directory NAME.confcast-ledger/ beside its segment; a guard that removed
// only the segment would leave them behind for every test in /dev/shm (and
// a later run of the same name would find them).
//
// Threading: one owner; Remove() is a pair of unlinks and safe from any thread.
#ifndef CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_
#define CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_

#include <sys/mman.h>
#include <dirent.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "scratch.hpp"

namespace confcast::test_support {

// The file behind a segment name, as confcast-publisher and Subscriber resolve
// it: a name is a POSIX shm object in /dev/shm, an absolute path a tmpfs file.
inline std::string SegmentFile(const std::string& segment) {
  return segment.starts_with('/') ? segment : "/dev/shm/" + segment;
}

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
    RemoveTree(file() + ".confcast-ledger");
    if (segment_.starts_with('/')) {
      ::unlink(segment_.c_str());
      ::unlink((segment_ + ".confcast-lock").c_str());
    } else {
      shm_unlink(("/" + segment_).c_str());
      shm_unlink(("/" + segment_ + ".confcast-lock").c_str());
    }
  }

 private:
  std::string segment_;
};

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_SEGMENT_GUARD_HPP_
