// ledger.hpp - the worker ledger's directory as the publisher and confcastctl
// see it: where it is, who may write it, and what its entries say.
//
// Every reading process owns one entry file there (layout.hpp draws it; the
// worker's side is subscriber/ledger_entry.hpp). Nothing in the directory is
// trusted for being there: an entry counts only if it is a regular file of
// exactly one entry's size, carries the magic and layout version, is locked
// (flock) by a live process and, when that process is in our pid namespace,
// names a pid that runs with the recorded start time and belongs to the
// file's owner. Everything else is ignored (and removed, when the caller is
// the directory's owner and the entry is provably dead).
//
// Who may create entries is decided by the directory's mode, which mirrors
// who may read the segment: a segment readable by its group gets a ledger
// its group may write (1770), one readable by others a 1777 ledger, an
// owner-only segment a 1700 one. The sticky bit keeps users from removing or
// renaming each other's entries. So a user who cannot read the config cannot
// appear in the ledger (nor hold up `wait --converged`); a user who can is a
// worker, and a worker may hold a version as long as it likes.
//
// Threading: pure functions and self-contained calls; no shared state.
#ifndef CONFCAST_COMMON_LEDGER_HPP_
#define CONFCAST_COMMON_LEDGER_HPP_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace confcast::ledger {

// At most this many names are looked at in one scan; a worker does not add
// an entry to a directory that holds as many (a full ledger).
inline constexpr size_t kMaxEntries = 1024;

// SEGMENT_FILE.confcast-ledger: segment_file is where the segment lives
// (/dev/shm/NAME for a shared-memory name, or the absolute path).
std::string DirectoryFor(const std::string& segment_file);

// The mode the publisher gives the directory for a segment of segment_mode.
mode_t DirectoryMode(mode_t segment_mode);

// The start time of pid (clock ticks after boot, /proc/PID/stat field 22),
// nullopt when there is no such process (in our pid namespace).
std::optional<uint64_t> ProcessStartTime(int pid);
// The inode of our pid namespace (/proc/self/ns/pid), 0 when unknown.
uint64_t OwnPidNamespace();

// Why a directory with this fstat may not be trusted as the ledger of a
// segment owned by segment_owner, or "" when it may.
std::string DirectoryRefusal(const struct stat& dir, uid_t segment_owner);

// The publisher's part: creates the directory (or adopts its own from an
// earlier run) with DirectoryMode(segment_mode). "" on success, else why not.
std::string EnsureDirectory(const std::string& dir, mode_t segment_mode);

struct Worker {
  int32_t pid = 0;
  uint64_t newest_read = 0;  // 0: read nothing yet
  uint64_t oldest_held = 0;  // 0: holds nothing
  uint64_t held = 0;         // number of holds
  bool changing = false;     // its holds changed during every read: counted as holding an old version
};

struct Scan {
  bool found = false;    // the directory exists
  std::string problem;   // not "" when the directory is not trusted or cannot be read
  bool full = false;     // kMaxEntries names or more: workers may be missing
  std::vector<Worker> workers;  // the live ones, by pid
  size_t removed = 0;    // dead entries removed by this scan
};

// Reads every entry of dir. remove_dead: unlink entries whose process is
// gone (only the publisher, who owns the directory, does so).
Scan ScanDirectory(const std::string& dir, uid_t segment_owner, bool remove_dead);

// What the gate and the metrics ask of a scan, for the published version.
struct Summary {
  size_t workers = 0;
  size_t holding_old = 0;    // live workers holding a version older than `published`
  uint64_t oldest_held = 0;  // the oldest version held; `published` when none holds an older one
};
Summary Summarize(const Scan& scan, uint64_t published);

}  // namespace confcast::ledger

#endif  // CONFCAST_COMMON_LEDGER_HPP_
