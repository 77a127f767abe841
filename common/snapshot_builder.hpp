// snapshot_builder.hpp - the publisher's half of snapshot_format.hpp: turns a
// validated config into the flat bytes that go into a slot.
//
// Pure function of its input, no shared state: call it from any thread. The
// output is deterministic (same config, same bytes), which the tests rely on.
//
// Bounded work: every node's full dotted path is stored, so a config with long
// keys above many leaves has far more path bytes than file bytes. The builder
// therefore keeps a running count of the snapshot it is laying out and stops
// at the first node that would take it past the capacity, or whose path is
// longer than kMaxPathBytes, before storing that node: memory and time stay
// within a few times the capacity whatever the input.
#ifndef CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_
#define CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "confcast/layout.hpp"

namespace confcast::snapshot {

struct BuiltSnapshot {
  std::vector<uint64_t> words;  // the snapshot bytes, 8-aligned; words.size() * 8 bytes
  uint32_t entry_count = 0;     // nodes, the root included
  uint64_t size_bytes() const { return words.size() * 8; }
};

struct BuildError {
  bool too_large = false;  // the snapshot would not fit the capacity (else: the config cannot be laid out at all)
  std::string path;        // dotted path of the node where it was noticed; "" for the whole config
  std::string message;     // does not repeat the path
};

// Lays out `config` (a JSON object) in at most `capacity` bytes. Fails if two
// nodes have the same dotted path (e.g. key "a.b" next to a: {b: ...}), a
// path is longer than kMaxPathBytes, a string is not valid UTF-8, or the
// snapshot would be larger than `capacity` (too_large, noticed while walking).
// Never throws for any input. Each node at one of `secret_paths` (dotted),
// and every node below it, is marked secret (kSecretBit).
std::variant<BuiltSnapshot, BuildError> BuildSnapshotWithin(const nlohmann::json& config, uint64_t capacity,
                                                            const std::vector<std::string>& secret_paths = {});

// The same within layout::kMaxSlotCapacity (the largest any segment holds);
// the message names the path. For callers that check a capacity afterwards.
std::variant<BuiltSnapshot, std::string> BuildSnapshot(const nlohmann::json& config,
                                                       const std::vector<std::string>& secret_paths = {});

// ---- shared with the publisher's parse and validation ------------------------
//
// They count the same things while reading the file, so that a config whose
// snapshot cannot fit is refused there, before the tree is expanded or copied.

// The fewest bytes a snapshot can take with `nodes` entries (the root
// included), `path_bytes` of dotted paths and `text_bytes` of keys and string
// values (each counted once): never more than BuildSnapshotWithin would need,
// so refusing a config above it refuses nothing that would fit.
uint64_t MinimumSnapshotBytes(uint64_t nodes, uint64_t path_bytes, uint64_t text_bytes);

// "the validated config needs more than the segment's --capacity of N bytes of
// snapshot" (or, for layout::kMaxSlotCapacity, "more than N bytes of snapshot,
// the largest --capacity"): the start of every too-large message, whichever
// stage notices it.
std::string NeedsMoreThan(uint64_t capacity);

// A path short enough for a one-line message: long ones keep their start and
// end (cut on UTF-8 boundaries) and say how long they were.
std::string ClipPath(std::string_view path);

}  // namespace confcast::snapshot

#endif  // CONFCAST_COMMON_SNAPSHOT_BUILDER_HPP_
