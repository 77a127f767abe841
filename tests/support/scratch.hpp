// tests/support/scratch.hpp - scratch directories, and files changed the
// ways they change in real life: written in place, saved by an editor
// (temporary + rename), and swapped by the kubelet in a ConfigMap volume.
//
// The publisher reacts to each of these differently (an IN_CLOSE_WRITE on the
// same inode, a new inode moved in, a symlink swapped two levels up), so a
// test names the one it means instead of "writing the file".
//
// Threading: the functions may be called from any thread (the random-kill test's
// writer thread replaces the config while the main thread reads); a TempDir
// or ConfigMapVolume object belongs to one thread.
#ifndef CONFCAST_TESTS_SUPPORT_SCRATCH_HPP_
#define CONFCAST_TESTS_SUPPORT_SCRATCH_HPP_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "names.hpp"

namespace confcast::test_support {

// A tmpfs every Linux host mounts: a TempDir there may hold file segments
// (a segment named by an absolute path must be on a tmpfs).
inline constexpr std::string_view kTmpfs = "/dev/shm";

[[noreturn]] inline void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// A fresh directory under `parent` (by default $TMPDIR, else /tmp), removed
// with everything in it. Mode 0755: a publisher a test runs as `nobody` or
// `daemon` must reach the config inside (mkdtemp's 0700 would make it an io
// error instead).
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "dir", std::string_view parent = {}) {
    const char* base = std::getenv("TMPDIR");
    const std::string where = !parent.empty() ? std::string(parent) : base && *base ? base : "/tmp";
    std::string pattern = where + "/confcast-test-" + std::string(tag) + "-XXXXXX";
    if (!mkdtemp(pattern.data())) ThrowErrno("mkdtemp " + pattern);
    path_ = pattern;
    if (::chmod(pattern.c_str(), 0755) != 0) ThrowErrno("chmod " + pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    // A test may have taken the permissions away to make a read fail.
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ignored);
    std::filesystem::remove_all(path_, ignored);  // does not follow symlinks out of the directory
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(std::string_view relative) const { return (path_ / relative).string(); }
  // Creates a subdirectory (and its parents); returns its path.
  std::string MakeDir(std::string_view relative) const {
    std::string p = *this / relative;
    std::filesystem::create_directories(p);
    return p;
  }
  // WriteInPlace of `relative`; returns its path.
  std::string Write(std::string_view relative, std::string_view bytes, mode_t mode = 0644) const;

 private:
  std::filesystem::path path_;
};

inline bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteAll(int fd, std::string_view content, const std::string& what) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write " + what);
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
}

// open(O_WRONLY|O_CREAT|O_TRUNC) + write + close, like `echo > file`: the
// inode stays, a watcher sees one IN_CLOSE_WRITE at the end. `mode` (less the
// umask) applies only when the file is created.
inline void WriteInPlace(const std::string& path, std::string_view content, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) ThrowErrno("open " + path);
  try {
    WriteAll(fd, content, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) ThrowErrno("close " + path);
}

inline std::string TempDir::Write(std::string_view relative, std::string_view bytes, mode_t mode) const {
  const std::string file = *this / relative;
  WriteInPlace(file, bytes, mode);
  return file;
}

// An editor's save: a temporary file beside `path`, renamed over it, so a
// watcher sees one complete new file and never a half-written one. The
// temporary's name starts with '.' but not "..", which the publisher's
// watcher ignores. `mode` is exact, whatever the umask (a test of an
// unreadable config asks for 0000).
inline void WriteViaRename(const std::string& path, std::string_view content, mode_t mode = 0644) {
  const std::filesystem::path target(path);
  const std::string temp =
      (target.parent_path() / ("." + target.filename().string() + ".tmp-" + RandomHex(6))).string();
  WriteInPlace(temp, content, mode);
  if (::chmod(temp.c_str(), mode) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    ThrowErrno("chmod or rename " + temp + " -> " + path);
  }
}

// A Kubernetes ConfigMap volume, laid out and updated exactly as the
// kubelet's AtomicWriter does it:
//   DIR/..2026_11_28_17_00_00.000000001/config.yaml   the real files
//   DIR/..data -> ..2026_11_28_17_00_00.000000001     (relative symlink)
//   DIR/config.yaml -> ..data/config.yaml              (one per key, made once)
// An update writes a new timestamped directory, points a new symlink
// ..data_tmp at it, renames ..data_tmp over ..data (the atomic switch), and
// removes the old directory.
class ConfigMapVolume {
 public:
  // `dir` must exist and be empty; `files` maps key (file name) -> content.
  ConfigMapVolume(std::string dir, const std::map<std::string, std::string>& files) : dir_(std::move(dir)) {
    current_ = WriteGeneration(files);
    Symlink(current_, dir_ + "/..data");
    for (const auto& [key, content] : files) Symlink("..data/" + key, dir_ + "/" + key);
  }

  // The user-visible path of a key: DIR/KEY (a symlink through ..data).
  std::string PathOf(const std::string& key) const { return dir_ + "/" + key; }
  // The timestamped directory ..data points at now.
  const std::string& current_generation() const { return current_; }

  void Update(const std::map<std::string, std::string>& files) {
    const std::string next = WriteGeneration(files);
    const std::string tmp_link = dir_ + "/..data_tmp";
    Symlink(next, tmp_link);
    if (::rename(tmp_link.c_str(), (dir_ + "/..data").c_str()) != 0) ThrowErrno("rename ..data_tmp -> ..data");
    std::filesystem::remove_all(dir_ + "/" + current_);
    current_ = next;
  }

 private:
  static void Symlink(const std::string& target, const std::string& link) {
    if (::symlink(target.c_str(), link.c_str()) != 0) ThrowErrno("symlink " + link + " -> " + target);
  }
  std::string WriteGeneration(const std::map<std::string, std::string>& files) {
    ++generation_;
    char name[64];
    std::snprintf(name, sizeof(name), "..2026_11_28_17_00_%02d.%09d", generation_ % 60, generation_);
    const std::string path = dir_ + "/" + name;
    if (::mkdir(path.c_str(), 0755) != 0) ThrowErrno("mkdir " + path);
    for (const auto& [key, content] : files) WriteInPlace(path + "/" + key, content);
    return name;
  }

  std::string dir_;
  std::string current_;
  int generation_ = 0;
};

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_SCRATCH_HPP_
