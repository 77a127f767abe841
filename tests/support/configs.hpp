// tests/support/configs.hpp - configs the tests publish, each built so that a
// reader can tell what it got: the model alone, the full HolmesGPT config
// with every field set, a config whose every field derives from one number
// (so a mixed or torn read shows), and a JSON config with every kind of node.
//
// Threading: stateless; call from any thread.
#ifndef CONFCAST_TESTS_SUPPORT_CONFIGS_HPP_
#define CONFCAST_TESTS_SUPPORT_CONFIGS_HPP_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace confcast::test_support {

// The smallest valid config: every other field takes its default.
inline std::string ModelConfig(std::string_view model) { return "llm:\n  model: " + std::string(model) + "\n"; }

// Every field of the built-in schema set away from its default, plus keys
// the schema does not know (published as they are).
inline constexpr const char* kFullConfig = R"(llm:
  model: gpt-4.1-mini
  provider: azure
  endpoint: https://llm.example.com/v1
  max_retries: 7
  timeout_seconds: 45
  temperature: 0.25
toolsets:
  kubernetes/core:
    enabled: true
  prometheus/metrics:
    enabled: false
  internet: {}
log_level: warning
custom:
  list: [10, 20, 30]
  ratio: 1
)";

// Version n of a config whose every field derives from n (fault.n == fault.m
// == n, fault.s == "n=<n>", the list n, n+1, n+2, the model "m-<n>"), so a
// reader can tell a consistent read from a torn one. `pad` adds kPadBytes of
// PadLetter(n): a publish then copies about 33 KiB of snapshot, long enough
// for a kill to land in the middle of one, while a reload stays quick.
inline constexpr size_t kPadBytes = 16384;
inline char PadLetter(int64_t n) { return static_cast<char>('a' + n % 26); }
inline std::string NumberedConfig(int64_t n, bool pad = false) {
  const std::string s = std::to_string(n);
  return "llm:\n  model: m-" + s + "\n  max_retries: " + std::to_string(n % 11) + "\nfault:\n  n: " + s +
         "\n  m: " + s + "\n  s: \"n=" + s + "\"\n  list: [" + s + ", " + std::to_string(n + 1) + ", " +
         std::to_string(n + 2) + "]\n" + (pad ? "pad: " + std::string(kPadBytes, PadLetter(n)) + "\n" : "");
}

// A config (as the publisher holds it after validation) with every kind of
// node: strings (empty, non-ASCII), the extreme integers, doubles, bools,
// null, lists and maps (empty and nested).
inline const nlohmann::json& HolmesConfig() {
  static const nlohmann::json config = nlohmann::json::parse(R"({
    "llm": {"model": "gpt-4o", "provider": "openai", "endpoint": null, "max_retries": 3,
            "timeout_seconds": 60, "temperature": 0.7},
    "toolsets": {"kubernetes/core": {"enabled": true},
                 "prometheus/metrics": {"enabled": false, "config": {"url": "http://p:9090"}}},
    "log_level": "INFO",
    "numbers": {"big": 9007199254740993, "min": -9223372036854775808, "max": 9223372036854775807,
                "neg_double": -2.5, "zero": 0},
    "text": {"hello": "hello", "empty": "", "unicode": "caf\u00e9 \u8a2d\u5b9a \ud83d\ude80"},
    "a": {"list": [10, "two", {"x": true}], "empty_list": [], "empty_map": {}}
  })");
  return config;
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_CONFIGS_HPP_
