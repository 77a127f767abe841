#include "config_error.hpp"

#include "one_line.hpp"

namespace confcast::publisher {

const char* ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kIo:
      return "io";
    case Reason::kTooLarge:
      return "too_large";
    case Reason::kParse:
      return "parse";
    case Reason::kValidate:
      return "validate";
  }
  return "unknown";
}

std::string ConfigError::ToString() const {
  std::string out;
  if (!file.empty()) {
    AppendOneLine(out, file);
    if (line > 0) {
      out += ':' + std::to_string(line);
      if (column > 0) out += ':' + std::to_string(column);
    }
    out += ": ";
  } else if (line > 0) {
    out += std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
    out += ": ";
  }
  if (!path.empty()) {
    AppendOneLine(out, path);
    out += ": ";
  }
  AppendOneLine(out, message);
  return out;
}

}  // namespace confcast::publisher
