// ledger_watch.hpp - the publisher's view of the worker ledger: it creates
// the ledger directory beside the segment, scans it a few times a second
// (removing the entries of dead workers), and turns what it finds into the
// four ledger metrics, drain time included.
//
// Drain time: from a publish to the first scan that finds no live worker
// holding an older version. A publish that comes before the previous one
// drained starts the clock again (the older one never drains on its own).
//
// Threading: used by the publisher's loop thread only.
#ifndef CONFCAST_PUBLISHER_LEDGER_WATCH_HPP_
#define CONFCAST_PUBLISHER_LEDGER_WATCH_HPP_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "metrics.hpp"

namespace confcast::publisher {

class LedgerWatch {
 public:
  // How often the loop should call Scan.
  static constexpr int64_t kScanMs = 200;

  // Creates the ledger directory of the segment named `segment` (as
  // --segment gives it) before the segment exists, with the mode that
  // mirrors who may read a segment of segment_mode; a failure is logged
  // (reads are unaffected, workers just cannot register).
  static void Prepare(const std::string& segment, mode_t segment_mode);

  // segment_file: the segment's file, whose ledger Prepare made.
  LedgerWatch(const std::string& segment_file, Metrics& metrics);

  void OnPublish(uint64_t version, int64_t monotonic_ns);
  void Scan(uint64_t published, int64_t monotonic_ns);

  const std::string& directory() const { return dir_; }

 private:
  std::string dir_;
  Metrics& metrics_;
  uint64_t draining_version_ = 0;  // 0: nothing to drain
  int64_t published_at_ns_ = 0;
  std::string last_problem_;       // logged once per distinct problem
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_LEDGER_WATCH_HPP_
