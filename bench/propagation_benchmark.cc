// propagation_benchmark.cc - how long a config change takes to reach the
// workers: from the kubelet's ConfigMap update (the `..data` symlink renamed
// to a new timestamped directory) until each of N subscriber processes has
// the new version through Subscriber::Wait (a futex sleep in the kernel).
//
// A driver program, not a Google Benchmark: it starts the real
// confcast-publisher (CONFCAST_PUBLISHER_BIN, or --publisher) on a kubelet-
// style directory, forks N subscriber processes, and for each round swaps
// ..data and records, per subscriber, CLOCK_MONOTONIC (one clock for every
// process on the host) when its Wait returned with the new version. Per
// (debounce, N): latency p50/p99/max over every subscriber of every round,
// and the skew (last subscriber minus first) per round.
//
//   propagation_benchmark [--publisher PATH] [--subscribers 1,4,8] [--debounce-ms 0,200]
//                         [--rounds 200] [--debounced-rounds 30] [--json FILE] [--smoke]
//
// Threading: one thread per process. Every child process and segment is
// removed at the end, on failure, and on SIGINT/SIGTERM (children die with
// the driver: PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_support.hpp"
#include "confcast/subscriber.hpp"

namespace {

namespace fs = std::filesystem;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  if (out.empty()) throw std::runtime_error("empty list: " + text);
  return out;
}

// What one subscriber process reports for each version it sees.
struct Seen {
  uint64_t version;
  int64_t monotonic_ns;
};

// The child: open, then report every new version the moment Wait returns.
[[noreturn]] void SubscriberMain(const std::string& segment, int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::optional<confcast::Subscriber> opened;
  try {
    opened.emplace(segment);
  } catch (const confcast::Error&) {
    _exit(3);
  }
  const confcast::Subscriber& sub = *opened;
  uint64_t last = sub.version();
  const Seen ready{last, MonotonicNs()};
  if (write(report_fd, &ready, sizeof(ready)) != sizeof(ready)) _exit(4);
  for (;;) {
    uint64_t v = 0;
    const int rc = sub.Wait(last, 10000, &v);
    if (rc == CONFCAST_ERR_TIMEOUT) continue;
    if (rc != CONFCAST_OK) _exit(5);
    const Seen seen{v, MonotonicNs()};
    if (write(report_fd, &seen, sizeof(seen)) != sizeof(seen)) _exit(6);
    last = v;
  }
}

// Every process this run started, killed and reaped however the run ends.
class Children {
 public:
  ~Children() { KillAll(); }
  void Add(pid_t pid) { pids_.push_back(pid); }
  // SIGTERM first for the publisher (a clean stop), SIGKILL for the rest.
  void Stop(pid_t pid, int sig) {
    kill(pid, sig);
    const int64_t deadline = MonotonicNs() + 5'000'000'000;
    while (waitpid(pid, nullptr, WNOHANG) == 0) {
      if (MonotonicNs() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        break;
      }
      usleep(1000);
    }
    pids_.erase(std::remove(pids_.begin(), pids_.end(), pid), pids_.end());
  }
  void KillAll() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

// The kubelet's projection of a ConfigMap: DIR/..TIMESTAMP/config.yaml, the
// symlink DIR/..data -> ..TIMESTAMP, and DIR/config.yaml -> ..data/config.yaml.
// An update writes a new timestamped directory, points ..data_tmp at it,
// renames ..data_tmp over ..data, and removes the old directory.
class KubeletDir {
 public:
  explicit KubeletDir(const fs::path& dir) : dir_(dir) {}
  fs::path config_path() const { return dir_ / "config.yaml"; }
  void Init(const std::string& text) {
    current_ = WriteVersionDir(text);
    fs::create_directory_symlink(current_.filename(), dir_ / "..data");
    fs::create_symlink("..data/config.yaml", dir_ / "config.yaml");
  }
  // Everything before the swap (not timed): the new directory and ..data_tmp.
  void Prepare(const std::string& text) {
    next_ = WriteVersionDir(text);
    fs::create_directory_symlink(next_.filename(), dir_ / "..data_tmp");
  }
  // The swap itself; returns CLOCK_MONOTONIC just before the rename.
  int64_t Swap() {
    const int64_t t0 = MonotonicNs();
    if (rename((dir_ / "..data_tmp").c_str(), (dir_ / "..data").c_str()) != 0) {
      throw std::runtime_error(std::string("rename ..data_tmp: ") + std::strerror(errno));
    }
    fs::remove_all(current_);
    current_ = next_;
    return t0;
  }

 private:
  fs::path WriteVersionDir(const std::string& text) {
    char name[64];
    std::snprintf(name, sizeof(name), "..2024_01_01_00_00_00.%06d", ++serial_);
    const fs::path d = dir_ / name;
    fs::create_directory(d);
    std::ofstream out(d / "config.yaml", std::ios::binary);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + (d / "config.yaml").string());
    return d;
  }
  fs::path dir_, current_, next_;
  int serial_ = 0;
};

std::string ConfigText(const std::string& base, int round) {
  std::string text = base;
  const std::string from = "model: gpt-4o ";
  const size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("bench config has no 'model: gpt-4o'");
  text.replace(at, from.size(), "model: gpt-4o-r" + std::to_string(round) + " ");
  return text;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);  // nearest rank
  if (rank < 1) rank = 1;
  if (rank > v.size()) rank = v.size();
  return v[rank - 1];
}

nlohmann::json Summary(const std::vector<double>& ms) {
  double sum = 0;
  for (double x : ms) sum += x;
  return {{"p50", Percentile(ms, 50)},
          {"p99", Percentile(ms, 99)},
          {"max", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())},
          {"mean", ms.empty() ? 0.0 : sum / static_cast<double>(ms.size())}};
}

std::string Tail(const fs::path& log) {
  std::ifstream in(log);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

// Reads one Seen from fd within deadline_ns (CLOCK_MONOTONIC); false on timeout or EOF.
bool ReadSeen(int fd, int64_t deadline_ns, Seen* out) {
  size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(out);
  while (got < sizeof(Seen)) {
    const int64_t left_ms = (deadline_ns - MonotonicNs()) / 1000000;
    if (left_ms <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left_ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t n = read(fd, bytes + got, sizeof(Seen) - got);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

struct Options {
  std::string publisher = CONFCAST_PUBLISHER_BIN;
  std::vector<int> subscribers{1, 4, 8};
  std::vector<int> debounce_ms{0, 200};
  int rounds = 200;           // at --debounce-ms 0
  int debounced_rounds = 30;  // at a debounce above 0 (each round lasts at least the debounce)
  std::string json_path;
};

nlohmann::json RunCase(const Options& opt, int debounce_ms, int n_subscribers, const std::string& base_config) {
  const int rounds = debounce_ms == 0 ? opt.rounds : opt.debounced_rounds;
  char dir_template[] = "/tmp/confcast-bench-prop-XXXXXX";
  if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = dir_template;
  const fs::path config_dir = dir / "configmap";
  fs::create_directory(config_dir);
  const fs::path log = dir / "publisher.log";
  const std::string segment = confcast::bench::UniqueSegmentName("prop");
  confcast::bench::SegmentCleanup::Register(segment);
  Children children;
  struct Cleanup {
    const fs::path& dir;
    Children& children;
    ~Cleanup() {
      children.KillAll();
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir, children};

  KubeletDir kube(config_dir);
  kube.Init(ConfigText(base_config, 0));

  const pid_t publisher = fork();
  if (publisher < 0) throw std::runtime_error("fork failed");
  if (publisher == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    const std::string debounce = std::to_string(debounce_ms);
    const std::string config = kube.config_path().string();
    execl(opt.publisher.c_str(), opt.publisher.c_str(), "--config", config.c_str(), "--segment", segment.c_str(),
          "--metrics-address", "none", "--debounce-ms", debounce.c_str(), "--poll-seconds", "0", "--log-level",
          "warning", static_cast<char*>(nullptr));
    _exit(127);
  }
  children.Add(publisher);

  // The segment appears when the publisher has started; there is nothing to
  // sleep on before it exists, so poll for it (bounded).
  std::optional<confcast::Subscriber> probe;
  const int64_t ready_deadline = MonotonicNs() + 15'000'000'000;
  for (;;) {
    try {
      if (!probe) probe.emplace(segment);
    } catch (const confcast::Error&) {
      // not created yet
    }
    if (probe && probe->Wait(0, 1000) == CONFCAST_OK) break;
    if (waitpid(publisher, nullptr, WNOHANG) == publisher) {
      throw std::runtime_error("confcast-publisher exited at start:\n" + Tail(log));
    }
    if (MonotonicNs() > ready_deadline) throw std::runtime_error("confcast-publisher did not publish:\n" + Tail(log));
    usleep(5000);
  }

  std::vector<int> report_fds;
  struct FdCloser {
    std::vector<int>& fds;
    ~FdCloser() {
      for (int fd : fds) close(fd);
    }
  } closer{report_fds};
  for (int i = 0; i < n_subscribers; ++i) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      close(fds[0]);
      SubscriberMain(segment, fds[1]);
    }
    close(fds[1]);
    report_fds.push_back(fds[0]);
    children.Add(pid);
  }
  uint64_t version = probe->version();
  for (int fd : report_fds) {
    Seen ready;
    if (!ReadSeen(fd, MonotonicNs() + 10'000'000'000, &ready)) throw std::runtime_error("a subscriber did not start");
  }

  std::vector<double> latencies_ms, skews_ms;
  int timeouts = 0;
  int content = 0;
  // One swap; waits up to wait_ms for every subscriber to report a newer
  // version. Records the latencies and the skew when asked to. Returns how
  // many subscribers saw it.
  auto swap_and_wait = [&](int64_t wait_ms, bool record) {
    kube.Prepare(ConfigText(base_config, ++content));
    const int64_t t0 = kube.Swap();
    const int64_t deadline = t0 + wait_ms * 1000000;
    int64_t first = INT64_MAX, last = INT64_MIN;
    uint64_t newest = version;
    int seen_all = 0;
    for (int fd : report_fds) {
      Seen seen{};
      bool ok = false;
      while ((ok = ReadSeen(fd, deadline, &seen)) && seen.version <= version) {
      }
      if (!ok) {
        timeouts += record;
        continue;
      }
      ++seen_all;
      newest = std::max(newest, seen.version);
      if (record) latencies_ms.push_back(static_cast<double>(seen.monotonic_ns - t0) * 1e-6);
      first = std::min(first, seen.monotonic_ns);
      last = std::max(last, seen.monotonic_ns);
    }
    if (record && seen_all == n_subscribers) skews_ms.push_back(static_cast<double>(last - first) * 1e-6);
    version = newest;
    // Pacing, not synchronisation: ConfigMap updates are far apart, so let the
    // publisher finish with the events of this swap (the old directory's
    // removal) before the next one.
    usleep(20000);
    return seen_all;
  };

  // Warm-up, not measured: the publisher starts watching only after its first
  // publish, so a swap right after that publish can go unseen (and with
  // --poll-seconds 0 nothing would catch it). Swap until one arrives everywhere.
  bool warm = false;
  for (int attempt = 0; attempt < 10 && !warm; ++attempt) {
    warm = swap_and_wait(1000 + debounce_ms, false) == n_subscribers;
  }
  if (!warm) throw std::runtime_error("no swap reached every subscriber during the warm-up:\n" + Tail(log));

  int unseen_in_a_row = 0;
  for (int round = 1; round <= rounds; ++round) {
    unseen_in_a_row = swap_and_wait(5000 + int64_t{debounce_ms}, true) == 0 ? unseen_in_a_row + 1 : 0;
    if (unseen_in_a_row == 3) {
      throw std::runtime_error("rounds " + std::to_string(round - 2) + " to " + std::to_string(round) +
                               ": no subscriber saw a new version:\n" + Tail(log));
    }
  }
  children.Stop(publisher, SIGTERM);
  confcast::bench::SegmentCleanup::UnlinkAll();

  return {{"debounce_ms", debounce_ms},
          {"subscribers", n_subscribers},
          {"rounds", rounds},
          {"samples", latencies_ms.size()},
          {"timeouts", timeouts},
          {"latency_ms", Summary(latencies_ms)},
          {"skew_ms", Summary(skews_ms)}};
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--publisher") {
        opt.publisher = value();
      } else if (arg == "--subscribers") {
        opt.subscribers = ParseList(value());
      } else if (arg == "--debounce-ms") {
        opt.debounce_ms = ParseList(value());
      } else if (arg == "--rounds") {
        opt.rounds = std::stoi(value());
      } else if (arg == "--debounced-rounds") {
        opt.debounced_rounds = std::stoi(value());
      } else if (arg == "--json") {
        opt.json_path = value();
      } else if (arg == "--smoke") {
        opt.rounds = 3;
        opt.debounced_rounds = 2;
      } else {
        std::cerr << "usage: propagation_benchmark [--publisher PATH] [--subscribers 1,4,8] [--debounce-ms 0,200]\n"
                     "                             [--rounds N] [--debounced-rounds N] [--json FILE] [--smoke]\n";
        return 4;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "propagation_benchmark: " << e.what() << "\n";
    return 4;
  }

  nlohmann::json results = nlohmann::json::array();
  try {
    const std::string base = confcast::bench::ReadWholeFile(confcast::bench::DataPath("holmesgpt_config.yaml"));
    for (int debounce : opt.debounce_ms) {
      for (int n : opt.subscribers) {
        nlohmann::json r = RunCase(opt, debounce, n, base);
        const auto& lat = r["latency_ms"];
        const auto& skew = r["skew_ms"];
        std::printf("debounce %4d ms  %d subscribers  %3d rounds: latency p50 %7.3f  p99 %7.3f  max %7.3f ms; "
                    "skew p50 %6.3f  p99 %6.3f  max %6.3f ms; timeouts %d\n",
                    debounce, n, r["rounds"].get<int>(), lat["p50"].get<double>(), lat["p99"].get<double>(),
                    lat["max"].get<double>(), skew["p50"].get<double>(), skew["p99"].get<double>(),
                    skew["max"].get<double>(), r["timeouts"].get<int>());
        std::fflush(stdout);
        results.push_back(std::move(r));
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "propagation_benchmark: " << e.what() << "\n";
    confcast::bench::SegmentCleanup::UnlinkAll();
    return 1;
  }
  if (!opt.json_path.empty()) {
    std::ofstream out(opt.json_path);
    out << nlohmann::json{{"publisher", opt.publisher}, {"propagation", results}}.dump(2) << "\n";
    if (!out.flush()) {
      std::cerr << "propagation_benchmark: cannot write " << opt.json_path << "\n";
      return 1;
    }
  }
  return 0;
}
