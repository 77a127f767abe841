// publisher_lock.hpp - "one publisher per segment", held in a way that a
// process which can only read the segment cannot interfere with.
//
// The lock is an flock(2) on a lock file beside the segment
// ("NAME.confcast-lock"), not on the segment itself: flock works on a
// read-only descriptor, so any worker that can map the segment could hold a
// lock on it and keep a restarted publisher out for as long as it liked.
// The lock file is mode 0200 and owned by the publisher's user: no other
// user can open it at all, and the owner can only open it for writing, which
// a read-only mount (the workers' view in Kubernetes) refuses even to the
// same uid. Root can open anything and is trusted, as it is everywhere.
//
// The kernel drops an flock when its process dies, so a SIGKILLed publisher
// never blocks its successor. The file itself stays as long as the segment
// does: on a shared /dev/shm a name that exists cannot be taken by another
// user between a publisher's stop and its restart. After locking, the file
// at the name must still be the one locked (it may have been removed with
// its segment, or by hand); otherwise the lock guards nothing and Acquire
// tries again.
//
// Threading: one PublisherLock per SegmentWriter; not shared between threads.
#ifndef CONFCAST_PUBLISHER_PUBLISHER_LOCK_HPP_
#define CONFCAST_PUBLISHER_PUBLISHER_LOCK_HPP_

#include <string>
#include <variant>

namespace confcast::publisher {

class PublisherLock {
 public:
  struct Failure {
    bool busy;            // a live holder has it (message: the lock file); else message says what is wrong
    std::string message;
  };

  static std::variant<PublisherLock, Failure> Acquire(const std::string& path);

  PublisherLock() = default;
  PublisherLock(PublisherLock&& other) noexcept;
  PublisherLock& operator=(PublisherLock&& other) noexcept;
  PublisherLock(const PublisherLock&) = delete;
  PublisherLock& operator=(const PublisherLock&) = delete;
  // Releases without removing the file.
  ~PublisherLock();

  // Removes the lock file, then releases it: for a publisher that removes
  // the segment it created. A successor that opened the old file in between
  // finds, after locking it, that the name no longer leads to it.
  void RemoveAndRelease();

  bool held() const { return fd_ >= 0; }
  // Whether Acquire made the file (rather than finding one a predecessor left).
  bool created() const { return created_; }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  bool created_ = false;
  std::string path_;
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_PUBLISHER_LOCK_HPP_
