// config_text.hpp - the text-level checks a config or schema file passes
// before any YAML parser sees it (no byte-order mark, valid UTF-8, no NUL or
// other characters YAML forbids), and the mapping from a byte offset to the
// 1-based line and column a user sees in an editor.
//
// Columns count characters (UTF-8 code points), not bytes, so a position after
// a non-ASCII key matches the editor's column. Line breaks are LF, CRLF and a
// lone CR, as yaml-cpp counts them.
//
// Threading: TextPositions is immutable after construction; no shared state.
#ifndef CONFCAST_PUBLISHER_CONFIG_TEXT_HPP_
#define CONFCAST_PUBLISHER_CONFIG_TEXT_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confcast::publisher {

struct SourcePosition {
  int line = 0;    // 1-based, 0 = unknown
  int column = 0;  // 1-based, 0 = unknown
  // Which source file of a merged document (YamlDocument::sources); 0 for a
  // document parsed from one file.
  uint32_t source = 0;
};

class TextPositions {
 public:
  explicit TextPositions(std::string_view text);
  // offset may be text.size() (the end); larger offsets are clamped to it.
  SourcePosition At(size_t offset) const;

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
  // Characters before each byte offset, kept only when the text is not pure
  // ASCII (then a column is a plain byte difference). Either way At() is
  // O(log lines): a long one-line flow list must not make positions quadratic.
  std::vector<uint32_t> characters_before_;
};

struct TextProblem {
  size_t offset;        // of the first offending byte
  std::string message;  // what is wrong and what to do
};

// The first reason the bytes cannot be YAML text, or nothing.
std::optional<TextProblem> CheckYamlText(std::string_view text);

// Decodes one UTF-8 sequence at text[i] (i < text.size()); returns its length,
// or 0 when the bytes are not well-formed UTF-8 (overlong forms, surrogates
// and values above U+10FFFF included).
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t& cp);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_TEXT_HPP_
