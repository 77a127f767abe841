// confcast/holmesgpt.hpp - the HolmesGPT API's config as a typed C++ view,
// with the getter names of the original ConfigManager (llm_model(), ...).
//
//   confcast::Subscriber sub;                        // $CONFCAST_SEGMENT
//   auto config = confcast::holmesgpt::Config::Pin(sub);  // one version
//   call_llm(config.llm_model(), config.llm_timeout(), config.llm_temperature());
//
// A Config wraps one pinned Snapshot and reads each of its fields once, when
// it is made: every getter then returns a member, so the values of one Config
// always come from the same version, and no getter looks up, locks,
// allocates or makes a system call. Pin again (per request, say) to see a
// newer version; Pin costs one copy of the snapshot and a lookup or two per
// field.
//
// No defaults here: the publisher fills every missing field in from the
// HolmesGPT schema (publisher/schemas/holmesgpt.yaml, the one place they are
// written) before it publishes, so a HolmesGPT config carries them all. A
// snapshot without one of these fields, or with one of another type, was
// published with another --schema: making a Config of it throws
// confcast::Error (CONFCAST_ERR_NOT_FOUND or CONFCAST_ERR_TYPE) naming the
// field, rather than answering with values nobody configured.
// Threading: a Config is immutable; share it between threads freely.
#ifndef CONFCAST_HOLMESGPT_HPP_
#define CONFCAST_HOLMESGPT_HPP_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "confcast/subscriber.hpp"

namespace confcast::holmesgpt {

class Config {
 public:
  // Throws confcast::Error when `snapshot` is not a HolmesGPT config (above).
  explicit Config(Snapshot snapshot)
      : snap_(std::move(snapshot)),
        llm_model_(Read<std::string_view>("llm.model")),
        llm_provider_(Read<std::string_view>("llm.provider")),
        llm_endpoint_(ReadNullableString("llm.endpoint")),
        llm_max_retries_(Read<int64_t>("llm.max_retries")),
        llm_timeout_(Read<int64_t>("llm.timeout_seconds")),
        llm_temperature_(Read<double>("llm.temperature")),
        toolsets_(ReadMapJson("toolsets")),
        log_level_(Read<std::string_view>("log_level")) {}
  // Pins the current version of `sub`; throws confcast::Error (e.g. EMPTY).
  static Config Pin(const Subscriber& sub) { return Config(sub.Pin()); }

  uint64_t version() const noexcept { return snap_.version(); }
  const Snapshot& snapshot() const noexcept { return snap_; }

  // The views point into the pinned snapshot, which copies of this Config
  // share: valid while any of them lives.
  std::string_view llm_model() const noexcept { return llm_model_; }
  std::string_view llm_provider() const noexcept { return llm_provider_; }
  // nullopt when no endpoint is configured (the provider's default).
  std::optional<std::string_view> llm_endpoint() const noexcept { return llm_endpoint_; }
  int64_t llm_max_retries() const noexcept { return llm_max_retries_; }
  int64_t llm_timeout() const noexcept { return llm_timeout_; }
  double llm_temperature() const noexcept { return llm_temperature_; }
  // The toolsets map as JSON ({"kubernetes/core": {"enabled": true}, ...}).
  std::string_view toolsets() const noexcept { return toolsets_; }
  // Whether a toolset is configured and not switched off (`enabled` is not false).
  bool toolset_enabled(std::string_view name) const noexcept {
    static constexpr std::string_view kPrefix = "toolsets.", kSuffix = ".enabled";
    char path[256];  // on the stack: getters never allocate
    if (kPrefix.size() + name.size() + kSuffix.size() > sizeof(path)) return false;
    std::memcpy(path, kPrefix.data(), kPrefix.size());
    std::memcpy(path + kPrefix.size(), name.data(), name.size());
    const size_t base = kPrefix.size() + name.size();
    if (!snap_.TypeOf(std::string_view(path, base))) return false;
    std::memcpy(path + base, kSuffix.data(), kSuffix.size());
    bool enabled = true;
    return snap_.Get(std::string_view(path, base + kSuffix.size()), &enabled) == CONFCAST_OK ? enabled : true;
  }
  std::string_view log_level() const noexcept { return log_level_; }

 private:
  [[noreturn]] void Refuse(int status, std::string_view path) const {
    throw Error(status, "config version " + std::to_string(snap_.version()) + " is not a HolmesGPT config (" +
                            std::string(path) + ")");
  }
  template <class T>
  T Read(std::string_view path) const {
    T v{};
    if (int rc = snap_.Get(path, &v); rc != CONFCAST_OK) Refuse(rc, path);
    return v;
  }
  std::optional<std::string_view> ReadNullableString(std::string_view path) const {
    if (snap_.TypeOf(path) == snapshot::Type::kNull) return std::nullopt;
    return Read<std::string_view>(path);
  }
  std::string_view ReadMapJson(std::string_view path) const {
    const auto type = snap_.TypeOf(path);
    if (type != snapshot::Type::kMap) Refuse(type ? CONFCAST_ERR_TYPE : CONFCAST_ERR_NOT_FOUND, path);
    std::string_view v;
    if (int rc = snap_.GetJson(path, &v); rc != CONFCAST_OK) Refuse(rc, path);
    return v;
  }

  Snapshot snap_;  // first: the members below are read from it
  std::string_view llm_model_;
  std::string_view llm_provider_;
  std::optional<std::string_view> llm_endpoint_;
  int64_t llm_max_retries_;
  int64_t llm_timeout_;
  double llm_temperature_;
  std::string_view toolsets_;
  std::string_view log_level_;
};

}  // namespace confcast::holmesgpt

#endif  // CONFCAST_HOLMESGPT_HPP_
