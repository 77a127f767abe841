#include "config_text.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace confcast::publisher {

TextPositions::TextPositions(std::string_view text) : text_(text) {
  line_starts_.push_back(0);
  bool ascii = true;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) {
      line_starts_.push_back(i + 1);
    }
    if (static_cast<unsigned char>(text[i]) >= 0x80) ascii = false;
  }
  if (!ascii) {
    characters_before_.resize(text.size() + 1);
    uint32_t count = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      characters_before_[i] = count;
      // Continuation bytes (10xxxxxx) belong to the character before them.
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++count;
    }
    characters_before_[text.size()] = count;
  }
}

SourcePosition TextPositions::At(size_t offset) const {
  offset = std::min(offset, text_.size());
  const auto next_line = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  const size_t line_index = static_cast<size_t>(next_line - line_starts_.begin()) - 1;
  const size_t line_start = line_starts_[line_index];
  const size_t characters = characters_before_.empty()
                                ? offset - line_start
                                : characters_before_[offset] - characters_before_[line_start];
  return SourcePosition{static_cast<int>(line_index) + 1, static_cast<int>(characters) + 1};
}

namespace {

// YAML 1.2 c-printable, minus what UTF-8 decoding already excludes.
bool IsYamlPrintable(uint32_t cp) {
  if (cp == 0x09 || cp == 0x0A || cp == 0x0D) return true;
  if (cp >= 0x20 && cp <= 0x7E) return true;
  if (cp == 0x85) return true;
  if (cp >= 0xA0 && cp <= 0xD7FF) return true;
  if (cp >= 0xE000 && cp <= 0xFFFD) return true;
  return cp >= 0x10000 && cp <= 0x10FFFF;
}

std::string CodePointName(uint32_t cp) {
  char name[16];
  std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(cp));
  return name;
}

}  // namespace

size_t DecodeUtf8(std::string_view text, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  size_t length;
  uint32_t min_value;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min_value = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min_value || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return length;
}

std::optional<TextProblem> CheckYamlText(std::string_view text) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") {
    return TextProblem{0, "the file starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM"};
  }
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t length = DecodeUtf8(text, i, cp);
    if (length == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[i])));
      return TextProblem{i, std::string("invalid UTF-8 (byte ") + hex + "); the file must be UTF-8 text"};
    }
    if (cp == 0) return TextProblem{i, "NUL byte; the file must be UTF-8 text, not binary data"};
    if (!IsYamlPrintable(cp)) {
      return TextProblem{i, "character " + CodePointName(cp) +
                                " is not allowed in YAML (a control character; binary data?)"};
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace confcast::publisher
