#include "schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_map>

#include "config_file.hpp"
#include "config_yaml.hpp"
#include "schema_node.hpp"
#include "schema_validate.hpp"

namespace confcast::publisher {

using schema_detail::CaseNormalize;
using schema_detail::FieldType;
using schema_detail::SchemaNode;

namespace schema_detail {

const char* FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kString:
      return "string";
    case FieldType::kInt:
      return "int";
    case FieldType::kFloat:
      return "float";
    case FieldType::kBool:
      return "bool";
    case FieldType::kMap:
      return "map";
    case FieldType::kList:
      return "list";
    case FieldType::kAny:
      return "any";
  }
  return "?";
}

}  // namespace schema_detail

namespace {

constexpr const char* kBuiltInSource = "<built-in HolmesGPT schema>";

const char* const kFieldAttributes[] = {"path",     "type",   "description", "nullable",         "default",
                                        "required", "min",    "max",         "enum",             "case_insensitive",
                                        "normalize", "format", "non_empty",  "open",     "secret"};

struct SchemaFailure {
  ConfigError error;
};

std::optional<FieldType> ParseFieldType(const std::string& name) {
  for (FieldType type : {FieldType::kString, FieldType::kInt, FieldType::kFloat, FieldType::kBool, FieldType::kMap,
                         FieldType::kList, FieldType::kAny}) {
    if (name == schema_detail::FieldTypeName(type)) return type;
  }
  return std::nullopt;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    segments.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return segments;
}

bool IsContainer(FieldType type) { return type == FieldType::kMap || type == FieldType::kList; }

// Builds a SchemaNode tree from a parsed schema file, checking every entry.
class SchemaBuilder {
 public:
  SchemaBuilder(const YamlDocument& document, const std::string& file) : document_(document), file_(file) {}

  std::shared_ptr<SchemaNode> Build() {
    auto root = std::make_shared<SchemaNode>();
    const YamlNode* fields = nullptr;
    for (const YamlEntry& entry : document_.root_node().entries) {
      if (entry.key == "fields") {
        fields = &document_.node(entry.value);
        if (fields->kind != YamlKind::kList) {
          Fail(fields->position, "fields", "expected a list of fields, got " + DescribeValue(*fields));
        }
      } else if (entry.key == "description") {
        ExpectKind(entry, "description", YamlKind::kString, "a string");
      } else {
        Fail(entry.key_position, entry.key,
             "unknown key in a schema file; the top level holds \"fields\" (a list) and optionally \"description\"");
      }
    }
    if (fields == nullptr) {
      Fail(document_.root_node().position, "fields", "a schema file needs a \"fields\" list");
    }
    for (size_t i = 0; i < fields->items.size(); ++i) AddField(*root, fields->items[i], "fields." + std::to_string(i));
    Finish(*root);
    MarkSecretBelow(*root, false);
    return root;
  }

 private:
  // Everything inside a secret map or list is secret too, so that its
  // fields' error messages quote nothing either.
  static void MarkSecretBelow(SchemaNode& node, bool inherited) {
    node.secret = node.secret || inherited;
    for (auto& [name, child] : node.children) MarkSecretBelow(*child, node.secret);
    if (node.wildcard) MarkSecretBelow(*node.wildcard, node.secret);
  }

  [[noreturn]] void Fail(SourcePosition where, const std::string& path, std::string message) const {
    throw SchemaFailure{ConfigError{Reason::kValidate, file_, where.line, where.column, path, std::move(message)}};
  }

  const YamlNode& ExpectKind(const YamlEntry& entry, const std::string& path, YamlKind kind, const char* expected) {
    const YamlNode& value = document_.node(entry.value);
    if (value.kind != kind) {
      Fail(value.kind == YamlKind::kNull && value.text.empty() ? entry.key_position : value.position, path,
           std::string("expected ") + expected + ", got " + DescribeValue(value));
    }
    return value;
  }

  void AddField(SchemaNode& root, YamlNodeId id, const std::string& entry_path) {
    const YamlNode& entry_node = document_.node(id);
    if (entry_node.kind != YamlKind::kMap) {
      Fail(entry_node.position, entry_path,
           "expected a field (a map with at least \"path\" and \"type\"), got " + DescribeValue(entry_node));
    }
    std::unordered_map<std::string, const YamlEntry*> attributes;
    for (const YamlEntry& entry : entry_node.entries) {
      if (std::find(std::begin(kFieldAttributes), std::end(kFieldAttributes), entry.key) ==
          std::end(kFieldAttributes)) {
        std::string known;
        for (const char* name : kFieldAttributes) known += std::string(known.empty() ? "" : ", ") + name;
        Fail(entry.key_position, JoinPath(entry_path, entry.key), "unknown field attribute; expected one of " + known);
      }
      attributes.emplace(entry.key, &entry);
    }
    const auto attribute = [&](const char* name) -> const YamlEntry* {
      const auto found = attributes.find(name);
      return found == attributes.end() ? nullptr : found->second;
    };
    const auto attribute_path = [&](const char* name) { return JoinPath(entry_path, name); };
    const auto flag = [&](const char* name) {
      const YamlEntry* entry = attribute(name);
      return entry != nullptr && ExpectKind(*entry, attribute_path(name), YamlKind::kBool, "true or false").boolean;
    };

    // path and type first: everything else is checked against them.
    const YamlEntry* path_entry = attribute("path");
    if (path_entry == nullptr) Fail(entry_node.position, attribute_path("path"), "a field needs a \"path\"");
    const YamlNode& path_node = ExpectKind(*path_entry, attribute_path("path"), YamlKind::kString, "a dotted path");
    const std::vector<std::string> segments = SplitPath(path_node.text);
    for (const std::string& segment : segments) {
      if (segment.empty()) {
        Fail(path_node.position, attribute_path("path"),
             "\"" + path_node.text + "\" is not a dotted path (empty segment; use names separated by single dots)");
      }
    }
    const YamlEntry* type_entry = attribute("type");
    if (type_entry == nullptr) Fail(entry_node.position, attribute_path("type"), "a field needs a \"type\"");
    const YamlNode& type_node = ExpectKind(*type_entry, attribute_path("type"), YamlKind::kString, "a type name");
    const auto type = ParseFieldType(type_node.text);
    if (!type) {
      Fail(type_node.position, attribute_path("type"),
           "unknown type \"" + type_node.text + "\"; expected one of string, int, float, bool, map, list, any");
    }

    SchemaNode& node = Insert(root, segments, path_node, *type, type_node.position, entry_path);
    node.declared = true;
    node.declared_at = path_node.position;
    node.type = *type;
    node.nullable = flag("nullable");
    node.required = flag("required");
    node.non_empty = flag("non_empty");
    node.open = flag("open");
    node.case_insensitive = flag("case_insensitive");
    node.secret = flag("secret");

    const auto only_for = [&](const char* name, std::initializer_list<FieldType> allowed) {
      const YamlEntry* entry = attribute(name);
      if (entry == nullptr) return;
      if (std::find(allowed.begin(), allowed.end(), *type) == allowed.end()) {
        std::string types;
        for (FieldType t : allowed) types += std::string(types.empty() ? "" : ", ") + schema_detail::FieldTypeName(t);
        Fail(entry->key_position, attribute_path(name),
             std::string("\"") + name + "\" applies to fields of type " + types + ", not " + type_node.text);
      }
    };
    only_for("open", {FieldType::kMap});
    only_for("non_empty", {FieldType::kString, FieldType::kMap, FieldType::kList});
    only_for("min", {FieldType::kInt, FieldType::kFloat});
    only_for("max", {FieldType::kInt, FieldType::kFloat});
    only_for("enum", {FieldType::kString, FieldType::kInt, FieldType::kFloat});
    only_for("case_insensitive", {FieldType::kString});
    only_for("normalize", {FieldType::kString});
    only_for("format", {FieldType::kString});

    if (const YamlEntry* entry = attribute("description")) {
      ExpectKind(*entry, attribute_path("description"), YamlKind::kString, "a string");
    }
    if (const YamlEntry* entry = attribute("format")) {
      const YamlNode& format = ExpectKind(*entry, attribute_path("format"), YamlKind::kString, "a format name");
      if (format.text != "url") {
        Fail(format.position, attribute_path("format"), "unknown format \"" + format.text + "\"; expected url");
      }
      node.url = true;
    }
    if (const YamlEntry* entry = attribute("normalize")) {
      const YamlNode& normalize = ExpectKind(*entry, attribute_path("normalize"), YamlKind::kString, "upper or lower");
      if (normalize.text == "upper") {
        node.normalize = CaseNormalize::kUpper;
      } else if (normalize.text == "lower") {
        node.normalize = CaseNormalize::kLower;
      } else {
        Fail(normalize.position, attribute_path("normalize"),
             "expected upper or lower, got " + DescribeValue(normalize));
      }
    }
    ReadBounds(node, attribute("min"), attribute("max"), entry_path);
    if (const YamlEntry* entry = attribute("enum")) ReadEnum(node, *entry, attribute_path("enum"));
    if (node.required) {
      if (const YamlEntry* entry = attribute("default")) {
        Fail(entry->key_position, attribute_path("default"),
             "a required field has no default (it must be written in the file); drop one of the two");
      }
    }
    if (const YamlEntry* entry = attribute("default")) pending_defaults_.emplace_back(&node, entry);
  }

  // Walks (creating implied maps) to the node a path names, and checks that
  // the path fits what is already declared around it.
  SchemaNode& Insert(SchemaNode& root, const std::vector<std::string>& segments, const YamlNode& path_node,
                     FieldType type, SourcePosition type_position, const std::string& entry_path) {
    SchemaNode* node = &root;
    std::string path;
    for (const std::string& segment : segments) {
      if (node->declared && !IsContainer(node->type)) {
        Fail(path_node.position, JoinPath(entry_path, "path"),
             "\"" + node->path + "\" is declared as " + schema_detail::FieldTypeName(node->type) +
                 ", so no field can be below it");
      }
      if (node->declared && node->type == FieldType::kList && segment != "*") {
        Fail(path_node.position, JoinPath(entry_path, "path"),
             "\"" + node->path + "\" is a list; its elements are addressed with *, as in \"" + node->path + ".*\"");
      }
      path = JoinPath(path, segment);
      std::unique_ptr<SchemaNode>* slot = nullptr;
      if (segment == "*") {
        slot = &node->wildcard;
      } else {
        for (auto& [name, child] : node->children) {
          if (name == segment) slot = &child;
        }
        if (slot == nullptr) slot = &node->children.emplace_back(segment, nullptr).second;
      }
      if (*slot == nullptr) {
        *slot = std::make_unique<SchemaNode>();
        (*slot)->path = path;
      }
      node = slot->get();
    }
    if (node->declared) {
      Fail(path_node.position, JoinPath(entry_path, "path"),
           "\"" + path + "\" is declared twice (first at line " + std::to_string(node->declared_at.line) + ")");
    }
    const bool has_fields_below = !node->children.empty() || node->wildcard != nullptr;
    if (has_fields_below && !IsContainer(type)) {
      Fail(type_position, JoinPath(entry_path, "type"),
           "\"" + path + "\" has fields below it, so its type must be map or list, not " +
               schema_detail::FieldTypeName(type));
    }
    if (type == FieldType::kList && !node->children.empty()) {
      Fail(type_position, JoinPath(entry_path, "type"),
           "\"" + path + "\" has named fields below it, so it cannot be a list (list elements are addressed with *)");
    }
    return *node;
  }

  void ReadBounds(SchemaNode& node, const YamlEntry* min, const YamlEntry* max, const std::string& entry_path) {
    for (const YamlEntry* entry : {min, max}) {
      if (entry == nullptr) continue;
      const bool is_min = entry == min;
      const std::string path = JoinPath(entry_path, is_min ? "min" : "max");
      const YamlNode& value = document_.node(entry->value);
      if (node.type == FieldType::kInt) {
        if (value.kind != YamlKind::kInt) Fail(value.position, path, "expected an integer, got " + DescribeValue(value));
        (is_min ? node.min_int : node.max_int) = value.integer;
      } else {
        if (value.kind != YamlKind::kInt && value.kind != YamlKind::kFloat) {
          Fail(value.position, path, "expected a number, got " + DescribeValue(value));
        }
        const double bound = value.kind == YamlKind::kInt ? static_cast<double>(value.integer) : value.real;
        if (std::isnan(bound)) Fail(value.position, path, "a bound cannot be .nan");
        (is_min ? node.min_real : node.max_real) = bound;
      }
    }
    const bool inverted = (node.min_int && node.max_int && *node.min_int > *node.max_int) ||
                          (node.min_real && node.max_real && *node.min_real > *node.max_real);
    if (inverted) {
      Fail(document_.node(max->value).position, JoinPath(entry_path, "max"), "max is below min");
    }
  }

  void ReadEnum(SchemaNode& node, const YamlEntry& entry, const std::string& path) {
    const YamlNode& list = ExpectKind(entry, path, YamlKind::kList, "a list of allowed values");
    if (list.items.empty()) Fail(list.position, path, "an enum needs at least one value");
    for (size_t i = 0; i < list.items.size(); ++i) {
      const YamlNode& value = document_.node(list.items[i]);
      const std::string value_path = JoinPath(path, std::to_string(i));
      switch (node.type) {
        case FieldType::kString:
          if (value.kind != YamlKind::kString) {
            Fail(value.position, value_path, "expected a string (the field is a string), got " + DescribeValue(value));
          }
          node.enum_values.emplace_back(value.text);
          break;
        case FieldType::kInt:
          if (value.kind != YamlKind::kInt) {
            Fail(value.position, value_path, "expected an integer (the field is an int), got " + DescribeValue(value));
          }
          node.enum_values.emplace_back(value.integer);
          break;
        default:  // float
          if (value.kind != YamlKind::kInt && value.kind != YamlKind::kFloat) {
            Fail(value.position, value_path, "expected a number (the field is a float), got " + DescribeValue(value));
          }
          node.enum_values.emplace_back(value.kind == YamlKind::kInt ? static_cast<double>(value.integer)
                                                                     : value.real);
          break;
      }
    }
  }

  // Children before parents: a map's default is checked with its children's
  // defaults already known, so they fill it in.
  void Finish(SchemaNode& node) {
    for (auto& [name, child] : node.children) Finish(*child);
    if (node.wildcard != nullptr) Finish(*node.wildcard);
    for (const auto& [pending, entry] : pending_defaults_) {
      if (pending != &node) continue;
      schema_detail::Validator validator(document_, file_, /*strict=*/true, nullptr,
                                         "a default holds only the fields declared below it");
      const YamlNode& value = document_.node(entry->value);
      try {
        node.default_value =
            validator.Value(&node, entry->value, node.path,
                            value.kind == YamlKind::kNull && value.text.empty() ? entry->key_position : value.position);
      } catch (const schema_detail::ValidationFailure& failure) {
        ConfigError error = failure.error;
        error.message = "the default does not fit the field: " + error.message;
        throw SchemaFailure{error};
      }
    }
    if (node.type == FieldType::kMap && !node.default_value) {
      for (const auto& [name, child] : node.children) {
        if (child->required || child->default_value || child->materialize) node.materialize = true;
      }
    }
  }

  const YamlDocument& document_;
  const std::string& file_;
  std::vector<std::pair<SchemaNode*, const YamlEntry*>> pending_defaults_;
};

}  // namespace

Schema::Schema() : Schema(HolmesGpt()) {}

Schema::Schema(std::shared_ptr<const SchemaNode> root, std::string source)
    : root_(std::move(root)), source_(std::move(source)) {}

std::variant<Schema, ConfigError> Schema::FromYaml(std::string_view text, const std::string& file) {
  auto parsed = ParseYamlDocument(text, file);
  if (auto* error = std::get_if<ConfigError>(&parsed)) return std::move(*error);
  try {
    SchemaBuilder builder(std::get<YamlDocument>(parsed), file);
    return Schema(builder.Build(), file);
  } catch (const SchemaFailure& failure) {
    return failure.error;
  }
}

std::variant<Schema, ConfigError> Schema::FromFile(const std::string& path) {
  auto read = ReadConfigFile(path, kMaxFileBytes);
  if (auto* error = std::get_if<ConfigError>(&read)) return std::move(*error);
  return FromYaml(std::get<FileBytes>(read).bytes, path);
}

Schema Schema::HolmesGpt() {
  static const Schema built_in = [] {
    auto loaded = FromYaml(HolmesGptSchemaYaml(), kBuiltInSource);
    if (auto* error = std::get_if<ConfigError>(&loaded)) {
      // The embedded text is part of the program; a test loads it on every build.
      std::fprintf(stderr, "confcast: the built-in schema is invalid: %s\n", error->ToString().c_str());
      std::abort();
    }
    return std::get<Schema>(std::move(loaded));
  }();
  return built_in;
}

}  // namespace confcast::publisher
