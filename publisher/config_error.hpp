// config_error.hpp - the one error type of the publisher's config pipeline
// (read -> parse -> validate), with the reason the metrics count it under and
// the position a user needs to find the mistake.
//
// Threading: plain values; no shared state.
#ifndef CONFCAST_PUBLISHER_CONFIG_ERROR_HPP_
#define CONFCAST_PUBLISHER_CONFIG_ERROR_HPP_

#include <string>

namespace confcast::publisher {

// Same order and values as layout::Reason, so a Reason indexes
// Stats::errors_by_reason directly.
enum class Reason { kIo = 0, kTooLarge = 1, kParse = 2, kValidate = 3 };

// "io", "too_large", "parse", "validate": the metric label values.
const char* ReasonName(Reason reason);

struct ConfigError {
  Reason reason = Reason::kIo;
  std::string file;          // the path as given
  int line = 0, column = 0;  // 1-based; 0 when not applicable (io, too_large)
  std::string path;          // dotted config path ("llm.max_retries"), "" for the whole document
  std::string message;       // what is wrong and what was expected

  // "FILE:LINE:COLUMN: PATH: message", leaving out parts that are empty or 0.
  // Always one line: control characters (a key may hold a newline) are escaped.
  std::string ToString() const;
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_ERROR_HPP_
