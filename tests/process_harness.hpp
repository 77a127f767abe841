// tests/process_harness.hpp - a harness for process-level tests of
// confcast-publisher and confcastctl: real binaries, real files, real inotify,
// real shared memory, real processes.
//
// What it offers (all header-only, namespace confcast::proctest):
//   UniqueName(tag)           a segment / file name no other test run uses
//                             (pid + random suffix)
//   TempDir                   mkdtemp'd directory, removed recursively on destruction
//   SegmentGuard              removes a segment (shm_unlink, or unlink for an
//                             absolute path) on destruction, whatever the test did
//   WriteInPlace / WriteViaRename / ConfigMapVolume
//                             the ways a config file changes in real life
//   ChildProcess              a child started with fork+exec (Spawn) or running a
//                             function (Fork); stdout/stderr go to files of its own;
//                             bounded waits for exit (WaitExit), for SIGSTOP to take
//                             hold (WaitStopped) and for log lines (WaitForStderr);
//                             SIGKILLed and reaped on destruction (also when an
//                             ASSERT fails)
//   StartPublisher(options)   confcast-publisher (CONFCAST_PUBLISHER_BIN) with the
//                             test defaults: no metrics, short debounce, no poll
//   RunToCompletion / RunCtl  a short-lived program (confcastctl, --check) with a
//                             time limit, returning its exit status and output
//   OpenWhenPublished, WaitForVersionAbove, NoVersionAbove, InfoOf, WaitForInfo,
//   ErrorsByReason            waits on the segment: version changes sleep in the
//                             kernel (Subscriber::Wait); the stats (errors, pid,
//                             last_error) have no futex, so they are polled with
//                             a deadline
// Every wait has a deadline and reports failure instead of hanging; sleeps
// only happen inside bounded polling loops.
//
// Typical use (more in tests/publisher_process_test.cc). Declare the guards
// before the processes: destruction runs backwards, so the publisher is
// killed before its segment and directory are removed.
//   TempDir dir("mytest");
//   SegmentGuard segment(UniqueName("mytest"));
//   const std::string config = dir / "config.yaml";
//   WriteInPlace(config, "llm:\n  model: a\n");
//   ChildProcess pub = StartPublisher({.config = config, .segment = segment.name()});
//   std::optional<Subscriber> sub = OpenWhenPublished(segment.name(), 10s);
//   ASSERT_TRUE(sub) << pub.Describe();              // Describe(): state + stderr
//   WriteViaRename(config, "llm:\n  model: b\n");
//   ASSERT_EQ(WaitForVersionAbove(*sub, 1, 10s), 2u) << pub.Describe();
//
// Threading: the helpers are not synchronised; use each object from one thread.
// ChildProcess::Spawn only calls async-signal-safe functions between fork and
// exec, so it may be used while other threads run. ChildProcess::Fork runs C++
// in the child: call it only while the test process has no other threads (a
// plain gtest test body), and keep the child's body simple (it ends with
// _exit, never returning into gtest).
// Children get PR_SET_PDEATHSIG(SIGKILL), so a crashed test binary leaves no
// publisher running (segments of a crashed run stay in /dev/shm, named
// confcast-test-*).
#ifndef CONFCAST_TESTS_PROCESS_HARNESS_HPP_
#define CONFCAST_TESTS_PROCESS_HARNESS_HPP_

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "confcast/subscriber.hpp"

extern char** environ;

namespace confcast::proctest {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// -- names and places ---------------------------------------------------------

inline std::string RandomHex(int digits) {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += kHex[rng() & 15];
  return s;
}

// "confcast-test-<tag>-<pid>-<8 hex>": unique across parallel ctest runs and
// recognisable in /dev/shm if a crashed run leaves one behind.
inline std::string UniqueName(std::string_view tag) {
  return "confcast-test-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" + RandomHex(8);
}

// Throws std::system_error with errno and what failed.
[[noreturn]] inline void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// A fresh directory under $TMPDIR (else /tmp), removed with everything in it.
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "dir") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/confcast-test-" + std::string(tag) + "-XXXXXX";
    if (!mkdtemp(pattern.data())) ThrowErrno("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);  // does not follow symlinks out of the directory
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + relative
  std::string operator/(std::string_view relative) const { return path_ + "/" + std::string(relative); }
  // Creates a subdirectory (and its parents); returns its path.
  std::string MakeDir(std::string_view relative) const {
    std::string p = *this / relative;
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

// The file behind a segment name, as confcast-publisher and Subscriber resolve it.
inline std::string SegmentFile(const std::string& segment) {
  return segment.starts_with('/') ? segment : "/dev/shm/" + segment;
}

inline bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Owns a segment name: removes the segment when it goes out of scope.
class SegmentGuard {
 public:
  // A name without '/' is a POSIX shm object; an absolute path a tmpfs file.
  explicit SegmentGuard(std::string segment) : segment_(std::move(segment)) {}
  ~SegmentGuard() { Remove(); }
  SegmentGuard(const SegmentGuard&) = delete;
  SegmentGuard& operator=(const SegmentGuard&) = delete;

  const std::string& name() const { return segment_; }
  std::string file() const { return SegmentFile(segment_); }
  bool Exists() const { return PathExists(file()); }
  void Remove() const {
    if (segment_.starts_with('/')) {
      ::unlink(segment_.c_str());
      ::unlink((segment_ + ".confcast-lock").c_str());
    } else {
      shm_unlink(("/" + segment_).c_str());
      shm_unlink(("/" + segment_ + ".confcast-lock").c_str());  // the publisher lock beside it
    }
  }

 private:
  std::string segment_;
};

// -- changing files the ways the real world does --------------------------------

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

// open(O_WRONLY|O_CREAT|O_TRUNC) + write + close: an in-place write, one
// IN_CLOSE_WRITE at the end (the inode stays the same).
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

// An editor's save: write a temporary file in the same directory, then
// rename(2) it over the name (a new inode replaces the old one atomically).
inline void WriteViaRename(const std::string& path, std::string_view content, mode_t mode = 0644) {
  const std::filesystem::path target(path);
  const std::string temp = (target.parent_path() / ("." + target.filename().string() + ".tmp-" + RandomHex(6))).string();
  WriteInPlace(temp, content, mode);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    ThrowErrno("rename " + temp + " -> " + path);
  }
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
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

// -- bounded waiting --------------------------------------------------------------

// Polls `done` every `interval` until it returns true (-> true) or `timeout`
// passes (-> false, after one last look).
template <class Predicate>
bool WaitUntil(Predicate&& done, milliseconds timeout, milliseconds interval = milliseconds(5)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(interval);
  }
}

// -- child processes -----------------------------------------------------------

// How a child ended.
struct ExitStatus {
  bool exited = false;  // true: exit(code); false: killed by `signal`
  int code = -1;
  int signal = 0;

  static ExitStatus FromWait(int status) {
    ExitStatus s;
    if (WIFEXITED(status)) {
      s.exited = true;
      s.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      s.signal = WTERMSIG(status);
    }
    return s;
  }
  bool ExitedWith(int expected) const { return exited && code == expected; }
  std::string ToString() const {
    return exited ? "exit " + std::to_string(code) : "killed by signal " + std::to_string(signal);
  }
};

struct SpawnOptions {
  std::map<std::string, std::string> env_set{};  // added to (or replacing in) the parent's environment
  std::vector<std::string> env_unset{};          // removed from it
  std::optional<mode_t> umask{};                 // the child's umask (default: inherited)
  std::string working_directory{};               // default: inherited
};

// A child process whose stdout and stderr are captured in files of its own.
// Destruction SIGKILLs it (if it still runs) and reaps it, so no test leaves
// a process behind, whichever ASSERT fails first.
class ChildProcess {
 public:
  // fork + execve(argv[0], argv). Throws if the program cannot be executed
  // (the child reports execve's errno through a close-on-exec pipe).
  static ChildProcess Spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {}) {
    if (argv.empty()) throw std::invalid_argument("Spawn: empty argv");
    ChildProcess child;
    // Everything the child needs is prepared before fork: after it, only
    // async-signal-safe calls (the parent may have other threads).
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_strings = BuildEnvironment(options);
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) ThrowErrno("pipe2");
    Redirections io = child.OpenCaptures();
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      const int saved = errno;
      ::close(report[0]);
      ::close(report[1]);
      io.Close();
      errno = saved;
      ThrowErrno("fork");
    }
    if (pid == 0) {
      PrepareChild(io, parent, options.umask, options.working_directory.empty() ? nullptr
                                                                                  : options.working_directory.c_str());
      execve(args[0], args.data(), envp.data());
      const int err = errno;
      (void)!::write(report[1], &err, sizeof(err));
      _exit(127);
    }
    ::close(report[1]);
    io.Close();
    child.pid_ = pid;
    child.description_ = argv[0];
    int exec_errno = 0;
    ssize_t n;
    do {
      n = ::read(report[0], &exec_errno, sizeof(exec_errno));  // EOF (0) once execve succeeded
    } while (n < 0 && errno == EINTR);
    ::close(report[0]);
    if (n > 0) {
      child.WaitExit(milliseconds(5000));
      errno = exec_errno;
      ThrowErrno("execve " + argv[0]);
    }
    return child;
  }

  // fork and run `body` in the child; its return value is the exit code (an
  // exception gives 125). See the threading note at the top of this file.
  static ChildProcess Fork(const std::function<int()>& body, std::string description = "forked child") {
    ChildProcess child;
    Redirections io = child.OpenCaptures();
    std::fflush(nullptr);  // nothing buffered in the parent is written twice
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      io.Close();
      ThrowErrno("fork");
    }
    if (pid == 0) {
      PrepareChild(io, parent, std::nullopt, nullptr);
      int rc = 125;
      try {
        rc = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: uncaught exception: %s\n", description.c_str(), e.what());
      } catch (...) {
      }
      std::fflush(nullptr);
      _exit(rc);
    }
    io.Close();
    child.pid_ = pid;
    child.description_ = std::move(description);
    return child;
  }

  ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
  ChildProcess& operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
      KillAndReap();
      pid_ = std::exchange(other.pid_, -1);
      status_ = std::exchange(other.status_, std::nullopt);
      captures_ = std::move(other.captures_);
      description_ = std::move(other.description_);
    }
    return *this;
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { KillAndReap(); }

  pid_t pid() const { return pid_; }

  // True while the child has not exited (reaps it if it has).
  bool Running() {
    if (status_ || pid_ < 0) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = ExitStatus::FromWait(status);
      return false;
    }
    return r == 0;
  }

  // Sends `sig`; false if the child is gone already.
  bool Signal(int sig) {
    if (!Running()) return false;
    return ::kill(pid_, sig) == 0;
  }

  // Waits up to `timeout` for the child to end; nullopt if it still runs.
  std::optional<ExitStatus> WaitExit(milliseconds timeout) {
    WaitUntil([&] { return !Running(); }, timeout, milliseconds(2));
    return status_;
  }

  // Waits until the child is stopped (after SIGSTOP): only then is what it
  // left in memory frozen. False on timeout or if it ended instead.
  bool WaitStopped(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (pid_ >= 0 && !status_) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WUNTRACED | WNOHANG);
      if (r == pid_) {
        if (WIFSTOPPED(status)) return true;
        status_ = ExitStatus::FromWait(status);
        return false;
      }
      if (r < 0 || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    return false;
  }

  // The exit status once reaped (Running() or WaitExit() saw it end).
  const std::optional<ExitStatus>& exit_status() const { return status_; }

  // SIGKILL (if running) and reap. Safe to call more than once.
  void KillAndReap() {
    if (pid_ < 0) return;
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      pid_t r;
      do {
        r = waitpid(pid_, &status, 0);  // SIGKILL cannot be ignored: this returns promptly
      } while (r < 0 && errno == EINTR);
      if (r == pid_) status_ = ExitStatus::FromWait(status);
    }
  }

  std::string Stdout() const { return captures_ ? ReadFile(captures_->path() + "/stdout") : ""; }
  std::string Stderr() const { return captures_ ? ReadFile(captures_->path() + "/stderr") : ""; }

  // How often `needle` occurs in the captured stderr so far.
  size_t CountInStderr(std::string_view needle) const {
    const std::string text = Stderr();
    size_t count = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
    return count;
  }
  // Polls the captured stderr until `needle` occurs at least `occurrences` times.
  bool WaitForStderr(std::string_view needle, milliseconds timeout, size_t occurrences = 1) const {
    return WaitUntil([&] { return CountInStderr(needle) >= occurrences; }, timeout, milliseconds(10));
  }

  // One line for failure messages: what, pid, state, and the captured stderr.
  std::string Describe() const {
    std::string state = status_ ? status_->ToString() : "running";
    return description_ + " (pid " + std::to_string(pid_) + ", " + state + ")\n--- stderr ---\n" + Stderr() +
           "--- stdout ---\n" + Stdout();
  }

 private:
  ChildProcess() = default;

  struct Redirections {
    int in = -1, out = -1, err = -1;
    void Close() {
      for (int* fd : {&in, &out, &err}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
    }
  };

  Redirections OpenCaptures() {
    captures_ = std::make_unique<TempDir>("io");
    Redirections io;
    io.in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    io.out = ::open((captures_->path() + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    io.err = ::open((captures_->path() + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (io.in < 0 || io.out < 0 || io.err < 0) {
      const int saved = errno;
      io.Close();
      errno = saved;
      ThrowErrno("open capture files");
    }
    return io;
  }

  static std::vector<std::string> BuildEnvironment(const SpawnOptions& options) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string_view entry(*e);
      const size_t eq = entry.find('=');
      if (eq == std::string_view::npos) continue;
      env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    }
    for (const std::string& name : options.env_unset) env.erase(name);
    for (const auto& [name, value] : options.env_set) env[name] = value;
    std::vector<std::string> out;
    for (const auto& [name, value] : env) out.push_back(name + "=" + value);
    return out;
  }

  // In the child, between fork and exec: async-signal-safe calls only.
  static void PrepareChild(const Redirections& io, pid_t parent, std::optional<mode_t> mask, const char* cwd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(io.in, 0) < 0 || dup2(io.out, 1) < 0 || dup2(io.err, 2) < 0) _exit(126);
    if (mask) umask(*mask);
    if (cwd && chdir(cwd) != 0) _exit(126);
  }

  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::unique_ptr<TempDir> captures_;
  std::string description_;
};

// Runs a program to completion (at most `timeout`; then it is SIGKILLed and
// timed_out is set).
struct ProcessResult {
  ExitStatus status;
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string Describe() const {
    return (timed_out ? std::string("timed out") : status.ToString()) + "\n--- stdout ---\n" + out +
           "--- stderr ---\n" + err;
  }
};

inline ProcessResult RunToCompletion(const std::vector<std::string>& argv, milliseconds timeout = milliseconds(10000),
                                     const SpawnOptions& options = {}) {
  ChildProcess child = ChildProcess::Spawn(argv, options);
  ProcessResult result;
  if (auto status = child.WaitExit(timeout)) {
    result.status = *status;
  } else {
    result.timed_out = true;
    child.KillAndReap();
    if (child.exit_status()) result.status = *child.exit_status();
  }
  result.out = child.Stdout();
  result.err = child.Stderr();
  return result;
}

// -- the programs under test ------------------------------------------------------

inline std::string PublisherBinary() { return CONFCAST_PUBLISHER_BIN; }
inline std::string CtlBinary() { return CONFCAST_CTL_BIN; }

// Environment variables that change the publisher's defaults; cleared for
// every test publisher so that the caller's shell cannot change a test.
inline const std::vector<std::string>& PublisherEnvironmentKnobs() {
  static const std::vector<std::string> knobs = {"CONFIG_FILE", "CONFCAST_SEGMENT", "HOT_RELOAD_ENABLED"};
  return knobs;
}

struct PublisherOptions {
  std::string config{};                    // --config
  std::string segment{};                   // --segment
  std::optional<int> debounce_ms = 50;     // --debounce-ms (nullopt: the publisher's default)
  std::optional<int> poll_seconds = 0;     // --poll-seconds; 0 by default, so that a test of the
                                           //   watcher is not rescued by the poll
  std::string metrics_address = "none";    // --metrics-address
  std::optional<std::string> log_level{};  // --log-level
  std::vector<std::string> extra_args{};   // any other flags, appended
  SpawnOptions spawn{};                    // env_set (e.g. HOT_RELOAD_ENABLED), umask, ...
};

inline std::vector<std::string> PublisherArgv(const PublisherOptions& o) {
  std::vector<std::string> argv = {PublisherBinary(), "--config", o.config, "--segment", o.segment,
                                   "--metrics-address", o.metrics_address};
  if (o.debounce_ms) argv.insert(argv.end(), {"--debounce-ms", std::to_string(*o.debounce_ms)});
  if (o.poll_seconds) argv.insert(argv.end(), {"--poll-seconds", std::to_string(*o.poll_seconds)});
  if (o.log_level) argv.insert(argv.end(), {"--log-level", *o.log_level});
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

// Starts confcast-publisher; returns at once (see OpenWhenPublished).
inline ChildProcess StartPublisher(const PublisherOptions& options) {
  SpawnOptions spawn = options.spawn;
  for (const std::string& knob : PublisherEnvironmentKnobs()) {
    if (!spawn.env_set.contains(knob)) spawn.env_unset.push_back(knob);
  }
  return ChildProcess::Spawn(PublisherArgv(options), spawn);
}

// confcastctl --segment SEGMENT ARGS...
inline ProcessResult RunCtl(const std::string& segment, const std::vector<std::string>& args,
                            milliseconds timeout = milliseconds(10000)) {
  std::vector<std::string> argv = {CtlBinary(), "--segment", segment};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions spawn;
  spawn.env_unset = {"CONFCAST_SEGMENT"};
  return RunToCompletion(argv, timeout, spawn);
}

// -- waiting on the segment --------------------------------------------------------

// Opens the segment once it exists and holds a version (polls: before the
// publisher creates the segment there is nothing to sleep on). nullopt on
// timeout; a segment that exists but is corrupt or incompatible throws.
inline std::optional<Subscriber> OpenWhenPublished(const std::string& segment, milliseconds timeout) {
  std::optional<Subscriber> opened;
  WaitUntil(
      [&] {
        if (!opened) {
          try {
            opened.emplace(segment);
          } catch (const Error& e) {
            if (e.status() != CONFCAST_ERR_NO_SEGMENT && e.status() != CONFCAST_ERR_EMPTY) throw;
            return false;
          }
        }
        return opened->version() > 0;
      },
      timeout);
  if (opened && opened->version() == 0) opened.reset();
  return opened;
}

// Sleeps in the kernel until the version is above `after`; returns the version
// then seen (<= after on timeout).
inline uint64_t WaitForVersionAbove(const Subscriber& sub, uint64_t after, milliseconds timeout) {
  uint64_t seen = 0;
  const int rc = sub.Wait(after, static_cast<int>(timeout.count()), &seen);
  if (rc != CONFCAST_OK && rc != CONFCAST_ERR_TIMEOUT) throw Error(rc, "wait");
  return seen;
}

// True when no version above `current` appears within `window`: for asserting
// that something was NOT published (the window is the behaviour under test).
inline bool NoVersionAbove(const Subscriber& sub, uint64_t current, milliseconds window) {
  return WaitForVersionAbove(sub, current, window) <= current;
}

inline confcast_info InfoOf(const Subscriber& sub) {
  confcast_info info;
  if (int rc = sub.Info(&info); rc != CONFCAST_OK) throw Error(rc, "info");
  return info;
}

// Polls the segment's status until `done(info)`; returns the last info seen
// (check done(result) again, or use the bool overload).
template <class Predicate>
bool WaitForInfo(const Subscriber& sub, Predicate&& done, milliseconds timeout, confcast_info* last = nullptr) {
  confcast_info info{};
  const bool ok = WaitUntil(
      [&] {
        info = InfoOf(sub);
        return done(info);
      },
      timeout, milliseconds(5));
  if (last) *last = info;
  return ok;
}

// Rejections per reason (index: io, too_large, parse, validate).
struct ReasonCounts {
  uint64_t io = 0, too_large = 0, parse = 0, validate = 0;
};
inline ReasonCounts ErrorsByReason(const Subscriber& sub) {
  uint64_t raw[layout::kReasonCount] = {};
  if (int rc = sub.ErrorsByReason(raw); rc != CONFCAST_OK) throw Error(rc, "errors by reason");
  return {raw[0], raw[1], raw[2], raw[3]};
}

}  // namespace confcast::proctest

#endif  // CONFCAST_TESTS_PROCESS_HARNESS_HPP_
