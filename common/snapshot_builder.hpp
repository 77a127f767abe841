// snapshot_builder.hpp - the publisher's half of snapshot_format.hpp: turns a
// validated config into the flat bytes that go into a slot.
//
// Pure function of its input, no shared state: call it from any thread. The
// output is deterministic (same config, same bytes), which the tests rely on.
#ifndef CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_
#define CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace confcast::snapshot {

struct BuiltSnapshot {
  std::vector<uint64_t> words;  // the snapshot bytes, 8-aligned; words.size() * 8 bytes
  uint32_t entry_count = 0;     // nodes, the root included
  uint64_t size_bytes() const { return words.size() * 8; }
};

// Lays out `config` (a JSON object). Fails, with a message, if two nodes
// have the same dotted path (e.g. key "a.b" next to a: {b: ...}), a string is
// not valid UTF-8, or the result would not fit the format's 32-bit offsets.
// Never throws for any input. Capacity is checked by the caller.
std::variant<BuiltSnapshot, std::string> BuildSnapshot(const nlohmann::json& config);

}  // namespace confcast::snapshot

#endif  // CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_
