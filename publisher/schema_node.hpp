// schema_node.hpp - the in-memory form of a schema (built-in or --schema
// FILE): a tree of fields keyed by path segment, shared by the schema loader
// (schema.cc) and the validator (schema_validate.cc). Internal to the
// publisher; users go through schema.hpp.
//
// Threading: built once by the loader, then immutable and shared read-only
// (Schema holds it by shared_ptr<const>), so any number of threads may
// validate against it at once.
#ifndef CONFCAST_PUBLISHER_SCHEMA_NODE_HPP_
#define CONFCAST_PUBLISHER_SCHEMA_NODE_HPP_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config_text.hpp"

namespace confcast::publisher::schema_detail {

enum class FieldType { kString, kInt, kFloat, kBool, kMap, kList, kAny };
enum class CaseNormalize { kNone, kUpper, kLower };

const char* FieldTypeName(FieldType type);

struct SchemaNode {
  std::string path;            // dotted, with '*' segments; "" for the root
  bool declared = false;       // has its own entry; otherwise implied by a field below it (then a map)
  SourcePosition declared_at;  // of the entry's `path` in the schema file
  FieldType type = FieldType::kMap;
  bool nullable = false;
  bool required = false;
  bool non_empty = false;         // strings: not empty or blank; maps, lists: at least one entry
  bool open = false;              // maps: unknown keys below are free-form, not warned about
  bool case_insensitive = false;  // string enum
  bool url = false;               // strings: format: url
  bool secret = false;            // its value (all of it, for a map or list) never appears in output
  CaseNormalize normalize = CaseNormalize::kNone;
  std::optional<int64_t> min_int, max_int;  // int fields
  std::optional<double> min_real, max_real;  // float fields
  std::vector<nlohmann::json> enum_values;   // of the field's type; empty = no enum
  std::optional<nlohmann::json> default_value;  // already validated against this node
  // When the key is missing and there is no default: build it as an empty map,
  // because something below it has a default or is required.
  bool materialize = false;
  std::vector<std::pair<std::string, std::unique_ptr<SchemaNode>>> children;  // declaration order
  std::unique_ptr<SchemaNode> wildcard;                                      // the '*' child

  const SchemaNode* Child(const std::string& key) const {
    for (const auto& [name, node] : children) {
      if (name == key) return node.get();
    }
    return nullptr;
  }
  // The schema for a key or list element: a named child first, else '*'.
  const SchemaNode* Match(const std::string& key) const {
    const SchemaNode* named = Child(key);
    return named != nullptr ? named : wildcard.get();
  }
};

}  // namespace confcast::publisher::schema_detail

#endif  // CONFCAST_PUBLISHER_SCHEMA_NODE_HPP_
