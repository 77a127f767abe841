// ledger_entry.hpp - this process's own entry in a segment's worker ledger:
// registering on open, the holds, the newest version read.
//
// One entry per process and ledger directory, shared by every Subscriber of
// that segment in the process (Join finds the live one). The entry file is
// created unnamed (O_TMPFILE), locked (flock LOCK_EX: the lock dies with the
// process), filled in, and only then linked under its name, so a scanner
// never sees it half made nor unlocked while the process lives. When it
// cannot be registered (no ledger directory, one we do not trust, a full one,
// a read-only mount) the entry is a private page: holds still pair up, and
// reads never notice; registered() says which.
//
// After fork() the child never writes the parent's entry: a pthread_atfork
// handler maps a private page over it at the same address (system calls
// only, as a child of a threaded process must before it execs), and the
// child registers an entry of its own at that address on its first Hold or
// Join (a reopen), so every pointer into the entry stays valid.
//
// Threading: Hold, Release and NoteRead are lock-free (one compare-and-swap
// on the owner's own mapping, no system call) and may run on any thread;
// Join and the destructor take a process-wide mutex.
#ifndef CONFCAST_SUBSCRIBER_LEDGER_ENTRY_HPP_
#define CONFCAST_SUBSCRIBER_LEDGER_ENTRY_HPP_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "confcast/layout.hpp"

namespace confcast::ledger {

class Membership {
 public:
  // This process's entry in ledger_dir (trusted only if owned by
  // segment_owner or root, and sticky). Never null (a private entry when
  // registering failed); *why says why it is not registered, if given.
  static std::shared_ptr<Membership> Join(const std::string& ledger_dir, uid_t segment_owner,
                                          std::string* why = nullptr) noexcept;
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // CONFCAST_OK; CONFCAST_ERR_INVALID for version 0 or above 2^48 - 1;
  // CONFCAST_ERR_SYSTEM when 65535 holds of many versions fill every word.
  int Hold(uint64_t version) noexcept;
  // CONFCAST_OK; CONFCAST_ERR_INVALID when version is not held.
  int Release(uint64_t version) noexcept;
  uint64_t* newest_read_word() noexcept { return &entry_->newest_read; }

  bool registered() const noexcept { return !name_.empty(); }
  const std::string& directory() const noexcept { return dir_; }

  // The atfork child handler's work (public for it only).
  void StartOverInChild() noexcept;

  struct Private;

 private:
  Membership(std::string dir, uid_t owner) noexcept : dir_(std::move(dir)), owner_(owner) {}
  bool Register(std::string* why) noexcept;  // maps entry_ (at its current address when remapping)
  void MapPrivate() noexcept;
  void Unregister() noexcept;
  void Renew() noexcept;                      // registers a fork()ed child (takes the registry mutex)
  void RenewLocked(std::string* why) noexcept;  // the same, the mutex held

  std::string dir_;
  uid_t owner_;
  std::string name_;  // the entry's name in dir_, "" when not registered
  int fd_ = -1;       // holds the flock
  layout::LedgerEntry* entry_ = nullptr;
  std::atomic<bool> forked_{false};  // a fork()ed child that has not registered yet
};

}  // namespace confcast::ledger

#endif  // CONFCAST_SUBSCRIBER_LEDGER_ENTRY_HPP_
