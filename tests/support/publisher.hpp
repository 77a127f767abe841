// tests/support/publisher.hpp - the programs under test as a test drives
// them: confcast-publisher started with test defaults, confcastctl run to
// completion, and waits on what the publisher does to the segment.
//
// Waits: a new version is awaited in the kernel (Subscriber::Wait's futex);
// the segment appearing, the stats latch (errors, pid, last_error) and the
// publisher's inotify watch raise no event a test can sleep on, so they are
// polled against a deadline. Every wait reports failure instead of hanging.
//
// Needs CONFCAST_PUBLISHER_BIN and CONFCAST_CTL_BIN (tests/CMakeLists.txt
// defines both for the test binary).
//
// Threading: functions may be called from any thread; a Subscriber they
// return belongs to the caller.
#ifndef CONFCAST_TESTS_SUPPORT_PUBLISHER_HPP_
#define CONFCAST_TESTS_SUPPORT_PUBLISHER_HPP_

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "child_process.hpp"
#include "confcast/subscriber.hpp"
#include "scratch.hpp"
#include "wait.hpp"

namespace confcast::test_support {

inline std::string PublisherBinary() { return CONFCAST_PUBLISHER_BIN; }
inline std::string CtlBinary() { return CONFCAST_CTL_BIN; }

// Environment variables that change the publisher's defaults; cleared for
// every publisher StartPublisher starts, so that the caller's shell cannot
// change a test.
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
  std::string metrics_address = "none";    // --metrics-address; no port a parallel test could want
  std::optional<std::string> log_level{};  // --log-level
  std::vector<std::string> extra_args{};   // any other flags, appended
  SpawnOptions spawn{};                    // env_set (e.g. HOT_RELOAD_ENABLED), umask, as_user, ...
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

// The short form: the publisher's own debounce, no metrics port, no poll,
// plus `extra`.
inline std::vector<std::string> PublisherArgs(const std::string& config, const std::string& segment,
                                              std::vector<std::string> extra = {}) {
  return PublisherArgv({.config = config, .segment = segment, .debounce_ms = std::nullopt, .extra_args = extra});
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

// `nobody`, when this process is root, for a publisher that must not have
// root's CAP_DAC_OVERRIDE. Readers trust only root and their own user, so
// this also sets $CONFCAST_SEGMENT_OWNER to nobody's uid for the rest of the
// test process (ctest runs each test in its own).
inline std::optional<User> NobodyIfRoot() {
  std::optional<User> nobody = UserIfRoot("nobody");
  if (nobody) setenv("CONFCAST_SEGMENT_OWNER", std::to_string(nobody->uid).c_str(), 1);
  return nobody;
}

// Whether process `pid` has an inotify instance with at least one watch.
// The publisher installs its watcher only after the startup publish, so a
// change made in between would be missed (until the poll, if any): tests
// that change the file right after the first version wait for this first.
inline bool HasInotifyWatch(pid_t pid) {
  std::error_code ec;
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    if (std::filesystem::read_symlink(entry.path(), link_ec).string() != "anon_inode:inotify") continue;
    const std::string info = ReadFile("/proc/" + std::to_string(pid) + "/fdinfo/" + entry.path().filename().string());
    if (info.find("inotify wd:") != std::string::npos) return true;
  }
  return false;
}
inline bool WaitUntilWatching(pid_t pid, milliseconds timeout) {
  return WaitUntil([pid] { return HasInotifyWatch(pid); }, timeout);
}

// Opens the segment as soon as any Subscriber can (whatever the version),
// retrying every error until `timeout` (0: one try); *last_status says why
// the last try failed. For tests where refusals are expected on the way (a
// segment of another layout being replaced).
inline std::optional<Subscriber> OpenWhenReady(const std::string& segment, milliseconds timeout,
                                               int* last_status = nullptr) {
  std::optional<Subscriber> sub;
  int rc = CONFCAST_ERR_NO_SEGMENT;
  WaitUntil(
      [&] {
        if (sub) return true;
        try {
          sub.emplace(segment);
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

// Opens the segment once it exists and holds a version; nullopt on timeout.
// Stricter than OpenWhenReady: a segment that exists but is corrupt or
// incompatible throws at once instead of being waited out.
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
      timeout, milliseconds(5));
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

// Polls the segment's stats until `done(info)`; *last gets the last info seen.
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

// Rejections per reason.
struct ReasonCounts {
  uint64_t io = 0, too_large = 0, parse = 0, validate = 0;
};
inline ReasonCounts ErrorsByReason(const Subscriber& sub) {
  uint64_t raw[layout::kReasonCount] = {};
  if (int rc = sub.ErrorsByReason(raw); rc != CONFCAST_OK) throw Error(rc, "errors by reason");
  return {raw[layout::kReasonIo], raw[layout::kReasonTooLarge], raw[layout::kReasonParse],
          raw[layout::kReasonValidate]};
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_PUBLISHER_HPP_
