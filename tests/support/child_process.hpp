// tests/support/child_process.hpp - child processes a test can always clean
// up: spawned programs (optionally as another user), forked functions, their
// captured output, and bounded waits for their exit.
//
// Every child gets PR_SET_PDEATHSIG(SIGKILL) (set after any change of user,
// which clears it), so a crashed or killed test binary leaves no publisher
// running; a ChildProcess going out of scope SIGKILLs and reaps its child,
// whichever ASSERT failed first. Exits are awaited on a pidfd (an event), not
// by polling waitpid.
//
// Threading: a ChildProcess object belongs to one thread. Spawn only calls
// async-signal-safe functions between fork and exec, so it may be used while
// other threads run. Fork runs C++ in the child: call it only while the test
// process has no other threads (a plain gtest test body), and keep the
// child's body simple (it ends in _exit, never returning into gtest).
#ifndef CONFCAST_TESTS_SUPPORT_CHILD_PROCESS_HPP_
#define CONFCAST_TESTS_SUPPORT_CHILD_PROCESS_HPP_

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scratch.hpp"
#include "wait.hpp"

extern char** environ;

namespace confcast::test_support {

// Another user a root test runs a process as.
struct User {
  uid_t uid;
  gid_t gid;
};

// `name`'s uid and gid when this process is root (only root can become
// someone else); nullopt otherwise, or when there is no such user: the
// caller skips.
inline std::optional<User> UserIfRoot(const char* name) {
  if (geteuid() != 0) return std::nullopt;
  const passwd* pw = getpwnam(name);
  if (pw == nullptr) return std::nullopt;
  return User{pw->pw_uid, pw->pw_gid};
}

// A copy of the program at `path` that any user can run. The build tree may
// lie in a directory only its owner can enter (`mktemp -d` makes one 0700),
// and exec as `nobody` then fails; the copy lives in a world-traversable
// directory removed at exit. Copied once per program per test process.
inline std::string RunnableByAnyone(const std::string& path) {
  static TempDir dir("bin");
  static std::map<std::string, std::string> copies;
  auto [it, inserted] = copies.try_emplace(path);
  if (inserted) {
    it->second = dir / (std::filesystem::path(path).filename().string() + "-" + std::to_string(copies.size()));
    std::filesystem::copy_file(path, it->second, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(it->second, std::filesystem::perms(0755));
  }
  return it->second;
}

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
  std::string output_path{};                     // stdout and stderr appended to this file ("" = captured apart)
  std::optional<User> as_user{};                 // run as this user (a world-runnable copy of the program)
  std::optional<mode_t> umask{};                 // default: inherited
  std::map<std::string, std::string> env_set{};  // added to (or replacing in) this process's environment
  std::vector<std::string> env_unset{};          // removed from it
  std::string working_directory{};               // default: inherited
};

// A child process; stdout and stderr go to files of its own (or to
// SpawnOptions::output_path). A default-constructed one is no process.
class ChildProcess {
 public:
  ChildProcess() = default;

  // fork + execve(argv[0], argv). Throws if the program cannot be executed
  // (the child reports execve's errno through a close-on-exec pipe).
  static ChildProcess Spawn(std::vector<std::string> argv, const SpawnOptions& options = {}) {
    if (argv.empty()) throw std::invalid_argument("Spawn: empty argv");
    if (options.as_user) argv[0] = RunnableByAnyone(argv[0]);
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
    const Setup setup{options.umask, options.working_directory.empty() ? nullptr : options.working_directory.c_str(),
                      options.as_user};
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) ThrowErrno("pipe2");
    Redirections io = child.OpenOutput(options.output_path);
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
      PrepareChild(io, parent, setup);
      execve(args[0], args.data(), envp.data());
      const int err = errno;
      (void)!::write(report[1], &err, sizeof(err));
      _exit(127);
    }
    ::close(report[1]);
    io.Close();
    child.Adopt(pid, argv[0]);
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

  // fork and run `body` in the child, as `as_user` if given; its return value
  // is the exit code (an exception gives 125). See the threading note above.
  static ChildProcess Fork(const std::function<int()>& body, std::string description = "forked child",
                           std::optional<User> as_user = std::nullopt) {
    ChildProcess child;
    Redirections io = child.OpenOutput("");
    std::fflush(nullptr);  // nothing buffered in the parent is written twice
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      io.Close();
      ThrowErrno("fork");
    }
    if (pid == 0) {
      PrepareChild(io, parent, Setup{std::nullopt, nullptr, as_user});
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
    child.Adopt(pid, std::move(description));
    return child;
  }

  ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
  ChildProcess& operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
      KillAndReap();
      if (pidfd_ >= 0) ::close(pidfd_);
      pid_ = std::exchange(other.pid_, -1);
      pidfd_ = std::exchange(other.pidfd_, -1);
      status_ = std::exchange(other.status_, std::nullopt);
      captures_ = std::move(other.captures_);
      stdout_path_ = std::move(other.stdout_path_);
      stderr_path_ = std::move(other.stderr_path_);
      description_ = std::move(other.description_);
    }
    return *this;
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    KillAndReap();
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  pid_t pid() const { return pid_; }

  // True while the child has not exited (reaps it if it has).
  bool Running() {
    if (status_ || pid_ < 0) return false;
    return !Reap(WNOHANG);
  }

  // Sends `sig`; false if the child is gone already.
  bool Signal(int sig) {
    if (!Running()) return false;
    return ::kill(pid_, sig) == 0;
  }

  // Waits up to `timeout` for the child to end; nullopt if it still runs.
  std::optional<ExitStatus> WaitExit(milliseconds timeout) {
    if (status_ || pid_ < 0) return status_;
    if (pidfd_ >= 0) {
      const auto deadline = Clock::now() + timeout;
      while (!Reap(WNOHANG)) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        pollfd p{pidfd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
      }
    } else {
      WaitUntil([&] { return Reap(WNOHANG); }, timeout);
    }
    return status_;
  }

  // Waits until the child is stopped (after SIGSTOP): only then is what it
  // left in memory frozen. False on timeout or if it ended instead. Polled:
  // a pidfd reports exits, not stops.
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
  // The exit code, or -1 while running or when killed by a signal.
  int exit_code() const { return status_ && status_->exited ? status_->code : -1; }
  // The signal that killed it, or 0.
  int term_signal() const { return status_ ? status_->signal : 0; }

  // SIGKILL (if running) and reap. Safe to call more than once.
  void KillAndReap() {
    if (pid_ < 0 || status_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, 0);  // SIGKILL cannot be ignored: this returns promptly
    } while (r < 0 && errno == EINTR);
    if (r == pid_) status_ = ExitStatus::FromWait(status);
  }

  // With SpawnOptions::output_path both return that file's whole content.
  std::string Stdout() const { return stdout_path_.empty() ? "" : ReadFile(stdout_path_); }
  std::string Stderr() const { return stderr_path_.empty() ? "" : ReadFile(stderr_path_); }

  // How often `needle` occurs in the captured stderr so far.
  size_t CountInStderr(std::string_view needle) const {
    const std::string text = Stderr();
    size_t count = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++count;
    return count;
  }
  // Polls the captured stderr (a file: no event) until `needle` occurs at
  // least `occurrences` times.
  bool WaitForStderr(std::string_view needle, milliseconds timeout, size_t occurrences = 1) const {
    return WaitUntil([&] { return CountInStderr(needle) >= occurrences; }, timeout, milliseconds(10));
  }

  // For failure messages: what, pid, state, and the captured output.
  std::string Describe() const {
    std::string state = status_ ? status_->ToString() : "running";
    std::string text = description_ + " (pid " + std::to_string(pid_) + ", " + state + ")\n--- stderr ---\n" + Stderr();
    if (stdout_path_ != stderr_path_) text += "--- stdout ---\n" + Stdout();
    return text;
  }

 private:
  struct Redirections {
    int in = -1, out = -1, err = -1;
    void Close() {
      for (int* fd : {&in, &out, &err}) {
        if (*fd >= 0) ::close(*fd);
        *fd = -1;
      }
    }
  };
  // What the child changes about itself before exec (or before the body).
  struct Setup {
    std::optional<mode_t> umask;
    const char* cwd;
    std::optional<User> as_user;
  };

  void Adopt(pid_t pid, std::string description) {
    pid_ = pid;
    // No pidfd (a kernel before 5.3): WaitExit falls back to polling.
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    description_ = std::move(description);
  }

  bool Reap(int flags) {
    if (status_) return true;
    int status = 0;
    if (waitpid(pid_, &status, flags) == pid_) status_ = ExitStatus::FromWait(status);
    return status_.has_value();
  }

  Redirections OpenOutput(const std::string& shared_path) {
    if (shared_path.empty()) {
      captures_ = std::make_unique<TempDir>("io");
      stdout_path_ = *captures_ / "stdout";
      stderr_path_ = *captures_ / "stderr";
    } else {
      stdout_path_ = stderr_path_ = shared_path;
    }
    Redirections io;
    io.in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    io.out = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    io.err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (io.in < 0 || io.out < 0 || io.err < 0) {
      const int saved = errno;
      io.Close();
      errno = saved;
      ThrowErrno("open output files of a child");
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
  static void PrepareChild(const Redirections& io, pid_t parent, const Setup& setup) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(io.in, 0) < 0 || dup2(io.out, 1) < 0 || dup2(io.err, 2) < 0) _exit(126);
    if (setup.umask) umask(*setup.umask);
    if (setup.cwd && chdir(setup.cwd) != 0) _exit(126);
    if (setup.as_user &&
        (setgroups(0, nullptr) != 0 || setgid(setup.as_user->gid) != 0 || setuid(setup.as_user->uid) != 0)) {
      _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);     // after setuid, which clears it
    if (getppid() != parent) _exit(126);  // the parent died before prctl
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<ExitStatus> status_;
  std::unique_ptr<TempDir> captures_;
  std::string stdout_path_;
  std::string stderr_path_;
  std::string description_;
};

// A short-lived program run to completion: at most `timeout`, then it is
// SIGKILLed and timed_out is set.
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

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_CHILD_PROCESS_HPP_
