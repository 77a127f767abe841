// confcastctl: inspect a confcast segment from a shell.
//
//   confcastctl [--segment NAME] get PATH | dump [--json] | status [--max-age S]
//                                | wait [--after V] [--timeout S]
//                                | wait --converged [--after V] [--timeout S] | workers [--json]
//
// Exit codes: 0 ok, 1 failed check, 2 no segment, 3 no such path, 4 usage,
// 5 refused by the trust rules (a segment others can write, or of an
// untrusted owner; the message names owner and mode).
// Read-only: it maps the segment like any worker and never writes to it,
// and it does not join the worker ledger (it is not a worker): `workers`
// and `wait --converged` read the ledger's entries as untrusted bytes
// (common/ledger.hpp).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "confcast/defaults.hpp"
#include "confcast/subscriber.hpp"
#include "ledger.hpp"

namespace {

enum Exit { kOk = 0, kFailed = 1, kNoSegment = 2, kNoPath = 3, kUsage = 4, kRefused = 5 };

int ExitFor(int status) {
  switch (status) {
    case CONFCAST_OK: return kOk;
    case CONFCAST_ERR_NO_SEGMENT:
    case CONFCAST_ERR_EMPTY: return kNoSegment;
    case CONFCAST_ERR_NOT_FOUND: return kNoPath;
    case CONFCAST_ERR_INVALID: return kUsage;
    case CONFCAST_ERR_PERMISSION: return kRefused;
    default: return kFailed;
  }
}

int Fail(int status, const std::string& what) {
  std::cerr << "confcastctl: " << what << ": " << confcast::StatusMessage(status) << "\n";
  return ExitFor(status);
}

std::string FormatTime(int64_t unix_ns) {
  if (unix_ns <= 0) return "never";
  const time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>((unix_ns / 1000000) % 1000));
  return out;
}

void PrintFlat(const nlohmann::json& node, const std::string& path) {
  if (node.is_object() && !node.empty()) {
    for (auto it = node.begin(); it != node.end(); ++it) PrintFlat(it.value(), path.empty() ? it.key() : path + "." + it.key());
  } else if (node.is_array() && !node.empty()) {
    for (size_t i = 0; i < node.size(); ++i) PrintFlat(node[i], path + "." + std::to_string(i));
  } else {
    std::cout << path << " = " << node.dump() << "\n";
  }
}

constexpr const char* kSecret = "<secret>";

// Replaces every secret value in `node` (the value at `path` of `snap`) by
// "<secret>"; the snapshot says which are secret, so no schema is needed.
void Redact(const confcast::Snapshot& snap, const std::string& path, nlohmann::json* node) {
  if (snap.IsSecret(path) != 0) {  // 1, or an error: never show what cannot be vouched for
    *node = kSecret;
    return;
  }
  if (node->is_object()) {
    for (auto it = node->begin(); it != node->end(); ++it) {
      Redact(snap, path.empty() ? it.key() : path + "." + it.key(), &it.value());
    }
  } else if (node->is_array()) {
    for (size_t i = 0; i < node->size(); ++i) {
      Redact(snap, path.empty() ? std::to_string(i) : path + "." + std::to_string(i), &(*node)[i]);
    }
  }
}

int Get(const confcast::Subscriber& sub, const std::string& path, bool show_secrets) {
  confcast::Snapshot snap;
  if (int rc = sub.TryPin(&snap); rc != CONFCAST_OK) return Fail(rc, "get");
  std::string_view text;
  if (int rc = snap.GetJson(path, &text); rc != CONFCAST_OK) return Fail(rc, "get " + path);
  if (!show_secrets && snap.IsSecret(path) != 0) {  // as Redact: an error counts as secret
    std::cout << kSecret << "\n";
    return kOk;
  }
  std::string_view string_value;
  if (snap.Get(path, &string_value) == CONFCAST_OK) {
    std::cout << string_value << "\n";
    return kOk;
  }
  if (show_secrets) {
    std::cout << text << "\n";
    return kOk;
  }
  nlohmann::json value = nlohmann::json::parse(text);
  Redact(snap, path, &value);
  std::cout << value.dump() << "\n";
  return kOk;
}

int Dump(const confcast::Subscriber& sub, bool json, bool show_secrets) {
  confcast::Snapshot snap;
  if (int rc = sub.TryPin(&snap); rc != CONFCAST_OK) return Fail(rc, "dump");
  nlohmann::json config = nlohmann::json::parse(snap.Json());
  if (!show_secrets) Redact(snap, "", &config);
  if (json) {
    nlohmann::ordered_json out;
    out["version"] = snap.version();
    out["sha256"] = snap.sha256_hex();
    out["config"] = config;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "# version " << snap.version() << ", sha256 " << snap.sha256_hex() << ", published "
              << FormatTime(snap.published_unix_ns()) << "\n";
    PrintFlat(config, "");
  }
  return kOk;
}

int Status(const confcast::Subscriber& sub, double max_age) {
  confcast_info info;
  if (int rc = sub.Info(&info); rc != CONFCAST_OK) return Fail(rc, "status");
  uint64_t by_reason[confcast::layout::kReasonCount] = {};
  sub.ErrorsByReason(by_reason);
  const int64_t age_ns = sub.HeartbeatAgeNs();
  const double age = age_ns >= 0 ? static_cast<double>(age_ns) / 1e9 : INFINITY;
  std::printf("version:          %llu\n", static_cast<unsigned long long>(info.version));
  std::printf("sha256:           %s\n", info.sha256_hex[0] ? info.sha256_hex : "-");
  std::printf("published:        %s\n", FormatTime(info.published_unix_ns).c_str());
  std::printf("publisher pid:    %d\n", info.publisher_pid);
  std::printf("heartbeat age:    %.3f s\n", age);
  std::printf("reloads:          %llu\n", static_cast<unsigned long long>(info.reload_total));
  std::printf("reload errors:    %llu (io %llu, too_large %llu, parse %llu, validate %llu)\n",
              static_cast<unsigned long long>(info.reload_errors_total),
              static_cast<unsigned long long>(by_reason[0]), static_cast<unsigned long long>(by_reason[1]),
              static_cast<unsigned long long>(by_reason[2]), static_cast<unsigned long long>(by_reason[3]));
  std::printf("last error:       %s\n", info.last_error[0] ? info.last_error : "-");
  if (max_age >= 0 && !(age <= max_age)) {
    std::fprintf(stderr, "confcastctl: publisher heartbeat is %.3f s old, older than --max-age %.3f\n", age, max_age);
    return kFailed;
  }
  return kOk;
}

int Wait(const confcast::Subscriber& sub, std::optional<uint64_t> after, double timeout_s) {
  const uint64_t from = after ? *after : sub.version();
  const int timeout_ms = timeout_s < 0 ? -1 : static_cast<int>(std::min(timeout_s * 1000.0, 2e9));
  uint64_t version = 0;
  const int rc = sub.Wait(from, timeout_ms, &version);
  if (rc == CONFCAST_ERR_TIMEOUT) {
    std::cerr << "confcastctl: no version above " << from << " within " << timeout_s << " s\n";
    return kFailed;
  }
  if (rc != CONFCAST_OK) return Fail(rc, "wait");
  std::cout << version << "\n";
  return kOk;
}

// The ledger beside the segment, or an exit code and a message when it
// cannot be read or trusted.
struct LedgerRead {
  confcast::ledger::Scan scan;
  int exit = kOk;
};

LedgerRead ReadLedger(const confcast::Subscriber& sub) {
  LedgerRead out;
  const std::string file = sub.mapping().file();
  const std::string dir = confcast::ledger::DirectoryFor(file);
  out.scan = confcast::ledger::ScanDirectory(dir, sub.mapping().owner(), /*remove_dead=*/false);
  if (!out.scan.found) {
    std::cerr << "confcastctl: no worker ledger at " << dir << " (the publisher creates it)\n";
    out.exit = kFailed;
  } else if (!out.scan.problem.empty()) {
    std::cerr << "confcastctl: the worker ledger is not used: " << out.scan.problem << "\n";
    out.exit = kRefused;
  } else if (out.scan.full) {
    std::cerr << "confcastctl: the worker ledger " << dir << " is full (" << confcast::ledger::kMaxEntries
              << " entries): workers beyond it are not counted\n";
  }
  return out;
}

int Workers(const confcast::Subscriber& sub, bool json) {
  const LedgerRead ledger = ReadLedger(sub);
  if (ledger.exit != kOk) return ledger.exit;
  const uint64_t published = sub.version();
  if (json) {
    nlohmann::ordered_json out;
    out["version"] = published;
    out["workers"] = nlohmann::json::array();
    for (const auto& w : ledger.scan.workers) {
      nlohmann::ordered_json row;
      row["pid"] = w.pid;
      row["version"] = w.newest_read;
      row["oldest_held"] = w.held ? nlohmann::ordered_json(w.oldest_held) : nlohmann::ordered_json(nullptr);
      row["held"] = w.held;
      out["workers"].push_back(row);
    }
    std::cout << out.dump() << "\n";
    return kOk;
  }
  std::printf("published version %llu, %zu worker(s)\n", static_cast<unsigned long long>(published),
              ledger.scan.workers.size());
  std::printf("%10s %10s %12s %6s\n", "PID", "VERSION", "OLDEST_HELD", "HELD");
  for (const auto& w : ledger.scan.workers) {
    const std::string oldest = w.held ? std::to_string(w.oldest_held) : "-";
    std::printf("%10d %10llu %12s %6llu%s\n", w.pid, static_cast<unsigned long long>(w.newest_read),
                oldest.c_str(), static_cast<unsigned long long>(w.held),
                w.changing ? "  (changing: counted as old)" : w.held && w.oldest_held < published ? "  (old)" : "");
  }
  return kOk;
}

// A rollout gate: returns once no live worker holds a version older than
// the published one (which may move on meanwhile: the newest counts). With
// `after`, first waits for a version above it (the change being published
// at all: a kubelet delivers a ConfigMap update a minute or so late).
int WaitConverged(const confcast::Subscriber& sub, std::optional<uint64_t> after, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s < 0 ? 1e9 : timeout_s));
  if (after) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    const int rc = sub.Wait(*after, timeout_s < 0 ? -1 : static_cast<int>(std::min(std::max(left, 0.0) * 1000.0, 2e9)));
    if (rc == CONFCAST_ERR_TIMEOUT) {
      std::cerr << "confcastctl: no version above " << *after << " within " << timeout_s << " s\n";
      return kFailed;
    }
    if (rc != CONFCAST_OK) return Fail(rc, "wait");
  }
  for (;;) {
    const uint64_t published = sub.version();
    const LedgerRead ledger = ReadLedger(sub);
    if (ledger.exit != kOk) return ledger.exit;
    const confcast::ledger::Summary summary = confcast::ledger::Summarize(ledger.scan, published);
    if (summary.holding_old == 0 && !ledger.scan.full) {
      std::cout << published << "\n";
      return kOk;
    }
    if (Clock::now() >= deadline) {
      std::cerr << "confcastctl: not converged on version " << published << " within " << timeout_s << " s:";
      for (const auto& w : ledger.scan.workers) {
        if (w.changing) std::cerr << " pid " << w.pid << " changes its holds too fast to read;";
        if (!w.changing && w.held && w.oldest_held < published) {
          std::cerr << " pid " << w.pid << " holds " << w.oldest_held << ";";
        }
      }
      std::cerr << "\n";
      return kFailed;
    }
    // A poll: holds change without a word to anyone (no futex in a worker's own file).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"confcastctl: inspect a confcast config segment"};
  app.require_subcommand(1);
  std::string segment;
  app.add_option("--segment", segment,
                 std::string("segment name or absolute path (default: $CONFCAST_SEGMENT, else ") +
                     confcast::kDefaultSegment + ")");

  std::string path;
  auto* get = app.add_subcommand("get", "print one value (strings bare, else JSON)");
  get->add_option("PATH", path, "dotted path, e.g. llm.model")->required();
  bool show_secrets = false;
  get->add_flag("--show-secrets", show_secrets, "print a secret value itself, not <secret>");
  bool json = false;
  auto* dump = app.add_subcommand("dump", "print the whole current snapshot (secret values as <secret>)");
  dump->add_flag("--json", json, "as {\"version\", \"sha256\", \"config\"}");
  dump->add_flag("--show-secrets", show_secrets, "print secret values themselves");
  double max_age = -1;
  auto* status = app.add_subcommand("status", "print the publisher's status");
  status->add_option("--max-age", max_age, "exit 1 when the heartbeat is older than SECONDS")->check(CLI::NonNegativeNumber);
  std::optional<uint64_t> after;
  double timeout = -1;
  auto* wait = app.add_subcommand("wait", "wait for a version newer than --after (default: the current one)");
  wait->add_option("--after", after, "VERSION");
  wait->add_option("--timeout", timeout, "SECONDS (default: forever)")->check(CLI::NonNegativeNumber);
  bool converged = false;
  wait->add_flag("--converged", converged,
                 "then wait until no live worker holds a version older than the published one");
  auto* workers = app.add_subcommand("workers", "list the worker ledger: who reads, which versions they hold");
  workers->add_flag("--json", json, "as {\"version\", \"workers\": [{\"pid\", \"version\", \"oldest_held\", \"held\"}]}");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  // Opened without joining the worker ledger: confcastctl is no worker.
  confcast::SegmentMapping mapping;
  std::string why;
  if (int rc = confcast::SegmentMapping::Open(segment, &mapping, &why); rc != CONFCAST_OK) {
    const std::string name = confcast::SegmentMapping::ResolveName(segment);
    std::cerr << "confcastctl: " << confcast::Error(rc, name + (why.empty() ? "" : ": " + why)).what() << "\n";
    return ExitFor(rc);
  }
  const confcast::Subscriber sub(std::move(mapping));
  try {
    if (*get) return Get(sub, path, show_secrets);
    if (*dump) return Dump(sub, json, show_secrets);
    if (*status) return Status(sub, max_age);
    if (*wait) return converged ? WaitConverged(sub, after, timeout) : Wait(sub, after, timeout);
    if (*workers) return Workers(sub, json);
  } catch (const std::exception& e) {
    std::cerr << "confcastctl: " << e.what() << "\n";
    return kFailed;
  }
  return kUsage;
}
