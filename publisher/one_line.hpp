// one_line.hpp - text made safe for one line of a log or of the segment's
// last_error: a key or a value quoted in a message may hold any byte, and a
// newline in it would split one event into two.
//
// Threading: pure functions.
#ifndef CONFCAST_PUBLISHER_ONE_LINE_HPP_
#define CONFCAST_PUBLISHER_ONE_LINE_HPP_

#include <cstdio>
#include <string>
#include <string_view>

namespace confcast::publisher {

// Appends text with \n, \r, \t and the other control bytes written as
// escapes (\xNN); every other byte, UTF-8 included, as it is.
inline void AppendOneLine(std::string& out, std::string_view text) {
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

inline std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendOneLine(out, text);
  return out;
}

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_ONE_LINE_HPP_
