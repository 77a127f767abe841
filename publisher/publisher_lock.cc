#include "publisher_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "confcast/segment_trust.hpp"

namespace confcast::publisher {
namespace {

// Owner write only: see the header for why not even the owner may read.
constexpr mode_t kLockMode = 0200;

std::string Refused(const std::string& path, const std::string& why) {
  return "refusing the publisher lock file " + path + ": " + why +
         ". Someone else created it (on a shared /dev/shm any local user can take a name first); remove it, or "
         "put the segment in a directory only the publisher's user can write (e.g. /run/confcast/NAME)";
}

}  // namespace

std::variant<PublisherLock, PublisherLock::Failure> PublisherLock::Acquire(const std::string& path) {
  // O_NONBLOCK: opening a FIFO someone put at the name must not hang us.
  constexpr int kFlags = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  for (int attempt = 0; attempt < 8; ++attempt) {
    bool created = true;
    int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, kLockMode);
    if (fd < 0 && errno == EEXIST) {
      created = false;
      fd = ::open(path.c_str(), kFlags);
      if (fd < 0 && errno == ENOENT) continue;  // removed by a publisher that stopped: create it again
    }
    if (fd < 0) {
      const int err = errno;
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode)) return Failure{false, Refused(path, "it is a symbolic link")};
        if (std::string why = trust::PublisherRefusal(st, geteuid(), true); !why.empty()) {
          return Failure{false, Refused(path, why)};
        }
      }
      return Failure{false, "cannot open the publisher lock file " + path + ": " + std::strerror(err)};
    }
    PublisherLock lock;
    lock.fd_ = fd;
    lock.created_ = created;
    lock.path_ = path;
    struct stat st;
    if (::fstat(fd, &st) != 0) return Failure{false, "fstat " + path + ": " + std::strerror(errno)};
    if (created && ::fchmod(fd, kLockMode) != 0) {  // the umask may have cleared bits we need, or kept none
      return Failure{false, "fchmod " + path + ": " + std::strerror(errno)};
    }
    if (!created) {
      if (std::string why = trust::PublisherRefusal(st, geteuid(), true); !why.empty()) {
        return Failure{false, Refused(path, why)};
      }
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) return Failure{true, "the lock " + path};
      return Failure{false, "cannot lock " + path + ": " + std::strerror(errno)};
    }
    // The name may have moved on while we opened and locked: a publisher
    // that stopped removed this file, and another may have created the next.
    struct stat at_name;
    if (::lstat(path.c_str(), &at_name) != 0 || at_name.st_dev != st.st_dev || at_name.st_ino != st.st_ino) {
      continue;  // lock's destructor releases the orphan
    }
    return lock;
  }
  return Failure{false, "cannot take the publisher lock " + path + ": it keeps being replaced"};
}

PublisherLock::PublisherLock(PublisherLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), created_(other.created_), path_(std::move(other.path_)) {}

PublisherLock& PublisherLock::operator=(PublisherLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    created_ = other.created_;
    path_ = std::move(other.path_);
  }
  return *this;
}

PublisherLock::~PublisherLock() {
  if (fd_ >= 0) ::close(fd_);
}

void PublisherLock::RemoveAndRelease() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace confcast::publisher
