// schema_validate.hpp - walks a parsed YAML tree against a schema tree and
// builds the JSON to publish. Used by ParseAndValidate for config files and by
// the schema loader to check (and fill in) each field's default value, so a
// default obeys exactly the rules a config value does. Internal.
//
// Threading: a Validator is used by one thread for one document.
#ifndef CONFCAST_PUBLISHER_SCHEMA_VALIDATE_HPP_
#define CONFCAST_PUBLISHER_SCHEMA_VALIDATE_HPP_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config_error.hpp"
#include "config_yaml.hpp"
#include "schema.hpp"
#include "schema_node.hpp"

namespace confcast::publisher::schema_detail {

// Thrown inside the walk; the public functions turn it into a returned error.
struct ValidationFailure {
  ConfigError error;
};

class Validator {
 public:
  // warnings may be null when strict (nothing is warned about then).
  // strict_reason ends the message of an unknown key when strict.
  Validator(const YamlDocument& document, const std::string& file, bool strict, std::vector<std::string>* warnings,
            std::string strict_reason = "--strict rejects unknown keys")
      : document_(document), file_(file), strict_(strict), warnings_(warnings), strict_reason_(std::move(strict_reason)) {}

  // The capacity of the snapshot the output becomes (0 = unchecked). Every
  // value produced, schema defaults included, is counted as it is produced,
  // and the walk stops (Reason::kTooLarge) at the first one that could not
  // fit: a default under a wildcard is copied once per key the wildcard
  // matches, so the output can be much larger than the document.
  void LimitSnapshotTo(uint64_t capacity) { capacity_ = capacity; }

  // schema null = free-form. `where` is the position reported for this value.
  nlohmann::json Value(const SchemaNode* schema, YamlNodeId id, const std::string& path, SourcePosition where);
  // A map-typed field that is missing from the document: its defaults and
  // required fields as if it were written as {}.
  nlohmann::json MissingMap(const SchemaNode& schema, const std::string& path, SourcePosition where);
  // The value as JSON, unchecked but for what JSON cannot hold (.inf, .nan);
  // path names it in an error.
  nlohmann::json FreeForm(YamlNodeId id, const std::string& path);

 private:
  nlohmann::json Map(const SchemaNode& schema, const YamlNode* node, const std::string& path, SourcePosition where);
  nlohmann::json FreeFormAt(YamlNodeId id, std::string& path);
  [[noreturn]] void Fail(SourcePosition where, const std::string& path, std::string message) const;
  void UnknownKey(const SchemaNode& schema, const YamlEntry& entry, const std::string& path);
  // Counts `nodes` more values with these many path and key/string bytes.
  void Charge(uint64_t nodes, uint64_t path_bytes, uint64_t text_bytes, SourcePosition where, const std::string& path);
  // Counts a default copied in at `path`.
  void ChargeDefault(const nlohmann::json& value, const std::string& path, SourcePosition where);

  const YamlDocument& document_;
  const std::string& file_;
  bool strict_;
  std::vector<std::string>* warnings_;
  std::string strict_reason_;
  uint64_t capacity_ = 0;
  uint64_t nodes_ = 0, path_bytes_ = 0, text_bytes_ = 0;
};

// What a field accepts, for messages: "an integer from 0 to 10", "one of
// DEBUG, INFO (any case)", "a non-empty string or null".
std::string Expectation(const SchemaNode& schema);

// Two different nodes of `config` whose dotted paths are equal (a key "a.b"
// beside a: {b: ..}) would make path lookups ambiguous: the error names both
// positions. `document` supplies positions; nodes added from defaults have none.
// Validates a parsed (or merged) document against the schema and checks its
// dotted paths: the second half of ParseAndValidate. `file` names positions
// of a one-file document (see YamlDocument::FileOf).
std::variant<ValidatedConfig, ConfigError> ValidateDocument(const YamlDocument& document, const std::string& file,
                                                            const Schema& schema, bool strict, uint64_t capacity);

std::optional<ConfigError> FindAmbiguousPath(const nlohmann::json& config, const YamlDocument& document,
                                             const std::string& file);

}  // namespace confcast::publisher::schema_detail

#endif  // CONFCAST_PUBLISHER_SCHEMA_VALIDATE_HPP_
