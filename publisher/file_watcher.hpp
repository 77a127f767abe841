// publisher/file_watcher.hpp - tells the publisher's event loop when what the
// config's sources (files, or directories of YAML files) resolve to may have
// changed.
//
// The watcher only answers "look again": debouncing, hashing and reloading
// belong to the loop. It watches directories, never the file itself, because
// editors and the kubelet replace the file (a new inode) instead of writing it:
//   * the config path's own directory, for the file's name and for every name
//     starting with ".." (the kubelet's ConfigMap swap: a new "..<timestamp>"
//     directory, symlink "..data_tmp" renamed over "..data");
//   * the directory of every symlink on the way from the config path to the
//     real file, and the real file's directory (a symlink into another
//     directory written in place). The chain is re-resolved after every
//     relevant event, so a retargeted link drops the old directory's watch;
//   * for a source that is a directory: the directory itself, for every name
//     a config file can have (*.yaml, *.yml: a file appearing, vanishing or
//     rewritten) and every "..*" name (the kubelet's swap inside a mounted
//     ConfigMap or Secret), and each of its files' symlink chains as above;
//   * while a directory is missing, its nearest existing ancestor, for the
//     next path component to appear; the watch moves down as components come
//     back, and HandleEvents reports a change once the file's directory exists.
// A change is reported on close-after-write (never on a bare write, so a
// half-written file is not reported), rename onto the name, creation of a
// symlink or hard link, deletion or rename away, and attribute changes
// (chmod, touch). Creating a regular file is reported by its close-after-write.
// A queue overflow (IN_Q_OVERFLOW) re-arms every watch and reports a change.
// Known gap: a hard link whose other name is removed before HandleEvents looks
// at it is taken for a file still being written and is left to the loop's
// periodic re-hash (--poll-seconds).
//
// Threading: not thread-safe. One thread (the publisher's epoll loop) owns the
// object; fd() is non-blocking and close-on-exec, so HandleEvents never
// blocks and may be called whenever epoll reports EPOLLIN (level-triggered).
#ifndef CONFCAST_PUBLISHER_FILE_WATCHER_HPP_
#define CONFCAST_PUBLISHER_FILE_WATCHER_HPP_

#include <map>
#include <set>
#include <string>
#include <vector>

struct inotify_event;  // <sys/inotify.h>

namespace confcast::publisher {

class FileWatcher {
 public:
  // Starts watching. Throws std::system_error only if inotify itself cannot be
  // created; a path that does not exist (yet) is watched from its nearest
  // existing ancestor. A relative path is taken relative to the current
  // directory at construction.
  explicit FileWatcher(std::string config_path);
  // Several sources, each a file or a directory: one watcher, so changes to
  // any of them end up in one event stream (and one debounce).
  explicit FileWatcher(std::vector<std::string> config_paths);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Non-blocking, close-on-exec inotify fd to register with epoll for EPOLLIN.
  int fd() const;

  // Drains every pending event. Returns true when any of them may have changed
  // the content the config path resolves to. Re-arms its watches itself.
  bool HandleEvents();

  // What is watched now, sorted, one directory per entry, e.g.
  // "/etc/app (config.yaml, ..*)", "/etc (awaiting app)" or
  // "/srv (cannot watch: No space left on device)". For logs and tests.
  std::vector<std::string> WatchedPaths() const;

 private:
  // Why one directory is watched.
  struct DirectoryInterest {
    std::string directory;                   // resolved, symlink-free path
    std::set<std::string> content_names;     // an event on these may change the content
    std::set<std::string> awaited_names;     // a missing path component to wait for
    bool any_dot_dot_name = false;           // the kubelet's "..data" machinery lives here
    bool any_config_name = false;            // a directory source: its *.yaml and *.yml names
    bool operator==(const DirectoryInterest&) const = default;
  };
  // Keyed by resolved directory path.
  using WatchPlan = std::map<std::string, DirectoryInterest>;

  static WatchPlan Resolve(const std::vector<std::string>& config_paths);
  static std::vector<std::string> ContentSignature(const WatchPlan& plan);

  // Re-resolves the path and makes the inotify watches match; returns true
  // when the set of places holding content changed (e.g. a directory came back).
  bool Rearm();
  // Adds a watch for every directory of the plan and removes the rest.
  // Returns false when a directory vanished in between (the caller retries).
  bool Arm(const WatchPlan& plan);
  // Reads until the queue is empty.
  void DrainQueue(bool& changed, bool& rearm);
  void NoteEvent(const ::inotify_event& event, bool& changed, bool& rearm);

  std::vector<std::string> config_paths_;  // absolute
  std::string label_;                      // for logs
  int fd_ = -1;
  WatchPlan plan_;
  std::map<int, DirectoryInterest> watches_;      // by inotify watch descriptor
  std::map<std::string, std::string> failures_;   // directory -> why it is not watched
  std::string last_logged_failures_;
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_FILE_WATCHER_HPP_
