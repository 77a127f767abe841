#include "config_error.hpp"

#include <cstdio>

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

namespace {

// Log lines and the segment's last_error are single lines; a key or a value
// quoted in a message may contain any byte.
void AppendOneLine(std::string& out, const std::string& text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
}

}  // namespace

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
