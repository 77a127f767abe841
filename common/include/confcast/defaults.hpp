// confcast/defaults.hpp - the names confcast uses when the user gives none:
// the segment, the config file and the metrics prefix, and the one rule that
// picks a segment name from $CONFCAST_SEGMENT.
//
// These are the first deployment's (the HolmesGPT API: its ConfigMap path,
// its metric names); they are the only HolmesGPT names in the generic code.
// Everything else about that application (its schema, its typed views, its
// demo) is an integration on top: docs/schema.md says where it lives.
// The publisher, confcastctl, the C ABI and the C++ Subscriber all resolve a
// segment name through ResolveSegmentName, so they cannot disagree on which
// segment "no name" means. (Python has the same rule once, in
// confcast/_native.py, over the same variable and default.)
//
// Threading: constants, and a function that reads the environment (call it
// when opening, not on a hot path; like getenv, not while another thread
// calls setenv).
#ifndef CONFCAST_DEFAULTS_HPP_
#define CONFCAST_DEFAULTS_HPP_

#include <cstdlib>
#include <string>
#include <string_view>

namespace confcast {

inline constexpr const char* kDefaultSegment = "holmesgpt-config";
inline constexpr const char* kSegmentVariable = "CONFCAST_SEGMENT";
inline constexpr const char* kDefaultConfigPath = "/etc/holmesgpt/config.yaml";
inline constexpr const char* kDefaultMetricsPrefix = "holmesgpt";

// `segment` itself when given; else $CONFCAST_SEGMENT when set and not
// empty; else kDefaultSegment.
inline std::string ResolveSegmentName(std::string_view segment) {
  if (!segment.empty()) return std::string(segment);
  const char* env = std::getenv(kSegmentVariable);
  return (env != nullptr && *env != '\0') ? std::string(env) : std::string(kDefaultSegment);
}

}  // namespace confcast

#endif  // CONFCAST_DEFAULTS_HPP_
