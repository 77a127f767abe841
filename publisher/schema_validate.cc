#include "schema_validate.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "schema.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher::schema_detail {

using nlohmann::json;

namespace {

constexpr const char* kNonFiniteHint = " (.inf/.nan cannot be published as JSON)";

// JoinPath, in place: the free-form walk extends one path instead of building
// a string per node.
void AppendSegment(std::string& path, const std::string& key) {
  if (!path.empty()) path += '.';
  path += key;
}

std::string FormatInt(int64_t value) { return std::to_string(value); }

// What a secret field got, by kind only: the message goes to the log, the
// segment's last_error and --check output, none of which may hold the value.
std::string DescribeSecret(const YamlNode& node) {
  switch (node.kind) {
    case YamlKind::kNull: return "null";
    case YamlKind::kBool: return "a bool (value not shown: secret)";
    case YamlKind::kInt: return "an int (value not shown: secret)";
    case YamlKind::kFloat: return "a float (value not shown: secret)";
    case YamlKind::kString: return node.text.empty() ? "an empty string" : "a string (value not shown: secret)";
    case YamlKind::kList: return "a list";
    case YamlKind::kMap: return "a map";
  }
  return "a value (not shown: secret)";
}

// Shortest round-trip form, always recognisable as a float ("2.0", not "2").
std::string FormatReal(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  if (std::isfinite(value) && text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string FormatEnumValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return FormatReal(value.get<double>());
  return value.dump();
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char AsciiUpper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return AsciiLower(x) == AsciiLower(y); });
}

bool IsBlank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// http:// or https:// (any case), a non-empty host, an optional numeric port,
// and no whitespace or control characters anywhere.
bool IsHttpUrl(const std::string& text) {
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return false;
  }
  size_t scheme_end;
  if (text.size() > 7 && EqualsIgnoringCase(std::string_view(text).substr(0, 7), "http://")) {
    scheme_end = 7;
  } else if (text.size() > 8 && EqualsIgnoringCase(std::string_view(text).substr(0, 8), "https://")) {
    scheme_end = 8;
  } else {
    return false;
  }
  const size_t authority_end = text.find_first_of("/?#", scheme_end);
  std::string_view authority = std::string_view(text).substr(
      scheme_end, authority_end == std::string::npos ? std::string::npos : authority_end - scheme_end);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {  // IPv6 literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = authority.substr(0, close + 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (host.empty()) return false;
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return false;
  }
  return true;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (AsciiLower(a[i - 1]) == AsciiLower(b[j - 1]) ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Range(const std::optional<std::string>& min, const std::optional<std::string>& max) {
  if (min && max) return " from " + *min + " to " + *max;
  if (min) return " of at least " + *min;
  if (max) return " of at most " + *max;
  return "";
}

}  // namespace

std::string Expectation(const SchemaNode& schema) {
  std::string expected;
  if (!schema.enum_values.empty()) {
    expected = "one of ";
    for (size_t i = 0; i < schema.enum_values.size(); ++i) {
      if (i > 0) expected += ", ";
      expected += FormatEnumValue(schema.enum_values[i]);
    }
    if (schema.case_insensitive) expected += " (any case)";
  } else {
    switch (schema.type) {
      case FieldType::kString:
        expected = schema.url ? "an http:// or https:// URL" : schema.non_empty ? "a non-empty string" : "a string";
        break;
      case FieldType::kInt: {
        std::optional<std::string> min, max;
        if (schema.min_int) min = FormatInt(*schema.min_int);
        if (schema.max_int) max = FormatInt(*schema.max_int);
        expected = "an integer" + Range(min, max);
        break;
      }
      case FieldType::kFloat: {
        std::optional<std::string> min, max;
        if (schema.min_real) min = FormatReal(*schema.min_real);
        if (schema.max_real) max = FormatReal(*schema.max_real);
        expected = "a number" + Range(min, max);
        break;
      }
      case FieldType::kBool:
        expected = "true or false";
        break;
      case FieldType::kMap:
        expected = schema.non_empty ? "a non-empty map" : "a map";
        break;
      case FieldType::kList:
        expected = schema.non_empty ? "a non-empty list" : "a list";
        break;
      case FieldType::kAny:
        expected = "any value";
        break;
    }
  }
  if (schema.nullable) expected += " or null";
  return expected;
}

void Validator::Fail(SourcePosition where, const std::string& path, std::string message) const {
  throw ValidationFailure{ConfigError{Reason::kValidate, document_.FileOf(where, file_), where.line, where.column, path,
                                      std::move(message)}};
}

void Validator::Charge(uint64_t nodes, uint64_t path_bytes, uint64_t text_bytes, SourcePosition where,
                       const std::string& path) {
  if (capacity_ == 0) return;
  // Each is at most the capacity before the additions (else the walk has
  // stopped), and a default's sums are at most the schema's size times its
  // depth: no overflow.
  nodes_ += nodes;
  path_bytes_ += path_bytes;
  text_bytes_ += text_bytes;
  if (snapshot::MinimumSnapshotBytes(nodes_, path_bytes_, text_bytes_) <= capacity_) return;
  // No position of its own, like every too-large rejection (see config_yaml.hpp).
  throw ValidationFailure{ConfigError{
      Reason::kTooLarge, document_.FileOf(where, file_), 0, 0, "",
      snapshot::NeedsMoreThan(capacity_) + ": it would exceed it at line " + std::to_string(where.line) +
          ", column " + std::to_string(where.column) + ", path " + snapshot::ClipPath(path) + " (" +
          std::to_string(nodes_) + " values, " + std::to_string(text_bytes_) + " bytes of keys and strings and " +
          std::to_string(path_bytes_) + " bytes of dotted paths so far, defaults included)"}};
}

void Validator::ChargeDefault(const json& value, const std::string& path, SourcePosition where) {
  if (capacity_ == 0) return;
  uint64_t nodes = 0, path_bytes = 0, text_bytes = 0;
  // Sums without building the paths: a path's length is its parent's plus
  // the separator and the key.
  const auto walk = [&](const auto& self, const json& node, uint64_t length) -> void {
    ++nodes;
    path_bytes += length;
    if (node.is_string()) text_bytes += node.get_ref<const std::string&>().size();
    const uint64_t separator = length == 0 ? 0 : 1;
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        text_bytes += it.key().size();
        self(self, it.value(), length + separator + it.key().size());
      }
    } else if (node.is_array()) {
      for (size_t i = 0; i < node.size(); ++i) self(self, node[i], length + separator + std::to_string(i).size());
    }
  };
  walk(walk, value, path.size());
  Charge(nodes, path_bytes, text_bytes, where, path);
}

json Validator::FreeForm(YamlNodeId id, const std::string& path) {
  std::string walked = path;
  return FreeFormAt(id, walked);
}

json Validator::FreeFormAt(YamlNodeId id, std::string& path) {
  const YamlNode& node = document_.node(id);
  Charge(1, path.size(), node.kind == YamlKind::kString ? node.text.size() : 0, node.position, path);
  switch (node.kind) {
    case YamlKind::kNull:
      return nullptr;
    case YamlKind::kBool:
      return node.boolean;
    case YamlKind::kInt:
      return node.integer;
    case YamlKind::kFloat:
      // JSON has no .inf or .nan (nlohmann writes null), while the snapshot's
      // typed getters would return the double: the two views would disagree.
      if (!std::isfinite(node.real)) Fail(node.position, path, node.text + " is not a finite number" + kNonFiniteHint);
      return node.real;
    case YamlKind::kString:
      return node.text;
    case YamlKind::kList: {
      json out = json::array();
      const size_t length = path.size();
      for (size_t i = 0; i < node.items.size(); ++i) {
        AppendSegment(path, std::to_string(i));
        out.push_back(FreeFormAt(node.items[i], path));
        path.resize(length);
      }
      return out;
    }
    case YamlKind::kMap: {
      json out = json::object();
      const size_t length = path.size();
      for (const YamlEntry& entry : node.entries) {
        AppendSegment(path, entry.key);
        Charge(0, 0, entry.key.size(), entry.key_position, path);
        out[entry.key] = FreeFormAt(entry.value, path);
        path.resize(length);
      }
      return out;
    }
  }
  return nullptr;
}

void Validator::UnknownKey(const SchemaNode& schema, const YamlEntry& entry, const std::string& path) {
  std::string suggestion;
  size_t closest_distance = 3;  // suggest only near misses
  for (const auto& [name, child] : schema.children) {
    // The distance is at least the difference in length: a long key is never
    // a near miss, and comparing it would cost its length times the name's.
    const size_t longer = std::max(entry.key.size(), name.size()), shorter = std::min(entry.key.size(), name.size());
    if (longer - shorter >= closest_distance) continue;
    const size_t distance = EditDistance(entry.key, name);
    if (distance < closest_distance) suggestion = "; did you mean \"" + name + "\"?", closest_distance = distance;
  }
  if (strict_) {
    Fail(entry.key_position, path, "unknown key (not in the schema; " + strict_reason_ + ")" + suggestion);
  }
  if (warnings_ != nullptr) {
    warnings_->push_back(ConfigError{Reason::kValidate, document_.FileOf(entry.key_position, file_),
                                     entry.key_position.line, entry.key_position.column, path,
                                     "unknown key (not in the schema), kept and published as-is" + suggestion}
                             .ToString());
  }
}

json Validator::Map(const SchemaNode& schema, const YamlNode* node, const std::string& path, SourcePosition where) {
  json out = json::object();
  if (node != nullptr) {
    for (const YamlEntry& entry : node->entries) {
      const std::string child_path = JoinPath(path, entry.key);
      const YamlNode& value = document_.node(entry.value);
      // An empty or null value has no useful position of its own (yaml-cpp
      // points at the next token); its key's is the one a user looks for.
      const SourcePosition value_position =
          value.kind == YamlKind::kNull && value.text.empty() ? entry.key_position : value.position;
      Charge(0, 0, entry.key.size(), entry.key_position, child_path);
      if (const SchemaNode* child = schema.Match(entry.key)) {
        out[entry.key] = Value(child, entry.value, child_path, value_position);
        continue;
      }
      if (!schema.open) UnknownKey(schema, entry, child_path);
      out[entry.key] = FreeForm(entry.value, child_path);
    }
  }
  for (const auto& [name, child] : schema.children) {
    if (out.contains(name)) continue;
    const std::string child_path = JoinPath(path, name);
    if (child->required) {
      Fail(where, child_path,
           "required field is missing (expected " + Expectation(*child) + ")" +
               (node == nullptr ? "" : " in the map that starts here"));
    }
    if (child->default_value) {
      Charge(0, 0, name.size(), where, child_path);
      ChargeDefault(*child->default_value, child_path, where);
      out[name] = *child->default_value;
    } else if (child->materialize) {
      Charge(0, 0, name.size(), where, child_path);
      out[name] = MissingMap(*child, child_path, where);
    }
  }
  if (schema.non_empty && out.empty()) Fail(where, path, "expected " + Expectation(schema) + ", got an empty map");
  return out;
}

json Validator::MissingMap(const SchemaNode& schema, const std::string& path, SourcePosition where) {
  Charge(1, path.size(), 0, where, path);
  return Map(schema, nullptr, path, where);
}

json Validator::Value(const SchemaNode* schema, YamlNodeId id, const std::string& path, SourcePosition where) {
  if (schema == nullptr || schema->type == FieldType::kAny) return FreeForm(id, path);
  const YamlNode& node = document_.node(id);
  Charge(1, path.size(), node.kind == YamlKind::kString ? node.text.size() : 0, where, path);
  const auto mismatch = [&](const std::string& hint = "") {
    Fail(where, path,
         "expected " + Expectation(*schema) + ", got " + (schema->secret ? DescribeSecret(node) : DescribeValue(node)) +
             hint);
  };
  if (node.kind == YamlKind::kNull) {
    if (schema->nullable) return nullptr;
    mismatch(schema->type == FieldType::kMap    ? " (write {} for an empty map)"
             : schema->type == FieldType::kList ? " (write [] for an empty list)"
                                                : "");
  }
  switch (schema->type) {
    case FieldType::kBool:
      if (node.kind != YamlKind::kBool) {
        mismatch(node.kind == YamlKind::kString && !node.text.empty() ? " (YAML 1.2 booleans are true and false)"
                                                                      : "");
      }
      return node.boolean;

    case FieldType::kInt: {
      if (node.kind != YamlKind::kInt) mismatch();
      const int64_t value = node.integer;
      if ((schema->min_int && value < *schema->min_int) || (schema->max_int && value > *schema->max_int)) mismatch();
      if (!schema->enum_values.empty() &&
          std::none_of(schema->enum_values.begin(), schema->enum_values.end(),
                       [&](const json& allowed) { return allowed.get<int64_t>() == value; })) {
        mismatch();
      }
      return value;
    }

    case FieldType::kFloat: {
      // An int in YAML is taken as a float; a bool is not a number.
      if (node.kind != YamlKind::kInt && node.kind != YamlKind::kFloat) mismatch();
      const double value = node.kind == YamlKind::kInt ? static_cast<double>(node.integer) : node.real;
      if (!std::isfinite(value)) mismatch(kNonFiniteHint);
      if ((schema->min_real && value < *schema->min_real) || (schema->max_real && value > *schema->max_real)) {
        mismatch();
      }
      if (!schema->enum_values.empty() &&
          std::none_of(schema->enum_values.begin(), schema->enum_values.end(),
                       [&](const json& allowed) { return allowed.get<double>() == value; })) {
        mismatch();
      }
      return value;
    }

    case FieldType::kString: {
      if (node.kind != YamlKind::kString) {
        const bool scalar = node.kind != YamlKind::kList && node.kind != YamlKind::kMap;
        mismatch(scalar ? " (quote it to make it a string)" : "");
      }
      std::string value = node.text;
      if (schema->non_empty && IsBlank(value)) mismatch();
      if (schema->url && !IsHttpUrl(value)) mismatch();
      if (!schema->enum_values.empty()) {
        const auto allowed = std::find_if(
            schema->enum_values.begin(), schema->enum_values.end(), [&](const json& candidate) {
              const auto& text = candidate.get_ref<const std::string&>();
              return schema->case_insensitive ? EqualsIgnoringCase(text, value) : text == value;
            });
        if (allowed == schema->enum_values.end()) mismatch();
      }
      if (schema->normalize == CaseNormalize::kUpper) {
        std::transform(value.begin(), value.end(), value.begin(), AsciiUpper);
      } else if (schema->normalize == CaseNormalize::kLower) {
        std::transform(value.begin(), value.end(), value.begin(), AsciiLower);
      }
      return value;
    }

    case FieldType::kMap:
      if (node.kind != YamlKind::kMap) mismatch();
      return Map(*schema, &node, path, where);

    case FieldType::kList: {
      if (node.kind != YamlKind::kList) mismatch();
      if (schema->non_empty && node.items.empty()) mismatch();
      json out = json::array();
      for (size_t i = 0; i < node.items.size(); ++i) {
        const YamlNodeId item = node.items[i];
        out.push_back(Value(schema->wildcard.get(), item, JoinPath(path, std::to_string(i)),
                            document_.node(item).position));
      }
      return out;
    }

    case FieldType::kAny:
      break;
  }
  return FreeForm(id, path);
}

// ---- ambiguous dotted paths ---------------------------------------------------

namespace {

// Distinct nodes can only share a dotted path when some key is empty or
// contains a dot; most configs have none, and skip the path table entirely.
bool HasAmbiguousKeyShape(const json& value) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      if (key.empty() || key.find('.') != std::string::npos || HasAmbiguousKeyShape(child)) return true;
    }
  } else if (value.is_array()) {
    for (const json& child : value) {
      if (HasAmbiguousKeyShape(child)) return true;
    }
  }
  return false;
}

struct PathOrigin {
  SourcePosition position;
  bool from_file;  // false: added by the schema as a default
};

// In merge order: a later source comes after every position of an earlier one.
bool Before(SourcePosition a, SourcePosition b) {
  if (a.source != b.source) return a.source < b.source;
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

std::string Where(SourcePosition position) {
  return "line " + std::to_string(position.line) + ", column " + std::to_string(position.column);
}

class PathTable {
 public:
  PathTable(const YamlDocument& document, const std::string& file) : document_(document), file_(file) {}

  std::optional<ConfigError> Walk(const json& value, const YamlNode* source, PathOrigin origin,
                                  const std::string& path) {
    if (auto error = Record(path, origin)) return error;
    if (value.is_object()) {
      std::unordered_map<std::string_view, const YamlEntry*> entries;
      if (source != nullptr && source->kind == YamlKind::kMap) {
        for (const YamlEntry& entry : source->entries) entries.emplace(entry.key, &entry);
      }
      for (const auto& [key, child] : value.items()) {
        const auto found = entries.find(key);
        const YamlEntry* entry = found == entries.end() ? nullptr : found->second;
        const PathOrigin child_origin =
            entry != nullptr ? PathOrigin{entry->key_position, origin.from_file} : PathOrigin{origin.position, false};
        if (auto error = Walk(child, entry != nullptr ? &document_.node(entry->value) : nullptr, child_origin,
                              JoinPath(path, key))) {
          return error;
        }
      }
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        const YamlNode* item = source != nullptr && source->kind == YamlKind::kList && i < source->items.size()
                                   ? &document_.node(source->items[i])
                                   : nullptr;
        const PathOrigin item_origin = item != nullptr ? PathOrigin{item->position, origin.from_file}
                                                       : PathOrigin{origin.position, false};
        if (auto error = Walk(value[i], item, item_origin, JoinPath(path, std::to_string(i)))) return error;
      }
    }
    return std::nullopt;
  }

 private:
  std::optional<ConfigError> Record(const std::string& path, PathOrigin origin) {
    const auto [existing, inserted] = seen_.emplace(path, origin);
    if (inserted) return std::nullopt;
    PathOrigin first = existing->second, second = origin;
    // Report at a position in the file, the later one when both are.
    if (!second.from_file || (first.from_file && Before(second.position, first.position))) std::swap(first, second);
    std::string message = "the dotted path \"" + path + "\" is ambiguous: ";
    if (path.empty()) {
      message += "an empty top-level key has the same path as the whole document; rename the key";
    } else if (first.from_file) {
      // Across sources, the other node's file too.
      const bool elsewhere = first.position.source != second.position.source;
      message += "this node and the node at " + (elsewhere ? document_.FileOf(first.position, file_) + " " : "") +
                 Where(first.position) +
                 " have the same dotted path; rename one of the keys";
    } else {
      message += "this key names the same path as a default the schema adds; rename the key";
    }
    return ConfigError{Reason::kValidate, document_.FileOf(second.position, file_), second.position.line,
                       second.position.column, path, message};
  }

  const YamlDocument& document_;
  const std::string& file_;
  std::unordered_map<std::string, PathOrigin> seen_;
};

}  // namespace

std::optional<ConfigError> FindAmbiguousPath(const json& config, const YamlDocument& document,
                                             const std::string& file) {
  if (!HasAmbiguousKeyShape(config)) return std::nullopt;
  PathTable table(document, file);
  const YamlNode& root = document.root_node();
  return table.Walk(config, &root, PathOrigin{root.position, true}, "");
}

}  // namespace confcast::publisher::schema_detail

namespace confcast::publisher {

namespace {

void CollectSecretPaths(const schema_detail::SchemaNode* schema, const nlohmann::json& value, const std::string& path,
                        bool set_only, std::vector<std::string>* out) {
  if (schema == nullptr) return;
  if (schema->secret) {
    if (!set_only || !value.is_null()) out->push_back(path);
    return;
  }
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      CollectSecretPaths(schema->Match(key), child, JoinPath(path, key), set_only, out);
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      CollectSecretPaths(schema->wildcard.get(), value[i], JoinPath(path, std::to_string(i)), set_only, out);
    }
  }
}

}  // namespace

std::vector<std::string> SecretPaths(const Schema& schema, const nlohmann::json& config) {
  std::vector<std::string> paths;
  CollectSecretPaths(&schema.root(), config, "", false, &paths);
  return paths;
}

std::vector<std::string> SetSecretPaths(const Schema& schema, const nlohmann::json& config) {
  std::vector<std::string> paths;
  CollectSecretPaths(&schema.root(), config, "", true, &paths);
  return paths;
}

std::variant<ValidatedConfig, ConfigError> ParseAndValidate(std::string_view bytes, const std::string& file,
                                                            const Schema& schema, bool strict) {
  return ParseAndValidate(bytes, file, schema, strict, layout::kMaxSlotCapacity);
}

std::variant<ValidatedConfig, ConfigError> ParseAndValidate(std::string_view bytes, const std::string& file,
                                                            const Schema& schema, bool strict, uint64_t capacity) {
  YamlLimits limits;
  limits.max_snapshot_bytes = capacity;
  limits.max_path_bytes = snapshot::kMaxPathBytes;
  auto parsed = ParseYamlDocument(bytes, file, limits);
  if (auto* error = std::get_if<ConfigError>(&parsed)) return std::move(*error);
  return schema_detail::ValidateDocument(std::get<YamlDocument>(parsed), file, schema, strict, capacity);
}

std::variant<ValidatedConfig, ConfigError> schema_detail::ValidateDocument(const YamlDocument& document,
                                                                           const std::string& file,
                                                                           const Schema& schema, bool strict,
                                                                           uint64_t capacity) {
  ValidatedConfig result;
  try {
    schema_detail::Validator validator(document, file, strict, &result.warnings);
    validator.LimitSnapshotTo(capacity);
    result.config = validator.Value(&schema.root(), document.root, "", document.root_node().position);
  } catch (const schema_detail::ValidationFailure& failure) {
    return failure.error;
  }
  if (auto error = schema_detail::FindAmbiguousPath(result.config, document, file)) return std::move(*error);
  return result;
}

}  // namespace confcast::publisher
