// publisher/config_merge.cc - see config_merge.hpp.
#include "config_merge.hpp"

#include <string_view>
#include <unordered_map>
#include <utility>

namespace confcast::publisher {
namespace {

class Merger {
 public:
  explicit Merger(YamlDocument& out) : out_(out) {}

  // A new map node: `earlier` with `later` written over it.
  YamlNodeId MergeMaps(YamlNodeId earlier, YamlNodeId later) {
    YamlNode merged;
    merged.kind = YamlKind::kMap;
    merged.position = out_.nodes[later].position;  // the latest writer of the map
    // Copied: MergeMaps below appends to out_.nodes, which may move them.
    const std::vector<YamlEntry> overrides = out_.nodes[later].entries;
    // Reserved first: the index holds views of the keys, which must not move.
    merged.entries.reserve(out_.nodes[earlier].entries.size() + overrides.size());
    const std::vector<YamlEntry>& base = out_.nodes[earlier].entries;
    merged.entries.insert(merged.entries.end(), base.begin(), base.end());
    std::unordered_map<std::string_view, size_t> index;
    index.reserve(merged.entries.size());
    for (size_t i = 0; i < merged.entries.size(); ++i) index.emplace(merged.entries[i].key, i);
    std::vector<std::pair<size_t, const YamlEntry*>> to_merge;
    for (const YamlEntry& entry : overrides) {
      const auto found = index.find(entry.key);
      if (found == index.end()) {
        merged.entries.push_back(entry);
        continue;
      }
      YamlEntry& existing = merged.entries[found->second];
      if (out_.nodes[existing.value].kind == YamlKind::kMap && out_.nodes[entry.value].kind == YamlKind::kMap) {
        to_merge.emplace_back(found->second, &entry);
      } else {
        existing = entry;
      }
    }
    for (const auto& [at, entry] : to_merge) {
      const YamlNodeId child = MergeMaps(merged.entries[at].value, entry->value);
      merged.entries[at].key_position = entry->key_position;
      merged.entries[at].value = child;
    }
    out_.nodes.push_back(std::move(merged));
    return static_cast<YamlNodeId>(out_.nodes.size() - 1);
  }

 private:
  YamlDocument& out_;
};

}  // namespace

YamlDocument MergeYamlDocuments(std::vector<YamlDocument> documents, std::vector<std::string> files) {
  YamlDocument out;
  std::vector<YamlNodeId> roots;
  for (uint32_t source = 0; source < documents.size(); ++source) {
    YamlDocument& document = documents[source];
    const auto offset = static_cast<YamlNodeId>(out.nodes.size());
    for (YamlNode& node : document.nodes) {
      node.position.source = source;
      for (YamlNodeId& item : node.items) item += offset;
      for (YamlEntry& entry : node.entries) {
        entry.key_position.source = source;
        entry.value += offset;
      }
      out.nodes.push_back(std::move(node));
    }
    roots.push_back(document.root + offset);
    out.usage = document.usage;
  }
  Merger merger(out);
  out.root = roots.empty() ? 0 : roots[0];
  for (size_t i = 1; i < roots.size(); ++i) out.root = merger.MergeMaps(out.root, roots[i]);
  out.sources = std::move(files);
  return out;
}

}  // namespace confcast::publisher
