// config_yaml.hpp - turns the bytes of one YAML file into a tree of typed
// values that remembers where every value and key came from, or a
// ConfigError saying what is wrong and where.
//
// yaml-cpp does the YAML syntax; this layer adds what a config publisher must
// enforce and yaml-cpp does not: exactly one document whose top level is a
// map, no duplicate keys, scalar keys only and no NUL in a key (no C caller
// could ask for its path), every quoted string closed (yaml-cpp lets one run
// to the end of the file), bounded nesting, bounded alias
// expansion (aliases are kept as shared nodes, so the tree is a DAG, but its
// expanded size and depth are checked while parsing, before anything walks
// it; so are the dotted-path bytes the expanded tree would need), text checks (BOM, UTF-8, NUL), and YAML 1.2 core-schema typing of
// plain scalars (so "yes" is a string and 0x1F an int).
//
// Threading: no shared state; a YamlDocument is immutable once returned.
#ifndef CONFCAST_PUBLISHER_CONFIG_YAML_HPP_
#define CONFCAST_PUBLISHER_CONFIG_YAML_HPP_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config_error.hpp"
#include "config_text.hpp"

namespace confcast::publisher {

enum class YamlKind { kNull, kBool, kInt, kFloat, kString, kList, kMap };

using YamlNodeId = uint32_t;

struct YamlEntry {
  std::string key;
  SourcePosition key_position;
  YamlNodeId value;
};

struct YamlNode {
  YamlKind kind = YamlKind::kNull;
  SourcePosition position;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  // kString: the value. Other scalars: the source spelling ("0x1F", "~", ""
  // for an empty value), for messages.
  std::string text;
  std::vector<YamlNodeId> items;    // kList, in order
  std::vector<YamlEntry> entries;   // kMap, in file order, keys unique
};

// What a document (with the documents parsed before it, when several sources
// are merged) has used of the limits below, after alias expansion.
struct YamlUsage {
  uint64_t nodes = 0;
  uint64_t expanded_bytes = 0;
  uint64_t snapshot_nodes = 0;
  uint64_t snapshot_path_bytes = 0;
  uint64_t snapshot_text_bytes = 0;
};

struct YamlLimits {
  int max_depth = 64;                        // nested lists/maps, the top-level map being 1
  uint64_t max_nodes = 1'000'000;            // values after alias expansion
  uint64_t max_expanded_bytes = 64ull << 20;  // key and scalar text after alias expansion
  // For a config that becomes a snapshot (0 = unchecked, as for a schema
  // file). Every node's dotted path is stored in the snapshot, so long keys
  // above many leaves (or under an alias used many times) multiply: these are
  // counted after alias expansion while parsing, and the file is refused at
  // the first node past them, before anything expands the tree.
  // max_snapshot_bytes: the capacity; the values, keys, string values and
  // dotted paths so far must fit it (snapshot::MinimumSnapshotBytes), else
  // Reason::kTooLarge. max_path_bytes: no dotted path may be longer, else
  // Reason::kValidate.
  uint64_t max_snapshot_bytes = 0;
  uint64_t max_path_bytes = 0;
  // Counted as already used: the limits apply to several sources together.
  YamlUsage used_before;
};

struct YamlDocument {
  std::vector<YamlNode> nodes;  // a node referenced by several aliases appears once
  YamlNodeId root = 0;          // always a kMap
  // Empty for a document parsed from one file; for a merged document, the
  // file each SourcePosition::source indexes.
  std::vector<std::string> sources;
  YamlUsage usage;              // the limits used, YamlLimits::used_before included
  const YamlNode& node(YamlNodeId id) const { return nodes[id]; }
  const YamlNode& root_node() const { return nodes[root]; }
  // The file a position of this document is in; `file` for a one-file document.
  const std::string& FileOf(SourcePosition position, const std::string& file) const {
    return position.source < sources.size() ? sources[position.source] : file;
  }
};

// Every error is Reason::kParse, with the 1-based position of the offending
// byte or node (0/0 only for an empty file) and, when inside the document,
// the dotted path of the node; except the two snapshot limits of YamlLimits:
// a path too long (kValidate, at the node) and a snapshot past the capacity
// (kTooLarge; its position and path are in the message, which starts like the
// publisher's other too-large messages, snapshot::NeedsMoreThan).
std::variant<YamlDocument, ConfigError> ParseYamlDocument(std::string_view bytes, const std::string& file,
                                                          const YamlLimits& limits = {});

// "a map", "a list", "null", "true", "42", "1e3", "\"abc\"" (strings quoted, long ones cut):
// how a message names a value it got.
std::string DescribeValue(const YamlNode& node);

// The dotted path of a child: "" + "llm" = "llm", "llm" + "model" = "llm.model".
std::string JoinPath(const std::string& parent, const std::string& key);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_YAML_HPP_
