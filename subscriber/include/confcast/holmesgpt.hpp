// confcast/holmesgpt.hpp - the HolmesGPT API's config as a typed C++ view,
// with the getter names of the original ConfigManager (llm_model(), ...).
//
//   confcast::Subscriber sub;                        // $CONFCAST_SEGMENT
//   auto config = confcast::holmesgpt::Config::Pin(sub);  // one version
//   call_llm(config.llm_model(), config.llm_timeout(), config.llm_temperature());
//
// A Config wraps one pinned Snapshot: every getter reads that private copy,
// so the values of one Config always come from the same version, and no
// getter locks, allocates or makes a system call. Pin again (per request,
// say) to see a newer version; Pin costs one copy of the snapshot.
// A field missing from the snapshot (a segment published with another
// schema) reads as the built-in default of the HolmesGPT schema
// (docs/schema.md).
// Threading: a Config is immutable; share it between threads freely.
#ifndef CONFCAST_HOLMESGPT_HPP_
#define CONFCAST_HOLMESGPT_HPP_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "confcast/subscriber.hpp"

namespace confcast::holmesgpt {

class Config {
 public:
  explicit Config(Snapshot snapshot) : snap_(std::move(snapshot)) {}
  // Pins the current version of `sub`; throws confcast::Error (e.g. EMPTY).
  static Config Pin(const Subscriber& sub) { return Config(sub.Pin()); }

  uint64_t version() const noexcept { return snap_.version(); }
  const Snapshot& snapshot() const noexcept { return snap_; }

  std::string_view llm_model() const noexcept { return String("llm.model", "gpt-4o"); }
  std::string_view llm_provider() const noexcept { return String("llm.provider", "openai"); }
  // nullopt when no endpoint is configured (the provider's default).
  std::optional<std::string_view> llm_endpoint() const noexcept {
    std::string_view v;
    if (snap_.Get("llm.endpoint", &v) == CONFCAST_OK) return v;
    return std::nullopt;
  }
  int64_t llm_max_retries() const noexcept { return Int("llm.max_retries", 3); }
  int64_t llm_timeout() const noexcept { return Int("llm.timeout_seconds", 60); }
  double llm_temperature() const noexcept {
    double v = 0.0;
    return snap_.Get("llm.temperature", &v) == CONFCAST_OK ? v : 0.0;
  }
  // The toolsets map as JSON ({"kubernetes/core": {"enabled": true}, ...}).
  std::string_view toolsets() const noexcept {
    std::string_view v;
    return snap_.GetJson("toolsets", &v) == CONFCAST_OK ? v : std::string_view("{}");
  }
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
  std::string_view log_level() const noexcept { return String("log_level", "INFO"); }

 private:
  std::string_view String(std::string_view path, std::string_view fallback) const noexcept {
    std::string_view v;
    return snap_.Get(path, &v) == CONFCAST_OK ? v : fallback;
  }
  int64_t Int(std::string_view path, int64_t fallback) const noexcept {
    int64_t v = 0;
    return snap_.Get(path, &v) == CONFCAST_OK ? v : fallback;
  }

  Snapshot snap_;
};

}  // namespace confcast::holmesgpt

#endif  // CONFCAST_HOLMESGPT_HPP_
