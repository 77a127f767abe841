// ledger_watch.cc - see ledger_watch.hpp.
#include "ledger_watch.hpp"

#include <unistd.h>

#include "ledger.hpp"
#include "log.hpp"

namespace confcast::publisher {

void LedgerWatch::Prepare(const std::string& segment, mode_t segment_mode) {
  // The segment's file as the writer resolves it; a name it will refuse gets no ledger either.
  std::string file;
  if (!segment.empty() && segment.front() == '/') {
    file = segment;
  } else if (!segment.empty() && segment.find('/') == std::string::npos && segment != "." && segment != "..") {
    file = "/dev/shm/" + segment;
  } else {
    return;
  }
  const std::string dir = ledger::DirectoryFor(file);
  if (std::string problem = ledger::EnsureDirectory(dir, segment_mode); !problem.empty()) {
    LogEvent(spdlog::level::warn, "the worker ledger is not available; reads are unaffected",
             {{"ledger", dir}, {"problem", problem}});
  }
}

LedgerWatch::LedgerWatch(const std::string& segment_file, Metrics& metrics)
    : dir_(ledger::DirectoryFor(segment_file)), metrics_(metrics) {}

void LedgerWatch::OnPublish(uint64_t version, int64_t monotonic_ns) {
  draining_version_ = version;
  published_at_ns_ = monotonic_ns;
}

void LedgerWatch::Scan(uint64_t published, int64_t monotonic_ns) {
  // The publish (a release store of the version) before any entry is read:
  // a worker's hold is either seen here or made after it and then checked
  // by the worker against the new version.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  const ledger::Scan scan = ledger::ScanDirectory(dir_, geteuid(), /*remove_dead=*/true);
  std::string problem = !scan.found ? "the ledger directory is missing" : scan.problem;
  if (problem.empty() && scan.full) problem = "the ledger is full: workers beyond it are not counted";
  if (problem != last_problem_) {
    if (!problem.empty()) LogEvent(spdlog::level::warn, "worker ledger: " + problem, {{"ledger", dir_}});
    last_problem_ = problem;
  }
  const ledger::Summary summary = ledger::Summarize(scan, published);
  metrics_.OnLedger(summary.workers, summary.holding_old, summary.oldest_held);
  if (draining_version_ != 0 && summary.holding_old == 0 && problem.empty()) {
    metrics_.OnDrained(static_cast<double>(monotonic_ns - published_at_ns_) * 1e-9);
    draining_version_ = 0;
  }
}

}  // namespace confcast::publisher
