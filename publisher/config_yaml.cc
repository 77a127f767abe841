#include "config_yaml.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "snapshot_builder.hpp"

namespace confcast::publisher {

std::string JoinPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

namespace {

constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

// ---- YAML 1.2 core schema ---------------------------------------------------

bool IsNullWord(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

std::optional<bool> BoolWord(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

enum class NumberResult { kNotNumber, kOk, kOutOfRange };

bool AllOf(std::string_view s, bool (*accept)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), accept);
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOctalDigit(char c) { return c >= '0' && c <= '7'; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

NumberResult ParseUnsignedInBase(std::string_view digits, int base, int64_t& out) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec == std::errc::result_out_of_range ||
      value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return NumberResult::kOutOfRange;
  }
  if (ec != std::errc() || end != digits.data() + digits.size()) return NumberResult::kNotNumber;
  out = static_cast<int64_t>(value);
  return NumberResult::kOk;
}

// [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
NumberResult ParseCoreInt(std::string_view s, int64_t& out) {
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') {
    return AllOf(s.substr(2), IsHexDigit) ? ParseUnsignedInBase(s.substr(2), 16, out) : NumberResult::kNotNumber;
  }
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o') {
    return AllOf(s.substr(2), IsOctalDigit) ? ParseUnsignedInBase(s.substr(2), 8, out)
                                            : NumberResult::kNotNumber;
  }
  std::string_view digits = s;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
  if (!AllOf(digits, IsDigit)) return NumberResult::kNotNumber;
  // from_chars takes a '-' but not a '+'.
  const std::string_view parsed = s[0] == '+' ? digits : s;
  const auto [end, ec] = std::from_chars(parsed.data(), parsed.data() + parsed.size(), out);
  if (ec == std::errc::result_out_of_range) return NumberResult::kOutOfRange;
  return ec == std::errc() && end == parsed.data() + parsed.size() ? NumberResult::kOk : NumberResult::kNotNumber;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
NumberResult ParseCoreFloat(std::string_view s, double& out) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return NumberResult::kOk;
  }
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    out = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return NumberResult::kOk;
  }
  size_t i = 0;
  size_t integer_digits = 0, fraction_digits = 0;
  while (i < body.size() && IsDigit(body[i])) ++i, ++integer_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && IsDigit(body[i])) ++i, ++fraction_digits;
  }
  if (integer_digits == 0 && fraction_digits == 0) return NumberResult::kNotNumber;
  bool negative_exponent = false;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '-' || body[i] == '+')) negative_exponent = body[i++] == '-';
    size_t exponent_digits = 0;
    while (i < body.size() && IsDigit(body[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return NumberResult::kNotNumber;
  }
  if (i != body.size()) return NumberResult::kNotNumber;
  // "1." and ".5" are YAML floats; give from_chars the digits it surely accepts.
  std::string normalized(body);
  if (integer_digits == 0) normalized.insert(0, "0");
  double value = 0;
  const auto [end, ec] = std::from_chars(normalized.data(), normalized.data() + normalized.size(), value);
  if (ec == std::errc::result_out_of_range) {
    if (!negative_exponent) return NumberResult::kOutOfRange;
    value = 0.0;  // underflow: the nearest double is zero
  } else if (ec != std::errc() || end != normalized.data() + normalized.size()) {
    return NumberResult::kNotNumber;
  }
  out = negative ? -value : value;
  return NumberResult::kOk;
}

// ---- yaml-cpp's Latin-1 escapes ---------------------------------------------

// yaml-cpp 0.7 decodes the double-quoted escapes \N (U+0085) and \_ (U+00A0)
// to the single bytes 0x85 and 0xA0 instead of their UTF-8 (its \L, \P, \x
// and \u escapes are UTF-8 already). The file itself passed CheckYamlText, so
// every other byte of a scalar belongs to a well-formed UTF-8 sequence, and a
// 0x85 or 0xA0 that starts no sequence can only come from one of those two
// escapes. Both characters are C2 followed by that same byte in UTF-8.
bool NeedsLatinEscapeRepair(const std::string& value) {
  return value.find_first_of("\x85\xA0") != std::string::npos;
}

std::string RepairLatinEscapes(const std::string& value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (size_t i = 0; i < value.size();) {
    uint32_t cp = 0;
    if (const size_t length = DecodeUtf8(value, i, cp); length != 0) {
      out.append(value, i, length);
      i += length;
      continue;
    }
    const unsigned char byte = static_cast<unsigned char>(value[i]);
    if (byte == 0x85 || byte == 0xA0) {
      out.push_back('\xC2');
      out.push_back(static_cast<char>(byte));
      ++i;
      continue;
    }
    // Not expected from a checked file; keep the broken sequence whole, so no
    // continuation byte inside it is taken for an escape, and let the
    // snapshot builder refuse it.
    out.push_back(value[i++]);
    while (i < value.size() && (static_cast<unsigned char>(value[i]) & 0xC0) == 0x80) out.push_back(value[i++]);
  }
  return out;
}

// ---- quoted scalars cut short ---------------------------------------------

// yaml-cpp 0.7 ends a quoted scalar at the end of the input without an error
// when a line break precedes it, so a write cut short inside a quoted string
// turns the rest of the file into that string. YAML (and libyaml) reject it.
// Given where yaml-cpp says the scalar starts, these find whether its closing
// quote exists; the quoted-scalar grammar is exact, so a valid file never
// fails here.

bool IsSeparationSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// yaml-cpp marks a node at its tag or anchor when it has one; the scalar's own
// first character comes after them, their separating spaces, line breaks and
// comments. Returns text.size() when nothing follows.
size_t ScalarTextStart(std::string_view text, size_t pos) {
  while (pos < text.size() && (text[pos] == '!' || text[pos] == '&')) {
    while (pos < text.size() && !IsSeparationSpace(text[pos])) ++pos;
    while (pos < text.size()) {
      if (IsSeparationSpace(text[pos])) {
        ++pos;
      } else if (text[pos] == '#') {
        while (pos < text.size() && text[pos] != '\n' && text[pos] != '\r') ++pos;
      } else {
        break;
      }
    }
  }
  return pos;
}

// Whether the quoted scalar whose opening quote is text[open] has a closing
// one: in double quotes a backslash escapes the next character (a line break
// included); in single quotes '' is a quote and \ is an ordinary character.
bool QuotedScalarIsClosed(std::string_view text, size_t open) {
  const char quote = text[open];
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      if (quote == '"' || i + 1 == text.size() || text[i + 1] != '\'') return true;
      ++i;
    }
  }
  return false;
}

// ---- the event handler that builds the tree --------------------------------

struct ParseAbort {
  SourcePosition position;
  std::string path;
  std::string message;
  Reason reason = Reason::kParse;
};

// Sums of path bytes multiply (values x path length): saturate well below
// overflow; any saturated count is far past every limit.
constexpr uint64_t kSaturated = uint64_t{1} << 62;
uint64_t SatAdd(uint64_t a, uint64_t b) { return a >= kSaturated - std::min(b, kSaturated) ? kSaturated : a + b; }
uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : a * b;
}
uint64_t DecimalDigits(uint64_t n) {
  uint64_t digits = 1;
  while (n >= 10) n /= 10, ++digits;
  return digits;
}

class TreeBuilder : public YAML::EventHandler {
 public:
  TreeBuilder(std::string_view text, const TextPositions& positions, const YamlLimits& limits)
      : text_(text), positions_(positions), limits_(limits) {
    snapshot_nodes_ = limits.used_before.snapshot_nodes;
    snapshot_path_bytes_ = limits.used_before.snapshot_path_bytes;
    snapshot_text_bytes_ = limits.used_before.snapshot_text_bytes;
    expanded_nodes_ = limits.used_before.nodes;
    expanded_bytes_ = limits.used_before.expanded_bytes;
  }

  int documents() const { return documents_; }
  YamlDocument Take() {
    YamlDocument document;
    document.nodes = std::move(nodes_);
    document.root = root_;
    document.usage = {expanded_nodes_, expanded_bytes_, snapshot_nodes_, snapshot_path_bytes_, snapshot_text_bytes_};
    return document;
  }

  // Where the parser was when yaml-cpp gave up: the open collection, and the
  // key whose value it was reading, if any.
  std::string PathAtFailure() const { return CurrentPath(ChildSegmentIfKeyed()); }

  SourcePosition PositionOf(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.pos < 0) return {};
    return positions_.At(static_cast<size_t>(mark.pos));
  }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      Fail(mark, "",
           "a second YAML document starts here; the file must hold exactly one document "
           "(remove the '---' separator or split the file)");
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ExpectingKey()) {
      // yaml-cpp reports a plain "null"/"~" key and a missing key alike; the
      // text at the mark tells them apart.
      const std::string spelling = NullSpellingAt(mark);
      if (spelling.empty()) Fail(mark, CurrentPath(""), "a map entry has no key");
      TakeKey(spelling, mark);
      RegisterScalarKeyAnchor(anchor, YamlKind::kNull, spelling, mark);
      return;
    }
    const YamlNodeId id = NewNode(YamlKind::kNull, mark);
    nodes_[id].text = NullSpellingAt(mark);
    FinishScalar(id, anchor, mark);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto found = anchors_.find(anchor);
    if (found == anchors_.end()) {
      Fail(mark, CurrentPath(ExpectingKey() ? "" : ChildSegment()),
           "the alias refers to a node that contains it (a recursive alias)");
    }
    const YamlNodeId target = found->second;
    if (ExpectingKey()) {
      const YamlKind kind = nodes_[target].kind;
      if (kind == YamlKind::kMap || kind == YamlKind::kList) {
        Fail(mark, CurrentPath(""), "a map key must be a scalar, but this alias refers to a collection");
      }
      TakeKey(nodes_[target].text, mark);
      return;
    }
    if (static_cast<int>(frames_.size()) + height_[target] > limits_.max_depth) {
      Fail(mark, CurrentPath(ChildSegment()),
           "the alias nests deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    CountExpansion(size_[target], bytes_[target], mark);
    const uint64_t at = ChildPathBytes();
    CountSnapshot(size_[target], SatAdd(SatMul(size_[target], at), rel_path_[target]), strings_[target],
                  SatAdd(at, max_rel_[target]), mark);
    Attach(target);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& raw_value) override {
    if (tag != "?") CheckQuoteIsClosed(mark);
    std::string repaired;
    if (NeedsLatinEscapeRepair(raw_value)) repaired = RepairLatinEscapes(raw_value);
    const std::string& value = repaired.empty() ? raw_value : repaired;
    if (ExpectingKey()) {
      TakeKey(value, mark);
      RegisterScalarKeyAnchor(anchor, YamlKind::kString, value, mark);
      return;
    }
    const YamlNodeId id = NewNode(YamlKind::kString, mark);
    Resolve(id, tag, value, mark);
    FinishScalar(id, anchor, mark);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    StartCollection(YamlKind::kList, mark, tag, anchor);
  }
  void OnSequenceEnd() override { EndCollection(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    StartCollection(YamlKind::kMap, mark, tag, anchor);
  }
  void OnMapEnd() override { EndCollection(); }

 private:
  struct Frame {
    YamlNodeId node;
    YAML::anchor_t anchor;
    std::string segment;  // this node's key or index under its parent
    uint64_t path_bytes;  // of this node's dotted path, separators left out (a lower bound)
    bool have_key = false;
    std::string key;
    SourcePosition key_position;
    std::unordered_set<std::string> keys;
    std::unordered_map<std::string, SourcePosition> key_positions;
  };

  [[noreturn]] void Fail(const YAML::Mark& mark, std::string path, std::string message) const {
    throw ParseAbort{PositionOf(mark), std::move(path), std::move(message)};
  }

  void CheckQuoteIsClosed(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.pos < 0) return;
    const size_t start = ScalarTextStart(text_, static_cast<size_t>(mark.pos));
    if (start >= text_.size() || (text_[start] != '"' && text_[start] != '\'')) return;
    if (QuotedScalarIsClosed(text_, start)) return;
    const bool double_quoted = text_[start] == '"';
    throw ParseAbort{positions_.At(start), CurrentPath(ChildSegment()),
                     std::string("YAML syntax error: the ") + (double_quoted ? "double" : "single") +
                         "-quoted string that starts here is never closed (no closing " +
                         (double_quoted ? "\"" : "'") +
                         " before the end of the file; was the write cut short?)"};
  }

  bool ExpectingKey() const {
    return !frames_.empty() && nodes_[frames_.back().node].kind == YamlKind::kMap && !frames_.back().have_key;
  }

  // The key or index the next value will sit under.
  std::string ChildSegment() const {
    if (frames_.empty()) return "";
    const Frame& top = frames_.back();
    if (nodes_[top.node].kind == YamlKind::kList) return std::to_string(nodes_[top.node].items.size());
    return top.have_key ? top.key : "";
  }

  // The path of the current collection, plus `child` below it unless empty
  // (errors about a key not yet taken have no child segment).
  std::string ChildSegmentIfKeyed() const {
    return !frames_.empty() && nodes_[frames_.back().node].kind == YamlKind::kMap ? ChildSegment() : "";
  }

  std::string CurrentPath(const std::string& child) const {
    std::string path;
    for (size_t i = 1; i < frames_.size(); ++i) path = JoinPath(path, frames_[i].segment);
    return child.empty() ? path : JoinPath(path, child);
  }

  std::string NullSpellingAt(const YAML::Mark& mark) const {
    if (mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size()) return "";
    const std::string_view rest = text_.substr(static_cast<size_t>(mark.pos));
    for (std::string_view word : {"null", "Null", "NULL", "~"}) {
      if (rest.substr(0, word.size()) == word) return std::string(word);
    }
    return "";
  }

  void TakeKey(const std::string& key, const YAML::Mark& mark) {
    Frame& top = frames_.back();
    const SourcePosition position = PositionOf(mark);
    // A NUL is fine in a value (the C API returns a length), but the C API
    // takes a path as a NUL-terminated string, so no C caller could ever ask
    // for this key or anything below it.
    if (key.find('\0') != std::string::npos) {
      throw ParseAbort{position, CurrentPath(key),
                       "a key cannot contain a NUL character (the escape \\0, \\x00 or \\u0000): "
                       "no C caller could look up its path"};
    }
    if (!top.keys.insert(key).second) {
      const SourcePosition first = top.key_positions[key];
      throw ParseAbort{position, CurrentPath(key),
                       "duplicate key \"" + key + "\" (first defined at line " + std::to_string(first.line) +
                           ", column " + std::to_string(first.column) + ")"};
    }
    top.key_positions.emplace(key, position);
    top.have_key = true;
    top.key = key;
    top.key_position = position;
    CountExpansion(0, key.size(), mark);
    CountSnapshot(0, 0, key.size(), 0, mark);
  }

  // An anchored key ("&k name: v") may be used again as a key or a value.
  void RegisterScalarKeyAnchor(YAML::anchor_t anchor, YamlKind kind, const std::string& text,
                               const YAML::Mark& mark) {
    if (anchor == YAML::NullAnchor) return;
    const YamlNodeId id = NewNode(kind, mark);
    nodes_[id].text = text;
    if (kind == YamlKind::kString) Resolve(id, "?", text, mark);
    strings_[id] = nodes_[id].kind == YamlKind::kString ? nodes_[id].text.size() : 0;
    anchors_[anchor] = id;
  }

  YamlNodeId NewNode(YamlKind kind, const YAML::Mark& mark) {
    if (nodes_.size() >= std::numeric_limits<YamlNodeId>::max()) Fail(mark, "", "too many nodes");
    nodes_.emplace_back();
    nodes_.back().kind = kind;
    nodes_.back().position = PositionOf(mark);
    size_.push_back(1);
    bytes_.push_back(0);
    height_.push_back(0);
    rel_path_.push_back(0);
    max_rel_.push_back(0);
    strings_.push_back(0);
    return static_cast<YamlNodeId>(nodes_.size() - 1);
  }

  void CountExpansion(uint64_t nodes, uint64_t bytes, const YAML::Mark& mark) {
    expanded_nodes_ += nodes;
    expanded_bytes_ += bytes;
    if (expanded_nodes_ > limits_.max_nodes) {
      Fail(mark, CurrentPath(ChildSegment()),
           "alias expansion: the document expands to more than " + std::to_string(limits_.max_nodes) +
               " values (a \"billion laughs\" file?)");
    }
    if (expanded_bytes_ > limits_.max_expanded_bytes) {
      Fail(mark, CurrentPath(ChildSegment()),
           "alias expansion: the document expands to more than " + std::to_string(limits_.max_expanded_bytes) +
               " bytes of text");
    }
  }

  // The bytes of the next value's dotted path, separators left out: the sum
  // of its keys and list indexes. (Separators depend on empty keys; leaving
  // them out keeps this a lower bound of what the snapshot stores.)
  uint64_t ChildPathBytes() const {
    if (frames_.empty()) return 0;
    const Frame& top = frames_.back();
    const YamlNode& parent = nodes_[top.node];
    return SatAdd(top.path_bytes,
                  parent.kind == YamlKind::kList ? DecimalDigits(parent.items.size()) : top.key.size());
  }

  // nodes more values, path_bytes more dotted-path bytes and text_bytes more
  // key and string bytes in the expanded document; longest_path: the longest
  // path among them. Checked against what a snapshot can hold.
  void CountSnapshot(uint64_t nodes, uint64_t path_bytes, uint64_t text_bytes, uint64_t longest_path,
                     const YAML::Mark& mark) {
    snapshot_nodes_ = SatAdd(snapshot_nodes_, nodes);
    snapshot_path_bytes_ = SatAdd(snapshot_path_bytes_, path_bytes);
    snapshot_text_bytes_ = SatAdd(snapshot_text_bytes_, text_bytes);
    if (limits_.max_path_bytes != 0 && longest_path > limits_.max_path_bytes) {
      throw ParseAbort{PositionOf(mark), snapshot::ClipPath(CurrentPath(ChildSegment())),
                       "the dotted path " + std::string(nodes > 1 ? "of a value under this alias " : "") +
                           "is longer than " + std::to_string(limits_.max_path_bytes) + " bytes (at least " +
                           std::to_string(longest_path) + "); a snapshot cannot hold it",
                       Reason::kValidate};
    }
    if (limits_.max_snapshot_bytes == 0) return;
    const uint64_t need = snapshot::MinimumSnapshotBytes(snapshot_nodes_, snapshot_path_bytes_, snapshot_text_bytes_);
    if (need <= limits_.max_snapshot_bytes) return;
    // Reported like the publisher's other too-large rejections (no position
    // of its own: the message carries it), so one prefix matches them all.
    const SourcePosition at = PositionOf(mark);
    throw ParseAbort{{}, "",
                     snapshot::NeedsMoreThan(limits_.max_snapshot_bytes) + ": it would exceed it at line " +
                         std::to_string(at.line) + ", column " + std::to_string(at.column) + ", path " +
                         snapshot::ClipPath(CurrentPath(ExpectingKey() ? "" : ChildSegment())) + " (" +
                         std::to_string(snapshot_nodes_) + " values, " + std::to_string(snapshot_text_bytes_) +
                         " bytes of keys and strings and at least " + std::to_string(snapshot_path_bytes_) +
                         " bytes of dotted paths so far, aliases expanded)",
                     Reason::kTooLarge};
  }

  void FinishScalar(YamlNodeId id, YAML::anchor_t anchor, const YAML::Mark& mark) {
    bytes_[id] = nodes_[id].text.size();
    CountExpansion(1, bytes_[id], mark);
    strings_[id] = nodes_[id].kind == YamlKind::kString ? nodes_[id].text.size() : 0;
    const uint64_t at = ChildPathBytes();
    CountSnapshot(1, at, strings_[id], at, mark);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = id;
    Attach(id);
  }

  void Attach(YamlNodeId id) {
    if (frames_.empty()) {
      root_ = id;
      return;
    }
    Frame& top = frames_.back();
    YamlNode& parent = nodes_[top.node];
    if (parent.kind == YamlKind::kList) {
      parent.items.push_back(id);
    } else {
      parent.entries.push_back(YamlEntry{std::move(top.key), top.key_position, id});
      top.have_key = false;
      top.key.clear();
    }
  }

  void StartCollection(YamlKind kind, const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor) {
    if (ExpectingKey()) {
      Fail(mark, CurrentPath(""), std::string("a map key must be a scalar, not a ") +
                                      (kind == YamlKind::kMap ? "map" : "list"));
    }
    const std::string expected_tag = std::string(kCoreTagPrefix) + (kind == YamlKind::kMap ? "map" : "seq");
    if (tag != "?" && tag != "!" && tag != expected_tag) {
      Fail(mark, CurrentPath(ChildSegment()), "unsupported tag \"" + tag + "\"");
    }
    if (static_cast<int>(frames_.size()) + 1 > limits_.max_depth) {
      Fail(mark, CurrentPath(ChildSegment()),
           "nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    const std::string segment = ChildSegment();
    const uint64_t path_bytes = ChildPathBytes();
    const YamlNodeId id = NewNode(kind, mark);
    CountExpansion(1, 0, mark);
    CountSnapshot(1, path_bytes, 0, path_bytes, mark);
    frames_.push_back(Frame{id, anchor, segment, path_bytes, false, "", {}, {}, {}});
  }

  void EndCollection() {
    const Frame& top = frames_.back();
    const YamlNodeId id = top.node;
    const YAML::anchor_t anchor = top.anchor;
    uint64_t size = 1, bytes = 0, rel_path = 0, max_rel = 0, text = 0;
    int height = 0;
    // segment: the bytes of the child's key or index, which every path below it holds.
    const auto add_child = [&](YamlNodeId child, uint64_t segment) {
      size = std::min(size + size_[child], limits_.max_nodes + 1);
      bytes = std::min(bytes + bytes_[child], limits_.max_expanded_bytes + 1);
      height = std::max(height, height_[child]);
      rel_path = SatAdd(rel_path, SatAdd(SatMul(size_[child], segment), rel_path_[child]));
      max_rel = std::max(max_rel, SatAdd(segment, max_rel_[child]));
      text = SatAdd(text, strings_[child]);
    };
    const YamlNode& node = nodes_[id];
    for (size_t i = 0; i < node.items.size(); ++i) add_child(node.items[i], DecimalDigits(i));
    for (const YamlEntry& entry : node.entries) {
      add_child(entry.value, entry.key.size());
      bytes = std::min(bytes + entry.key.size(), limits_.max_expanded_bytes + 1);
      text = SatAdd(text, entry.key.size());
    }
    size_[id] = size;
    bytes_[id] = bytes;
    height_[id] = height + 1;
    rel_path_[id] = rel_path;
    max_rel_[id] = max_rel;
    strings_[id] = text;
    frames_.pop_back();
    if (anchor != YAML::NullAnchor) anchors_[anchor] = id;
    Attach(id);
  }

  void Resolve(YamlNodeId id, const std::string& tag, const std::string& value, const YAML::Mark& mark) {
    YamlNode& node = nodes_[id];
    node.text = value;
    const auto fail_type = [&](const char* what) {
      Fail(mark, CurrentPath(ChildSegment()), "\"" + value + "\" is not " + what + " (tag " + tag + ")");
    };
    const auto out_of_range = [&](const char* what) {
      Fail(mark, CurrentPath(ChildSegment()), std::string(what) + " " + value + " is out of range" +
                                                  (what[0] == 'i' ? " (64-bit signed)" : ""));
    };
    std::string_view core;
    if (tag.compare(0, kCoreTagPrefix.size(), kCoreTagPrefix) == 0) {
      core = std::string_view(tag).substr(kCoreTagPrefix.size());
    } else if (tag == "!") {
      return;  // quoted or block scalar: always a string
    } else if (tag != "?") {
      Fail(mark, CurrentPath(ChildSegment()), "unsupported tag \"" + tag + "\"");
    }
    if (core == "str") return;
    if (tag == "?" || core == "null") {
      if (IsNullWord(value)) {
        node.kind = YamlKind::kNull;
        return;
      }
      if (core == "null") fail_type("null");
    }
    if (tag == "?" || core == "bool") {
      if (const auto boolean = BoolWord(value)) {
        node.kind = YamlKind::kBool;
        node.boolean = *boolean;
        return;
      }
      if (core == "bool") fail_type("a bool");
    }
    if (tag == "?" || core == "int") {
      const NumberResult result = ParseCoreInt(value, node.integer);
      if (result == NumberResult::kOk) {
        node.kind = YamlKind::kInt;
        return;
      }
      if (result == NumberResult::kOutOfRange) out_of_range("integer");
      if (core == "int") fail_type("an integer");
    }
    if (tag == "?" || core == "float") {
      int64_t as_int = 0;
      if (core == "float" && ParseCoreInt(value, as_int) == NumberResult::kOk) {
        node.kind = YamlKind::kFloat;
        node.real = static_cast<double>(as_int);
        return;
      }
      const NumberResult result = ParseCoreFloat(value, node.real);
      if (result == NumberResult::kOk) {
        node.kind = YamlKind::kFloat;
        return;
      }
      if (result == NumberResult::kOutOfRange) out_of_range("number");
      if (core == "float") fail_type("a number");
    }
    if (tag != "?") Fail(mark, CurrentPath(ChildSegment()), "unsupported tag \"" + tag + "\"");
  }

  std::string_view text_;
  const TextPositions& positions_;
  const YamlLimits& limits_;
  std::vector<YamlNode> nodes_;
  std::vector<uint64_t> size_;   // values in the expanded subtree, saturated at max_nodes + 1
  std::vector<uint64_t> bytes_;  // key and scalar bytes in the expanded subtree, saturated
  std::vector<int> height_;      // collection levels in the subtree (a scalar: 0)
  // For the snapshot limits, per node, saturated: the path bytes of every node
  // in the expanded subtree relative to this node, the longest of them, and
  // the key and string bytes in it. Separators are left out (see ChildPathBytes).
  std::vector<uint64_t> rel_path_;
  std::vector<uint64_t> max_rel_;
  std::vector<uint64_t> strings_;
  uint64_t snapshot_nodes_ = 0;
  uint64_t snapshot_path_bytes_ = 0;
  uint64_t snapshot_text_bytes_ = 0;
  std::vector<Frame> frames_;
  std::unordered_map<YAML::anchor_t, YamlNodeId> anchors_;  // completed anchored nodes only
  uint64_t expanded_nodes_ = 0;
  uint64_t expanded_bytes_ = 0;
  int documents_ = 0;
  YamlNodeId root_ = 0;
};

ConfigError ParseError(const std::string& file, SourcePosition position, std::string path, std::string message) {
  return ConfigError{Reason::kParse, file, position.line, position.column, std::move(path), std::move(message)};
}

std::string Shorten(const std::string& text) {
  constexpr size_t kMax = 40;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "...";
}

}  // namespace

std::string DescribeValue(const YamlNode& node) {
  switch (node.kind) {
    case YamlKind::kNull:
      return node.text.empty() ? "an empty value" : "null";
    case YamlKind::kBool:
    case YamlKind::kInt:
    case YamlKind::kFloat:
      return node.text;
    case YamlKind::kString:
      return "\"" + Shorten(node.text) + "\"";
    case YamlKind::kList:
      return "a list";
    case YamlKind::kMap:
      return "a map";
  }
  return "?";
}

std::variant<YamlDocument, ConfigError> ParseYamlDocument(std::string_view bytes, const std::string& file,
                                                          const YamlLimits& limits) {
  const TextPositions positions(bytes);
  if (const auto problem = CheckYamlText(bytes)) {
    return ParseError(file, positions.At(problem->offset), "", problem->message);
  }
  TreeBuilder builder(bytes, positions, limits);
  try {
    std::istringstream stream{std::string(bytes)};
    YAML::Parser parser(stream);
    // The second call only runs to find out whether a second document exists;
    // the builder aborts as soon as one starts.
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const ParseAbort& abort) {
    ConfigError error = ParseError(file, abort.position, abort.path, abort.message);
    error.reason = abort.reason;
    return error;
  } catch (const YAML::Exception& error) {
    return ParseError(file, builder.PositionOf(error.mark), builder.PathAtFailure(), "YAML syntax error: " + error.msg);
  } catch (const std::exception& error) {
    return ParseError(file, {}, "", std::string("cannot parse: ") + error.what());
  }
  if (builder.documents() == 0) {
    return ParseError(file, {}, "",
                      bytes.empty() ? "the file is empty; it must hold a YAML map"
                                    : "the file holds no YAML document (only comments or whitespace); "
                                      "it must hold a YAML map");
  }
  YamlDocument document = builder.Take();
  const YamlNode& root = document.root_node();
  switch (root.kind) {
    case YamlKind::kMap:
      return document;
    case YamlKind::kNull:
      return ParseError(file, root.position, "",
                        "the document is empty (null); the top level must be a map of keys to values");
    case YamlKind::kList:
      return ParseError(file, root.position, "", "the top level is a list; it must be a map of keys to values");
    default:
      return ParseError(file, root.position, "",
                        "the top level is a scalar, " + DescribeValue(root) +
                            "; it must be a map of keys to values");
  }
}

}  // namespace confcast::publisher
