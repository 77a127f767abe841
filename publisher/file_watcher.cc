// publisher/file_watcher.cc - see file_watcher.hpp.
#include "file_watcher.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "config_sources.hpp"
#include "log.hpp"

namespace confcast::publisher {
namespace {

// IN_MODIFY is left out on purpose: a change is reported when the writer
// closes the file, never while it is half-written. IN_ONLYDIR keeps a race
// (directory replaced by a file) from watching a file; IN_EXCL_UNLINK drops
// events of files that are already unlinked.
constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR | IN_EXCL_UNLINK;
constexpr uint32_t kDirectoryGoneMask = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT;
constexpr int kMaxSymlinkHops = 40;  // Linux's MAXSYMLINKS: a loop ends the resolution
// The path can change again between resolving it and adding the watches; each
// attempt re-checks, and a path that churns longer than this is left to the
// next event.
constexpr int kMaxArmAttempts = 8;
constexpr int kMaxDrainRounds = 4;

std::vector<std::string> SplitComponents(std::string_view path) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(begin, end - begin);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    begin = end + 1;
  }
  return parts;
}

std::string Join(const std::string& directory, std::string_view name) {
  std::string joined = directory;
  if (joined.empty() || joined.back() != '/') joined += '/';
  joined += name;
  return joined;
}

// The parent of a resolved (symlink-free, normalized) directory.
std::string ParentOf(const std::string& directory) {
  size_t slash = directory.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return directory.substr(0, slash);
}

std::optional<std::string> ReadLink(const std::string& path) {
  std::string target(256, '\0');
  for (;;) {
    ssize_t length = readlink(path.c_str(), target.data(), target.size());
    if (length < 0) return std::nullopt;
    if (static_cast<size_t>(length) < target.size()) {
      target.resize(static_cast<size_t>(length));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

// A regular file with a single name was just created by open(O_CREAT) and is
// probably still being written: its IN_CLOSE_WRITE will report it. A symlink,
// a hard link (two names) or a name already gone is complete as it is.
bool LooksLikeFileStillBeingWritten(const std::string& directory, std::string_view name) {
  struct stat st {};
  if (lstat(Join(directory, name).c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && st.st_nlink == 1;
}

// Builds a WatchPlan while resolving paths component by component, the way
// the kernel does, remembering which directory entries the result depends on.
// A template only so that it can fill FileWatcher's private plan types.
template <class Plan, class Interest>
class PathResolver {
 public:
  explicit PathResolver(Plan& plan) : plan_(plan) {}

  Interest& At(const std::string& directory) {
    Interest& interest = plan_[directory];
    interest.directory = directory;
    return interest;
  }

  // Resolves an absolute directory path to a symlink-free one. Every symlink
  // crossed becomes a content name of the directory holding it (retargeting
  // it changes what the config path means). A missing component becomes an
  // awaited name of the deepest existing directory, and resolution stops.
  std::optional<std::string> ResolveDirectory(const std::string& path) {
    std::vector<std::string> parts = SplitComponents(path);
    std::deque<std::string> pending(parts.begin(), parts.end());
    std::string resolved = "/";
    while (!pending.empty()) {
      std::string component = std::move(pending.front());
      pending.pop_front();
      if (component == "..") {
        resolved = ParentOf(resolved);
        continue;
      }
      std::string next = Join(resolved, component);
      struct stat st {};
      if (lstat(next.c_str(), &st) != 0) {
        // Missing (or, say, not searchable): wait for the component to appear
        // or change there.
        At(resolved).awaited_names.insert(component);
        return std::nullopt;
      }
      if (S_ISLNK(st.st_mode)) {
        std::optional<std::string> target = ReadLink(next);
        if (++hops_ > kMaxSymlinkHops || !target) return std::nullopt;
        At(resolved).content_names.insert(component);
        std::vector<std::string> target_parts = SplitComponents(*target);
        pending.insert(pending.begin(), target_parts.begin(), target_parts.end());
        if (target->starts_with('/')) resolved = "/";
        continue;
      }
      if (!S_ISDIR(st.st_mode)) {
        // A file stands where a directory should be: wait for it to be replaced.
        At(resolved).awaited_names.insert(component);
        return std::nullopt;
      }
      resolved = std::move(next);
    }
    return resolved;
  }

  // Splits an absolute path into its resolved directory and final name, which
  // must name a file (not "..").
  std::optional<std::pair<std::string, std::string>> ResolveParent(const std::string& path) {
    std::vector<std::string> parts = SplitComponents(path);
    if (parts.empty() || parts.back() == "..") return std::nullopt;
    std::string name = parts.back();
    parts.pop_back();
    std::string parent;
    for (const std::string& part : parts) parent += "/" + part;
    std::optional<std::string> directory = ResolveDirectory(parent.empty() ? "/" : parent);
    if (!directory) return std::nullopt;
    return std::make_pair(*directory, name);
  }

  // Follows the final component while it is a symlink; every directory on the
  // way watches the link's (or the real file's) name.
  void FollowFinalSymlinks(std::string directory, std::string name) {
    for (;;) {
      std::string path = Join(directory, name);
      struct stat st {};
      if (lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return;
      std::optional<std::string> target = ReadLink(path);
      if (++hops_ > kMaxSymlinkHops || !target) return;
      std::string absolute_target = target->starts_with('/') ? *target : Join(directory, *target);
      auto next = ResolveParent(absolute_target);
      if (!next) return;
      std::tie(directory, name) = std::move(*next);
      At(directory).content_names.insert(name);
    }
  }

 private:
  Plan& plan_;
  int hops_ = 0;
};

std::string DescribeInterest(const std::string& directory, const std::set<std::string>& content,
                             bool any_dot_dot, bool any_config, const std::set<std::string>& awaited) {
  std::string names;
  auto append = [&names](std::string_view item) {
    if (!names.empty()) names += ", ";
    names += item;
  };
  for (const std::string& name : content) append(name);
  if (any_config) append("*.yaml, *.yml");
  if (any_dot_dot) append("..*");
  for (const std::string& name : awaited) append("awaiting " + name);
  return directory + " (" + names + ")";
}

}  // namespace

FileWatcher::FileWatcher(std::string config_path) : FileWatcher(std::vector<std::string>{std::move(config_path)}) {}

FileWatcher::FileWatcher(std::vector<std::string> config_paths) {
  for (const std::string& config_path : config_paths) {
    std::filesystem::path path(config_path);
    if (path.is_relative()) path = std::filesystem::absolute(path);
    config_paths_.push_back(path.string());
  }
  label_ = SourcesLabel(config_paths_);
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  Rearm();
}

FileWatcher::~FileWatcher() {
  if (fd_ >= 0) close(fd_);
}

int FileWatcher::fd() const { return fd_; }

FileWatcher::WatchPlan FileWatcher::Resolve(const std::vector<std::string>& config_paths) {
  WatchPlan plan;
  using Resolver = PathResolver<WatchPlan, DirectoryInterest>;
  for (const std::string& config_path : config_paths) {
    Resolver resolver(plan);  // one per path: each has its own symlink budget
    auto located = resolver.ResolveParent(config_path);
    if (!located) continue;
    auto& [directory, name] = *located;
    DirectoryInterest& home = resolver.At(directory);
    home.content_names.insert(name);
    home.any_dot_dot_name = true;
    resolver.FollowFinalSymlinks(directory, name);
    struct stat st {};
    if (stat(config_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    // A directory source. Its listing is read here and again after every
    // event on one of its names, so a file that appears gets its chain watched.
    std::optional<std::string> resolved = Resolver(plan).ResolveDirectory(config_path);
    if (!resolved) continue;
    DirectoryInterest& source = Resolver(plan).At(*resolved);
    source.any_config_name = true;
    source.any_dot_dot_name = true;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(*resolved, error)) {
      const std::string file = entry.path().filename().string();
      if (IsConfigFileName(file)) Resolver(plan).FollowFinalSymlinks(*resolved, file);
    }
  }
  return plan;
}

std::vector<std::string> FileWatcher::ContentSignature(const WatchPlan& plan) {
  std::vector<std::string> signature;
  for (const auto& [directory, interest] : plan) {
    for (const std::string& name : interest.content_names) signature.push_back(Join(directory, name));
    if (interest.any_config_name) signature.push_back(Join(directory, "*.yaml"));
  }
  return signature;
}

bool FileWatcher::Arm(const WatchPlan& plan) {
  std::map<int, DirectoryInterest> armed;
  bool complete = true;
  failures_.clear();
  for (const auto& [directory, interest] : plan) {
    int wd;
    do {
      wd = inotify_add_watch(fd_, directory.c_str(), kWatchMask);
    } while (wd < 0 && errno == EINTR);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        complete = false;
      } else {
        failures_[directory] = std::strerror(errno);
      }
      continue;
    }
    auto [it, inserted] = armed.try_emplace(wd, interest);
    if (!inserted) {
      // Two paths to one directory share a watch descriptor: merge the interests.
      it->second.content_names.insert(interest.content_names.begin(), interest.content_names.end());
      it->second.awaited_names.insert(interest.awaited_names.begin(), interest.awaited_names.end());
      it->second.any_dot_dot_name = it->second.any_dot_dot_name || interest.any_dot_dot_name;
      it->second.any_config_name = it->second.any_config_name || interest.any_config_name;
    }
  }
  for (const auto& [wd, interest] : watches_) {
    if (!armed.contains(wd)) inotify_rm_watch(fd_, wd);  // EINVAL if the kernel dropped it already
  }
  watches_ = std::move(armed);
  return complete;
}

bool FileWatcher::Rearm() {
  const std::vector<std::string> before = ContentSignature(plan_);
  bool settled = false;
  for (int attempt = 0; attempt < kMaxArmAttempts && !settled; ++attempt) {
    WatchPlan plan = Resolve(config_paths_);
    bool complete = Arm(plan);
    // Anything that changed before the watches existed shows up here; anything
    // after them arrives as an event.
    settled = complete && Resolve(config_paths_) == plan;
    plan_ = std::move(plan);
  }
  // Logged once per distinct set of failures, not on every re-arm.
  nlohmann::json failures = nlohmann::json::object();
  for (const auto& [directory, reason] : failures_) failures[directory] = reason;
  std::string failures_text = failures.dump();
  if (failures_text != last_logged_failures_) {
    if (!failures_.empty()) {
      LogEvent(spdlog::level::warn,
               "cannot watch some directories of the config path; changes there are seen only by the "
               "periodic re-hash",
               {{"config", label_}, {"unwatched", failures}});
    }
    last_logged_failures_ = std::move(failures_text);
  }
  // A path that would not settle is reported as changed: the loop re-reads.
  return !settled || ContentSignature(plan_) != before;
}

void FileWatcher::NoteEvent(const ::inotify_event& event, bool& changed, bool& rearm) {
  if (event.mask & IN_Q_OVERFLOW) {
    // Events were lost: nothing about the watches or the file can be trusted.
    changed = rearm = true;
    return;
  }
  auto it = watches_.find(event.wd);
  if (it == watches_.end()) return;  // a watch already removed (stale or replaced)
  const DirectoryInterest& interest = it->second;
  const bool holds_content =
      !interest.content_names.empty() || interest.any_dot_dot_name || interest.any_config_name;
  if (event.mask & kDirectoryGoneMask) {
    rearm = true;
    changed = changed || holds_content;
    if (event.mask & IN_IGNORED) watches_.erase(it);  // the kernel has dropped this descriptor
    return;
  }
  if (event.len == 0) {
    // The directory's own attributes: its permissions decide whether the path
    // can be resolved and the file read.
    if (event.mask & IN_ATTRIB) {
      rearm = true;
      changed = changed || holds_content;
    }
    return;
  }
  std::string_view name(event.name, strnlen(event.name, event.len));
  if (interest.awaited_names.contains(std::string(name))) rearm = true;
  if (interest.content_names.contains(std::string(name)) ||
      (interest.any_dot_dot_name && name.starts_with("..")) ||
      (interest.any_config_name && IsConfigFileName(name))) {
    rearm = true;
    if ((event.mask & IN_CREATE) && !(event.mask & IN_ISDIR) &&
        LooksLikeFileStillBeingWritten(interest.directory, name)) {
      return;
    }
    changed = true;
  }
}

bool FileWatcher::HandleEvents() {
  bool changed = false;
  // Re-arming removes watches, and each removal queues an IN_IGNORED; reading
  // again consumes those (and anything that raced in) so the loop is not woken
  // for nothing. A path that keeps churning is left to the next wake-up.
  for (int round = 0; round < kMaxDrainRounds; ++round) {
    bool rearm = false;
    DrainQueue(changed, rearm);
    if (!rearm) break;
    if (Rearm()) changed = true;
  }
  return changed;
}

void FileWatcher::DrainQueue(bool& changed, bool& rearm) {
  alignas(::inotify_event) char buffer[64 * 1024];
  for (;;) {
    ssize_t length = read(fd_, buffer, sizeof buffer);
    if (length < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // Cannot happen with a valid fd and this buffer size; be conservative.
        LogEvent(spdlog::level::warn, "reading inotify events failed",
                 {{"config", label_}, {"error", std::strerror(errno)}});
        changed = rearm = true;
      }
      return;
    }
    if (length == 0) return;
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const ::inotify_event*>(buffer + offset);
      NoteEvent(*event, changed, rearm);
      offset += static_cast<ssize_t>(sizeof(::inotify_event) + event->len);
    }
  }
}

std::vector<std::string> FileWatcher::WatchedPaths() const {
  std::vector<std::string> described;
  for (const auto& [wd, interest] : watches_) {
    described.push_back(DescribeInterest(interest.directory, interest.content_names,
                                         interest.any_dot_dot_name, interest.any_config_name,
                                         interest.awaited_names));
  }
  for (const auto& [directory, reason] : failures_) {
    described.push_back(directory + " (cannot watch: " + reason + ")");
  }
  std::sort(described.begin(), described.end());
  return described;
}

}  // namespace confcast::publisher
