// reliability_support.hpp - what the catalog and fault tests need to drive
// real publisher processes: unique segment names, a scratch directory, a
// child process with RAII cleanup (optionally as the unprivileged `nobody`),
// atomic file replacement, and bounded waits on the segment.
//
// Waiting: a process's exit is awaited on a pidfd (poll), a new version with
// Subscriber::Wait (futex); only states that raise no event (the segment
// appearing, a counter in the stats latch changing) are polled, every 2 ms up
// to a deadline.
//
// Threading: test-only; each object is used by one thread.
#ifndef CONFCAST_TESTS_RELIABILITY_SUPPORT_HPP_
#define CONFCAST_TESTS_RELIABILITY_SUPPORT_HPP_

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "confcast/subscriber.hpp"

namespace confcast::reliability {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Per thread: the fault test's writer thread draws names too.
inline std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
  return rng;
}

// "cc-WHAT-PID-RANDOM": unique per test run, recognisable in /dev/shm.
inline std::string UniqueName(const std::string& what) {
  return "cc-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(Rng()() % 1000000000);
}

// Removes a POSIX shm segment (by name) when it goes out of scope.
class ShmGuard {
 public:
  explicit ShmGuard(std::string name) : name_(std::move(name)) {}
  ~ShmGuard() {
    shm_unlink(("/" + name_).c_str());
    shm_unlink(("/" + name_ + ".confcast-lock").c_str());  // the publisher lock beside it
  }
  ShmGuard(const ShmGuard&) = delete;
  ShmGuard& operator=(const ShmGuard&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// The unprivileged user a root test drops to, if there is one.
struct Unprivileged {
  uid_t uid;
  gid_t gid;
};
// A test that runs its publisher as `nobody` reads the segment as the
// workers of such a deployment do: readers trust only root and their own
// user, so $CONFCAST_SEGMENT_OWNER names the publisher's (set here, for the
// rest of this test process: ctest runs each test in its own).
inline std::optional<Unprivileged> NobodyIfRoot() {
  if (geteuid() != 0) return std::nullopt;
  const passwd* pw = getpwnam("nobody");
  if (pw == nullptr) return std::nullopt;
  setenv("CONFCAST_SEGMENT_OWNER", std::to_string(pw->pw_uid).c_str(), 1);
  return Unprivileged{pw->pw_uid, pw->pw_gid};
}

// A directory under /tmp, world-traversable (a publisher run as `nobody`
// reads the config in it), removed with its contents at the end.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& what) {
    std::string pattern = "/tmp/confcast-" + what + "-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    chmod(path_.c_str(), 0755);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Writes bytes to a temporary name beside `path` and renames it over `path`:
// a watcher sees one complete new file, never a half-written one.
inline void ReplaceFile(const std::string& path, std::string_view bytes, mode_t mode = 0644) {
  const std::string tmp = path + ".tmp-" + std::to_string(Rng()() % 1000000);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  chmod(tmp.c_str(), mode);
  if (rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename over " + path);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Polls `done` every 2 ms until it holds or `timeout` passes.
inline bool PollUntil(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

// A copy of the program at `path` that any user can run. The build tree may
// lie in a directory only its owner can enter (`mktemp -d` makes one 0700),
// and exec as `nobody` then fails; the copy lives in a world-traversable
// directory removed at exit. Copied once per program per test process.
inline std::string RunnableByAnyone(const std::string& path) {
  static ScratchDir dir("bin");
  static std::map<std::string, std::string> copies;
  auto [it, inserted] = copies.try_emplace(path);
  if (inserted) {
    it->second = dir / (fs::path(path).filename().string() + "-" + std::to_string(copies.size()));
    fs::copy_file(path, it->second, fs::copy_options::overwrite_existing);
    fs::permissions(it->second, fs::perms(0755));
  }
  return it->second;
}

struct SpawnOptions {
  std::vector<std::string> argv;
  std::string output_path;             // stdout and stderr go here ("" = /dev/null)
  std::optional<Unprivileged> as_user;  // drop to this user before exec
  std::optional<mode_t> umask;
};

// A child process; killed (SIGKILL) and reaped when the object goes away.
class Process {
 public:
  static std::unique_ptr<Process> Spawn(const SpawnOptions& options) {
    std::vector<std::string> argv = options.argv;
    if (options.as_user && !argv.empty()) argv[0] = RunnableByAnyone(argv[0]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int out = options.output_path.empty()
                        ? open("/dev/null", O_WRONLY | O_CLOEXEC)
                        : open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("cannot open " + options.output_path);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {  // only async-signal-safe calls until exec
      dup2(out, 1);
      dup2(out, 2);
      if (options.umask) ::umask(*options.umask);
      if (options.as_user) {
        if (setgroups(0, nullptr) != 0 || setgid(options.as_user->gid) != 0 || setuid(options.as_user->uid) != 0) {
          _exit(126);
        }
      }
      // A crashed test binary leaves no publisher behind. Set after setuid,
      // which clears it.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(125);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out);
    return std::unique_ptr<Process>(new Process(pid));
  }
  ~Process() {
    if (!exited_) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (pidfd_ >= 0) close(pidfd_);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig) const {
    if (!exited_) kill(pid_, sig);
  }
  // Waits (on the pidfd) for the exit; false on timeout.
  bool WaitExit(milliseconds timeout) {
    if (exited_) return true;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(timeout.count()));
      return Reap(WNOHANG);
    }
    return PollUntil([this] { return Reap(WNOHANG); }, timeout);
  }
  bool Running() { return !exited_ && !Reap(WNOHANG); }
  bool exited() const { return exited_; }
  // The waitpid status, once exited.
  int status() const { return status_; }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  int term_signal() const { return WIFSIGNALED(status_) ? WTERMSIG(status_) : 0; }

 private:
  explicit Process(pid_t pid) : pid_(pid), pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {}
  bool Reap(int flags) {
    if (exited_) return true;
    const pid_t got = waitpid(pid_, &status_, flags);
    if (got == pid_) exited_ = true;
    return exited_;
  }
  pid_t pid_;
  int pidfd_;
  bool exited_ = false;
  int status_ = 0;
};

// Whether process `pid` has an inotify instance with at least one watch.
// The publisher installs its watcher only after the startup publish, so a
// change made in between would be missed (until the poll, if any): tests
// that change the file right after the first version wait for this first.
inline bool HasInotifyWatch(pid_t pid) {
  std::error_code ec;
  const fs::path fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : fs::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(entry.path(), link_ec).string() != "anon_inode:inotify") continue;
    const std::string info = ReadFile("/proc/" + std::to_string(pid) + "/fdinfo/" + entry.path().filename().string());
    if (info.find("inotify wd:") != std::string::npos) return true;
  }
  return false;
}
inline bool WaitUntilWatching(pid_t pid, milliseconds timeout) {
  return PollUntil([pid] { return HasInotifyWatch(pid); }, timeout);
}

#ifdef CONFCAST_PUBLISHER_BIN
// The command line of a publisher on `config` and `segment`, with no metrics
// port and no poll (a test waits on events), plus `extra`.
inline std::vector<std::string> PublisherArgs(const std::string& config, const std::string& segment,
                                              std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {CONFCAST_PUBLISHER_BIN, "--config", config, "--segment", segment,
                                   "--metrics-address", "none", "--poll-seconds", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}
#endif

// Opens a segment as soon as a publisher has created it.
inline std::unique_ptr<Subscriber> OpenWhenReady(const std::string& segment, milliseconds timeout,
                                                 int* last_status = nullptr) {
  std::unique_ptr<Subscriber> sub;
  int rc = CONFCAST_ERR_NO_SEGMENT;
  PollUntil(
      [&] {
        try {
          sub = std::make_unique<Subscriber>(segment);
          rc = CONFCAST_OK;
          return true;
        } catch (const Error& e) {
          rc = e.status();
          return false;
        }
      },
      timeout);
  if (last_status) *last_status = rc;
  return sub;
}

}  // namespace confcast::reliability

#endif  // CONFCAST_TESTS_RELIABILITY_SUPPORT_HPP_
