// config_merge.hpp - merges the parsed documents of several config sources
// into one, the way the publisher layers a ConfigMap's files and a Secret's:
// a later document overrides an earlier one key by key, maps merge
// recursively, and any other value (a list included) replaces the earlier
// one whole. Every node keeps the file it was written in
// (SourcePosition::source), so a message about the merged config names the
// file, line and column of the value that is wrong.
//
// The merge never changes a node of its inputs: a map written once and used
// through several aliases stays one shared node, and a map that has to merge
// is a new node. Only maps present in both sides are copied, so the work is
// the size of the inputs plus the entries of the maps that overlap.
//
// Threading: no shared state.
#ifndef CONFCAST_PUBLISHER_CONFIG_MERGE_HPP_
#define CONFCAST_PUBLISHER_CONFIG_MERGE_HPP_

#include <string>
#include <vector>

#include "config_yaml.hpp"

namespace confcast::publisher {

// documents[i] was parsed from files[i] (same size, at least one). The result
// has sources == files; its usage is the last document's (each was parsed with
// the usage of those before it, so it is the total).
YamlDocument MergeYamlDocuments(std::vector<YamlDocument> documents, std::vector<std::string> files);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_MERGE_HPP_
