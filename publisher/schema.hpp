// schema.hpp - what a valid config looks like, and the check of one config
// file's bytes against it.
//
// A Schema comes from the built-in HolmesGPT schema or a
// --schema FILE (format: docs/schema.md). Both go through the same loader:
// the built-in one is the text of schemas/holmesgpt.yaml, compiled in at
// build time (publisher/CMakeLists.txt), so it is that file exactly.
// ParseAndValidate turns one file's bytes into the config to publish:
// exactly one YAML map, every schema field checked (type, bounds, enum,
// format), missing fields filled with their defaults, unknown keys kept with
// a warning (an error when strict), and no two nodes with the same dotted path.
//
// Threading: a Schema is immutable and cheap to copy (it shares its tree), so
// one may be used from any number of threads; ParseAndValidate has no shared
// state.
#ifndef CONFCAST_PUBLISHER_SCHEMA_HPP_
#define CONFCAST_PUBLISHER_SCHEMA_HPP_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config_error.hpp"

namespace confcast::publisher {

namespace schema_detail {
struct SchemaNode;
}

class Schema {
 public:
  static constexpr uint64_t kMaxFileBytes = 1 << 20;

  Schema();  // the built-in HolmesGPT schema

  static Schema HolmesGpt();
  // Errors: kIo / kTooLarge reading the file, kParse for bad YAML, kValidate
  // for a schema that is YAML but not a valid schema (with its position).
  static std::variant<Schema, ConfigError> FromFile(const std::string& path);
  // `file` only names the text in messages.
  static std::variant<Schema, ConfigError> FromYaml(std::string_view text, const std::string& file);

  const std::string& source() const { return source_; }  // the file, or "<built-in HolmesGPT schema>"
  const schema_detail::SchemaNode& root() const { return *root_; }

 private:
  Schema(std::shared_ptr<const schema_detail::SchemaNode> root, std::string source);

  std::shared_ptr<const schema_detail::SchemaNode> root_;
  std::string source_;
};

// The text of schemas/holmesgpt.yaml, embedded at build time: what
// Schema::HolmesGpt() loads.
std::string_view HolmesGptSchemaYaml();

struct ValidatedConfig {
  nlohmann::json config;              // defaults applied; ints stay integers, floats floats
  std::vector<std::string> warnings;  // one line each: "FILE:LINE:COLUMN: PATH: unknown key ..."
};

// Parses exactly one YAML document and validates it. `file` is only used in
// messages. Errors: kParse (not one well-formed YAML map), kValidate, or
// kTooLarge: the snapshot of the config would not fit `capacity` (the
// segment's --capacity). Every node's dotted path goes into the snapshot, so
// a small file can need a huge one (long keys above many leaves, an alias used
// many times); the values, keys and paths are counted while parsing (aliases
// expanded) and while validating (defaults added), and the work stops at the
// first node past the capacity or with a path longer than
// snapshot::kMaxPathBytes. Time and memory thus stay within a few times the
// file's size plus the capacity, whatever the bytes. What passes may still be
// a little over the capacity: snapshot::BuildSnapshotWithin decides exactly.
std::variant<ValidatedConfig, ConfigError> ParseAndValidate(std::string_view bytes, const std::string& file,
                                                            const Schema& schema, bool strict, uint64_t capacity);
// The same with the largest capacity any segment has (layout::kMaxSlotCapacity).
std::variant<ValidatedConfig, ConfigError> ParseAndValidate(std::string_view bytes, const std::string& file,
                                                            const Schema& schema, bool strict);

// The dotted paths of `config` (validated against `schema`) whose values are
// secret: each topmost one (everything below it is secret too), for the
// snapshot to record (snapshot::BuildSnapshotWithin) and the logs to redact.
std::vector<std::string> SecretPaths(const Schema& schema, const nlohmann::json& config);
// The same, without the secrets that are null (not set): what a reader of
// the segment would learn.
std::vector<std::string> SetSecretPaths(const Schema& schema, const nlohmann::json& config);

// What a log line shows for a value: the value, or "<secret>".
inline constexpr const char* kRedacted = "<secret>";

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_SCHEMA_HPP_
