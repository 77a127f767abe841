#include "metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>

namespace confcast::publisher {

std::variant<std::unique_ptr<Metrics>, std::string> Metrics::Start(const std::string& address,
                                                                   const std::string& prefix) {
  std::unique_ptr<Metrics> m(new Metrics());
  m->registry_ = std::make_shared<prometheus::Registry>();
  auto& reg = *m->registry_;
  m->reload_total_ = &prometheus::BuildCounter()
                          .Name(prefix + "_config_reload_total")
                          .Help("Successful publishes of a new config version (the first load included)")
                          .Register(reg)
                          .Add({});
  m->reload_errors_total_ = &prometheus::BuildCounter()
                                 .Name(prefix + "_config_reload_errors_total")
                                 .Help("Rejected config reload attempts")
                                 .Register(reg)
                                 .Add({});
  m->last_reload_timestamp_ = &prometheus::BuildGauge()
                                   .Name(prefix + "_config_last_reload_timestamp")
                                   .Help("Unix time in seconds of the last successful publish")
                                   .Register(reg)
                                   .Add({});
  m->version_ = &prometheus::BuildGauge()
                     .Name("confcast_config_version")
                     .Help("The published config version")
                     .Register(reg)
                     .Add({});
  // From 100 us (a small config) to 10 s (a 1 MiB one on a loaded node).
  m->publish_duration_ = &prometheus::BuildHistogram()
                              .Name("confcast_publish_duration_seconds")
                              .Help("Read + parse + validate + write of one reload")
                              .Register(reg)
                              .Add({}, prometheus::Histogram::BucketBoundaries{
                                           0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  auto& by_reason = prometheus::BuildCounter()
                        .Name("confcast_config_reload_errors_by_reason_total")
                        .Help("Rejected config reload attempts by reason")
                        .Register(reg);
  for (Reason r : {Reason::kIo, Reason::kTooLarge, Reason::kParse, Reason::kValidate}) {
    m->errors_by_reason_[static_cast<size_t>(r)] = &by_reason.Add({{"reason", ReasonName(r)}});
  }
  if (address != "none") {
    try {
      m->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
      m->exposer_->RegisterCollectable(m->registry_);
      const auto ports = m->exposer_->GetListeningPorts();
      m->port_ = ports.empty() ? 0 : ports.front();
    } catch (const std::exception& e) {
      return "cannot serve metrics on '" + address + "' (--metrics-address): " + e.what();
    }
  }
  return m;
}

Metrics::~Metrics() = default;

void Metrics::OnPublish(uint64_t version, double publish_unix_seconds, double duration_seconds) {
  reload_total_->Increment();
  last_reload_timestamp_->Set(publish_unix_seconds);
  version_->Set(static_cast<double>(version));
  publish_duration_->Observe(duration_seconds);
}

void Metrics::OnReject(Reason reason, double duration_seconds) {
  reload_errors_total_->Increment();
  errors_by_reason_[static_cast<size_t>(reason)]->Increment();
  publish_duration_->Observe(duration_seconds);
}

void Metrics::SetVersion(uint64_t version) { version_->Set(static_cast<double>(version)); }

}  // namespace confcast::publisher
