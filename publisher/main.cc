// confcast-publisher: watches a YAML config (one file, or several files and
// directories merged into one) and publishes each good version into a
// shared-memory segment.
//
// One thread runs everything that touches the segment: an epoll loop over a
// signalfd (SIGHUP reload, SIGTERM/SIGINT stop), the inotify fd, a debounce
// timer, the one-second heartbeat and the poll timer. The metrics exposer
// answers scrapes on its own thread from thread-safe counters.
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "confcast/defaults.hpp"
#include "config_file.hpp"
#include "config_sources.hpp"
#include "file_watcher.hpp"
#include "ledger_watch.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "reloader.hpp"
#include "schema.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace cp = confcast::publisher;

namespace {

struct Flags {
  std::vector<std::string> config;  // the sources, in merge order
  std::string segment;
  std::string schema;
  int64_t debounce_ms = 200;
  std::string metrics_address = "0.0.0.0:9464";
  std::string metrics_prefix = confcast::kDefaultMetricsPrefix;
  uint64_t capacity = 1 << 20;
  uint64_t max_config_bytes = 1 << 20;
  std::string segment_mode = "0640";
  int64_t poll_seconds = 10;
  bool strict = false;
  bool no_watch = false;
  std::string log_level = "info";
  std::string log_format = "text";
  bool check = false;
};

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

bool EnvIsFalse(const char* name) {
  std::string v = EnvOr(name, "");
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "false" || v == "0" || v == "no" || v == "off";
}

// What the event loop takes as events (SIGHUP reload, SIGTERM/SIGINT stop).
sigset_t LoopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

void ArmTimer(int fd, int64_t ms, bool periodic) {
  itimerspec spec{};
  spec.it_value.tv_sec = ms / 1000;
  spec.it_value.tv_nsec = (ms % 1000) * 1000000L;
  if (ms == 0) spec.it_value.tv_nsec = 1;  // 0 would disarm: fire "now" instead
  if (periodic) spec.it_interval = spec.it_value;
  timerfd_settime(fd, 0, &spec, nullptr);
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void DrainFd(int fd) {
  uint64_t buf[16];
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
}

int RunCheck(const Flags& flags, const cp::Schema& schema) {
  auto read = cp::ReadConfigSources(flags.config, flags.max_config_bytes);
  if (auto* err = std::get_if<cp::ConfigError>(&read)) {
    std::cout << err->ToString() << "\n";
    return 1;
  }
  const cp::ConfigSources& sources = std::get<cp::ConfigSources>(read);
  const std::string label = cp::SourcesLabel(flags.config);
  // The limits of a publish into a segment of this --capacity (rounded up to
  // whole words, as the segment does), so --check refuses what a reload would.
  const uint64_t capacity = (flags.capacity + 7) & ~uint64_t{7};
  auto parsed = cp::ParseAndValidateSources(sources.files, schema, flags.strict, capacity);
  if (auto* err = std::get_if<cp::ConfigError>(&parsed)) {
    std::cout << err->ToString() << "\n";
    return 1;
  }
  auto built = confcast::snapshot::BuildSnapshotWithin(std::get<cp::ValidatedConfig>(parsed).config, capacity);
  if (auto* err = std::get_if<confcast::snapshot::BuildError>(&built)) {
    std::string message = err->message;
    if (err->too_large && !err->path.empty()) message += ", path " + err->path;
    std::cout << cp::ConfigError{err->too_large ? cp::Reason::kTooLarge : cp::Reason::kValidate, label, 0, 0,
                                 err->too_large ? "" : err->path, message}
                     .ToString()
              << "\n";
    return 1;
  }
  for (const std::string& w : std::get<cp::ValidatedConfig>(parsed).warnings) std::cout << "warning: " << w << "\n";
  std::cout << label << ": valid (sha256 " << sources.sha256_hex << ")\n";
  return 0;
}

int Run(const Flags& flags) {
  spdlog::level::level_enum level;
  if (!cp::ParseLogLevel(flags.log_level, &level)) {
    std::cerr << "confcast-publisher: unknown --log-level '" << flags.log_level << "'\n";
    return 2;
  }
  cp::InitLogging(flags.log_format == "json" ? cp::LogFormat::kJson : cp::LogFormat::kText, level);

  std::optional<cp::Schema> schema;
  if (flags.schema.empty()) {
    schema = cp::Schema::HolmesGpt();
  } else {
    auto loaded = cp::Schema::FromFile(flags.schema);
    if (auto* err = std::get_if<cp::ConfigError>(&loaded)) {
      cp::LogEvent(spdlog::level::critical, "invalid --schema: " + err->ToString());
      if (flags.check) std::cout << err->ToString() << "\n";
      return 1;
    }
    schema = std::move(std::get<cp::Schema>(loaded));
  }
  if (flags.check) {
    // A one-shot command with no loop to read them: Ctrl-C stops it as usual.
    const sigset_t signals = LoopSignals();
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    return RunCheck(flags, *schema);
  }

  char* end = nullptr;
  const long mode = std::strtol(flags.segment_mode.c_str(), &end, 8);
  if (flags.segment_mode.empty() || *end != '\0' || mode < 0 || mode > 07777) {
    cp::LogEvent(spdlog::level::critical, "--segment-mode must be an octal mode such as 0640");
    return 2;
  }

  // main() blocked the loop's signals before anything else; one that came
  // since is pending, and the signalfd below reports it once the loop runs.
  const sigset_t signals = LoopSignals();
  std::signal(SIGPIPE, SIG_IGN);

  // The worker ledger before the segment: a worker that opens the segment
  // (even before the first publish) finds the ledger there to register in.
  cp::LedgerWatch::Prepare(flags.segment, static_cast<mode_t>(mode));
  auto opened = cp::SegmentWriter::Open({flags.segment, flags.capacity, static_cast<mode_t>(mode)});
  if (auto* failure = std::get_if<cp::SegmentWriter::Failure>(&opened)) {
    cp::LogEvent(spdlog::level::critical, failure->message);
    return 1;
  }
  std::unique_ptr<cp::SegmentWriter> segment = std::move(std::get<0>(opened));

  auto started = cp::Metrics::Start(flags.metrics_address, flags.metrics_prefix);
  if (auto* msg = std::get_if<std::string>(&started)) {
    segment->RemoveIfCreatedAndEmpty();
    cp::LogEvent(spdlog::level::critical, *msg);
    return 1;
  }
  std::unique_ptr<cp::Metrics> metrics = std::move(std::get<0>(started));
  metrics->SetVersion(segment->version());  // an adopted segment's version, even if the first reload fails

  cp::LogEvent(spdlog::level::info, "confcast-publisher starting",
               {{"config", cp::SourcesLabel(flags.config)},
                {"segment", segment->location()},
                {"adopted", segment->adopted()},
                {"version", segment->version()},
                {"watch", !flags.no_watch},
                {"debounce_ms", flags.debounce_ms},
                {"poll_seconds", flags.no_watch ? 0 : flags.poll_seconds},
                {"metrics", flags.metrics_address == "none" ? std::string("none")
                                                             : flags.metrics_address + " (port " +
                                                                   std::to_string(metrics->port()) + ")"}});

  cp::LogEvent(spdlog::level::info,
               std::string(flags.no_watch ? "reading " : "watching ") + std::to_string(flags.config.size()) +
                   (flags.config.size() == 1 ? " source: " : " sources: ") + cp::DescribeSources(flags.config),
               {{"sources", flags.config}});

  // Watch before the first read, so that a change landing during it is not
  // missed until the next poll.
  std::unique_ptr<cp::FileWatcher> watcher;
  if (!flags.no_watch) {
    try {
      watcher = std::make_unique<cp::FileWatcher>(flags.config);
    } catch (const std::exception& e) {
      segment->RemoveIfCreatedAndEmpty();
      cp::LogEvent(spdlog::level::critical, std::string("cannot watch the config: ") + e.what());
      return 1;
    }
  }

  if (segment->replacement_pending()) {
    cp::LogEvent(spdlog::level::warn,
                 "the segment has another shape; it keeps serving until a valid config replaces it",
                 {{"segment", segment->location()},
                  {"found", segment->replaced_shape()},
                  {"capacity", segment->capacity()},
                  {"version", segment->version()}});
  }
  cp::Reloader reloader({flags.config, flags.max_config_bytes, flags.strict}, std::move(*schema), *segment, *metrics);
  cp::LedgerWatch ledger(segment->location(), *metrics);
  // The replacement happens inside a publish; say so once when it has.
  auto reload = [&](cp::Trigger trigger) {
    const bool was_pending = segment->replacement_pending();
    const uint64_t before = segment->version();
    cp::ReloadOutcome outcome = reloader.Reload(trigger);
    if (segment->version() != before) ledger.OnPublish(segment->version(), MonotonicNs());
    if (was_pending && !segment->replacement_pending()) {
      cp::LogEvent(spdlog::level::info, "replaced the segment of another shape; readers of the old one reopen",
                   {{"segment", segment->location()},
                    {"was", segment->replaced_shape()},
                    {"capacity", segment->capacity()},
                    {"version", segment->version()}});
    }
    return outcome;
  };
  const cp::ReloadOutcome first = reload(cp::Trigger::kStartup);
  if (first.version == 0) {
    segment->RemoveIfCreatedAndEmpty();
    cp::LogEvent(spdlog::level::critical,
                 "no valid config to start with and nothing published before: " +
                     (first.error ? first.error->ToString() : std::string("unknown error")) +
                     (segment->replacement_pending() ? "; the segment found there (" + segment->replaced_shape() +
                                                           ") is left as it was"
                                                     : std::string()));
    return 1;
  }

  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  const int sigfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  const int debounce_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const int heartbeat_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const int poll_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  const int ledger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epfd < 0 || sigfd < 0 || debounce_fd < 0 || heartbeat_fd < 0 || poll_fd < 0 || ledger_fd < 0) {
    cp::LogEvent(spdlog::level::critical, std::string("cannot set up the event loop: ") + std::strerror(errno));
    return 1;
  }
  auto add = [epfd](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  };
  add(sigfd);
  add(debounce_fd);
  add(heartbeat_fd);
  ArmTimer(heartbeat_fd, 1000, true);
  add(ledger_fd);
  ArmTimer(ledger_fd, cp::LedgerWatch::kScanMs, true);
  ledger.Scan(segment->version(), MonotonicNs());  // the ledger metrics from the first scrape on
  if (watcher) add(watcher->fd());
  if (!flags.no_watch && flags.poll_seconds > 0) {
    add(poll_fd);
    ArmTimer(poll_fd, flags.poll_seconds * 1000, true);
  }

  for (;;) {
    epoll_event events[8];
    const int n = epoll_wait(epfd, events, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      cp::LogEvent(spdlog::level::critical, std::string("epoll_wait: ") + std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == sigfd) {
        signalfd_siginfo info;
        while (read(sigfd, &info, sizeof(info)) == sizeof(info)) {
          if (info.ssi_signo == SIGHUP) {
            cp::LogEvent(spdlog::level::info, "SIGHUP: reloading now");
            reload(cp::Trigger::kSignal);
          } else {
            cp::LogEvent(spdlog::level::info, "stopping; the segment stays for the workers",
                         {{"signal", strsignal(static_cast<int>(info.ssi_signo))},
                          {"version", segment->version()}});
            return 0;
          }
        }
      } else if (watcher && fd == watcher->fd()) {
        if (watcher->HandleEvents()) ArmTimer(debounce_fd, flags.debounce_ms, false);  // trailing edge
      } else if (fd == debounce_fd) {
        DrainFd(debounce_fd);
        reload(cp::Trigger::kFileEvent);
      } else if (fd == heartbeat_fd) {
        DrainFd(heartbeat_fd);
        segment->Heartbeat(cp::RealtimeNs());
      } else if (fd == ledger_fd) {
        DrainFd(ledger_fd);
        ledger.Scan(segment->version(), MonotonicNs());
      } else if (fd == poll_fd) {
        DrainFd(poll_fd);
        reload(cp::Trigger::kPoll);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A SIGTERM or SIGINT during startup (flag parsing, schema, segment, first
  // publish: milliseconds before the loop's signalfd exists) would otherwise
  // kill the process with the default action, an exit by signal instead of
  // the clean stop (exit 0, segment left for the workers) the contract
  // promises, and a SIGHUP would kill it too. Blocked, they wait as pending
  // signals for the signalfd. This runs before any thread exists, so every
  // thread inherits the mask and none takes them. The publisher starts no
  // other program; code that ever does must unblock them in the child, as a
  // blocked mask and pending signals survive execve. (One that arrives before
  // main(), while the dynamic loader runs, still kills: only a launcher that
  // blocks them across execve closes that window.)
  const sigset_t loop_signals = LoopSignals();
  sigprocmask(SIG_BLOCK, &loop_signals, nullptr);

  Flags flags;
  // $CONFIG_FILE may list several sources, as PATH lists directories.
  flags.config = cp::SplitConfigPaths(EnvOr("CONFIG_FILE", confcast::kDefaultConfigPath));
  if (flags.config.empty()) flags.config = {confcast::kDefaultConfigPath};
  flags.segment = confcast::ResolveSegmentName({});
  flags.no_watch = EnvIsFalse("HOT_RELOAD_ENABLED");

  CLI::App app{"confcast-publisher: watch a YAML config and broadcast each good version through shared memory"};
  app.add_option("--config", flags.config,
                 "a YAML file or a directory of them to watch; repeat to merge several, later ones overriding "
                 "($CONFIG_FILE, ':'-separated)")
      ->capture_default_str();
  app.add_option("--segment", flags.segment,
                 "segment: a name (POSIX shm, /dev/shm/NAME) or an absolute path in a tmpfs ($CONFCAST_SEGMENT)")
      ->capture_default_str();
  app.add_option("--schema", flags.schema, "a YAML schema file (default: the built-in HolmesGPT schema)");
  app.add_option("--debounce-ms", flags.debounce_ms, "quiet time after the last file event before a reload")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  app.add_option("--metrics-address", flags.metrics_address, "HOST:PORT for /metrics, or none")->capture_default_str();
  app.add_option("--metrics-prefix", flags.metrics_prefix, "prefix of the reload metrics")->capture_default_str();
  app.add_option("--capacity", flags.capacity, "the largest snapshot the segment holds, in bytes")
      ->capture_default_str()->check(CLI::Range(uint64_t{64}, confcast::layout::kMaxSlotCapacity));
  app.add_option("--max-config-bytes", flags.max_config_bytes, "a larger config file is rejected unread")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--segment-mode", flags.segment_mode, "permissions of the segment (octal)")->capture_default_str();
  app.add_option("--poll-seconds", flags.poll_seconds, "re-hash the file this often as a safety net; 0 = off")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{86400}));
  app.add_flag("--strict", flags.strict, "reject keys that the schema does not know");
  app.add_flag("--no-watch", flags.no_watch, "publish once and only reload on SIGHUP (HOT_RELOAD_ENABLED=false)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warning, error, critical")->capture_default_str();
  app.add_option("--log-format", flags.log_format, "text or json")
      ->capture_default_str()->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--check", flags.check,
               "validate the config (every source), print what is wrong, exit 0 if valid else 1");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return Run(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "confcast-publisher: fatal: %s\n", e.what());
    return 1;
  }
}
