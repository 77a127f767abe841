// metrics.hpp - the publisher's Prometheus metrics (their names are what dashboards and alerts use),
// served by prometheus-cpp's pull exposer (civetweb underneath).
//
// The same events also move the counters in the segment (reloader.cc writes
// both, in that order); these are the scrapeable copy, so a publisher's
// /metrics and `confcastctl status` report the same numbers.
//
// Threading: the exposer serves scrapes on its own thread; the update
// methods are called from the publisher's loop thread. prometheus-cpp's
// metrics are internally synchronised, so no lock is needed here.
#ifndef CONFCAST_PUBLISHER_METRICS_HPP_
#define CONFCAST_PUBLISHER_METRICS_HPP_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "config_error.hpp"

namespace prometheus {
class Exposer;
class Registry;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace confcast::publisher {

class Metrics {
 public:
  // Registers every series (all present, at 0, from the first scrape) and,
  // unless address is "none", serves them at http://ADDRESS/metrics. A bad
  // address, an unknown host or a port in use is an error message naming
  // the flag and the cause, never an exception.
  static std::variant<std::unique_ptr<Metrics>, std::string> Start(const std::string& address,
                                                                   const std::string& prefix);
  ~Metrics();

  void OnPublish(uint64_t version, double publish_unix_seconds, double duration_seconds);
  void OnReject(Reason reason, double duration_seconds);
  // A restarted publisher that adopts the segment's current version.
  void SetVersion(uint64_t version);
  // The worker ledger as last scanned (ledger_watch.hpp).
  void OnLedger(size_t workers, size_t holding_old, uint64_t oldest_held);
  // A publish drained: no live worker holds an older version any more.
  void OnDrained(double seconds);

  // The port actually bound (useful with port 0), 0 if not serving.
  int port() const { return port_; }

 private:
  Metrics() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Counter* reload_total_ = nullptr;
  prometheus::Counter* reload_errors_total_ = nullptr;
  prometheus::Gauge* last_reload_timestamp_ = nullptr;
  prometheus::Gauge* version_ = nullptr;
  prometheus::Histogram* publish_duration_ = nullptr;
  std::array<prometheus::Counter*, 4> errors_by_reason_{};
  prometheus::Gauge* workers_ = nullptr;
  prometheus::Gauge* workers_holding_old_ = nullptr;
  prometheus::Gauge* oldest_version_held_ = nullptr;
  prometheus::Histogram* drain_seconds_ = nullptr;
  int port_ = 0;
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_METRICS_HPP_
