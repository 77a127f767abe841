#include "metrics.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace confcast::publisher {
namespace {

constexpr const char* kFlag = "--metrics-address";

struct Endpoint {
  std::string civetweb_address;  // "A.B.C.D:PORT"
  sockaddr_in socket_address{};
};

// civetweb only says "null context when constructing CivetServer" when it
// cannot listen, so everything that can be checked is checked here first,
// with the reason spelled out.
std::variant<Endpoint, std::string> Resolve(const std::string& address) {
  const std::string quoted = std::string(kFlag) + " '" + address + "'";
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return quoted + ": expected HOST:PORT (e.g. 0.0.0.0:9464 or 127.0.0.1:9464) or none";
  }
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos || std::stoul(port_text) > 65535) {
    return quoted + ": the port '" + port_text + "' is not a number from 0 to 65535";
  }
  const auto port = static_cast<uint16_t>(std::stoul(port_text));
  if (host.find(':') != std::string::npos || (!host.empty() && host.front() == '[')) {
    return quoted + ": IPv6 addresses are not supported by the embedded HTTP server (civetweb without IPv6); "
                    "use an IPv4 address such as 0.0.0.0:" + port_text;
  }
  if (host.empty() || host == "*") host = "0.0.0.0";

  Endpoint endpoint;
  endpoint.socket_address.sin_family = AF_INET;
  endpoint.socket_address.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &endpoint.socket_address.sin_addr) != 1) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0 || found == nullptr) {
      return quoted + ": cannot resolve the host '" + host + "' to an IPv4 address: " +
             (rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
    }
    endpoint.socket_address.sin_addr = reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
    freeaddrinfo(found);
  }
  char numeric[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &endpoint.socket_address.sin_addr, numeric, sizeof(numeric));
  endpoint.civetweb_address = std::string(numeric) + ":" + std::to_string(port);
  return endpoint;
}

// Binds a throwaway socket the way civetweb will (SO_REUSEADDR), to learn
// why civetweb would fail. Another process can still take the port between
// this probe and civetweb's bind; the exposer's own failure covers that.
std::optional<std::string> ProbeBind(const std::string& address, const Endpoint& endpoint) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("cannot create a socket: ") + std::strerror(errno);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  std::optional<std::string> failure;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&endpoint.socket_address), sizeof(endpoint.socket_address)) != 0) {
    const int err = errno;
    std::string why = std::strerror(err);
    if (err == EADDRINUSE) {
      why += " (another process, perhaps another publisher, listens on this port; choose another " +
             std::string(kFlag) + " or none)";
    } else if (err == EACCES) {
      why += " (ports below 1024 need privileges)";
    } else if (err == EADDRNOTAVAIL) {
      why += " (no network interface of this host has that address)";
    }
    failure = std::string("cannot listen on ") + endpoint.civetweb_address + " (" + kFlag + " '" + address +
              "'): " + why;
  }
  ::close(fd);
  return failure;
}

}  // namespace

std::variant<std::unique_ptr<Metrics>, std::string> Metrics::Start(const std::string& address,
                                                                   const std::string& prefix) {
  std::unique_ptr<Metrics> m(new Metrics());
  try {
    m->registry_ = std::make_shared<prometheus::Registry>();
    auto& reg = *m->registry_;
    m->reload_total_ = &prometheus::BuildCounter()
                            .Name(prefix + "_config_reload_total")
                            .Help("Successful publishes of a new config version (the first load included)")
                            .Register(reg)
                            .Add({});
    m->reload_errors_total_ = &prometheus::BuildCounter()
                                   .Name(prefix + "_config_reload_errors_total")
                                   .Help("Rejected config reload attempts (each distinct bad content once)")
                                   .Register(reg)
                                   .Add({});
    m->last_reload_timestamp_ = &prometheus::BuildGauge()
                                     .Name(prefix + "_config_last_reload_timestamp")
                                     .Help("Unix time in seconds of the last successful publish (0: none yet)")
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
                                .Help("Read + parse + validate + write of one reload, published or rejected")
                                .Register(reg)
                                .Add({}, prometheus::Histogram::BucketBoundaries{
                                             0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    auto& by_reason = prometheus::BuildCounter()
                          .Name("confcast_config_reload_errors_by_reason_total")
                          .Help("Rejected config reload attempts by reason (io, too_large, parse, validate)")
                          .Register(reg);
    for (Reason r : {Reason::kIo, Reason::kTooLarge, Reason::kParse, Reason::kValidate}) {
      m->errors_by_reason_[static_cast<size_t>(r)] = &by_reason.Add({{"reason", ReasonName(r)}});
    }
    m->workers_ = &prometheus::BuildGauge()
                       .Name("confcast_workers")
                       .Help("Live processes in the worker ledger")
                       .Register(reg)
                       .Add({});
    m->workers_holding_old_ = &prometheus::BuildGauge()
                                   .Name("confcast_workers_holding_old_version")
                                   .Help("Live workers that hold a version older than the published one")
                                   .Register(reg)
                                   .Add({});
    m->oldest_version_held_ = &prometheus::BuildGauge()
                                   .Name("confcast_oldest_version_held")
                                   .Help("The oldest version a live worker holds; the published version when "
                                         "none holds an older one")
                                   .Register(reg)
                                   .Add({});
    // From a request's length (tens of ms) to a long stream (10 min).
    m->drain_seconds_ = &prometheus::BuildHistogram()
                             .Name("confcast_drain_seconds")
                             .Help("From a publish to the moment no live worker holds an older version")
                             .Register(reg)
                             .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                                              30, 60, 120, 300, 600});
  } catch (const std::exception& e) {
    // prometheus-cpp validates names: a --metrics-prefix such as "my-app" is refused.
    return "cannot register the metrics with --metrics-prefix '" + prefix +
           "' (it must match [a-zA-Z_:][a-zA-Z0-9_:]*): " + e.what();
  }
  if (address == "none") return m;

  auto resolved = Resolve(address);
  if (auto* error = std::get_if<std::string>(&resolved)) return *error;
  const Endpoint& endpoint = std::get<Endpoint>(resolved);
  if (auto failure = ProbeBind(address, endpoint)) return *failure;
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(endpoint.civetweb_address, /*num_threads=*/1);
    m->exposer_->RegisterCollectable(m->registry_);
    const auto ports = m->exposer_->GetListeningPorts();
    m->port_ = ports.empty() ? 0 : ports.front();
  } catch (const std::exception& e) {
    return "cannot listen on " + endpoint.civetweb_address + " (" + kFlag + " '" + address +
           "'): the HTTP server failed to start (" + e.what() + ")";
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

void Metrics::SetVersion(uint64_t version) {
  version_->Set(static_cast<double>(version));
  oldest_version_held_->Set(static_cast<double>(version));  // until a scan says otherwise
}

void Metrics::OnLedger(size_t workers, size_t holding_old, uint64_t oldest_held) {
  workers_->Set(static_cast<double>(workers));
  workers_holding_old_->Set(static_cast<double>(holding_old));
  oldest_version_held_->Set(static_cast<double>(oldest_held));
}

void Metrics::OnDrained(double seconds) { drain_seconds_->Observe(seconds); }

}  // namespace confcast::publisher
