#include "snapshot_builder.hpp"

#include <cstring>
#include <unordered_set>

#include "confcast/snapshot_format.hpp"

namespace confcast::snapshot {
namespace {

struct PendingEntry {
  std::string path;
  Type type;
  uint64_t value = 0;  // final for scalars; strings get their pool offset later
  std::string string_value;
  uint32_t json_off = 0, json_len = 0, child_count = 0;  // child_count carries kSecretBit
};

// Bytes a string takes in the pool: itself, at least one NUL, to the next word.
uint64_t PoolBytes(uint64_t length) { return (length + 8) & ~uint64_t{7}; }

uint64_t BucketsFor(uint64_t entries) {
  uint64_t buckets = 2;
  while (buckets < entries * 2) buckets <<= 1;
  return buckets;
}

// Thrown out of the walk: the first node that cannot be laid out.
struct Stop {
  BuildError error;
};

class Builder {
 public:
  Builder(uint64_t capacity, const std::vector<std::string>& secret_paths)
      : capacity_(capacity), secret_paths_(secret_paths.begin(), secret_paths.end()) {}

  void Walk(const nlohmann::json& node, const std::string& path, bool under_secret) {
    const bool secret = under_secret || (!secret_paths_.empty() && secret_paths_.count(path) != 0);
    // Checked before the path is stored: a path is at most kMaxPathBytes and
    // the pool at most the capacity, so the copies kept here stay bounded.
    if (path.size() > kMaxPathBytes) {
      throw Stop{{false, ClipPath(path), "path longer than " + std::to_string(kMaxPathBytes) + " bytes (" +
                                             std::to_string(path.size()) + "); a snapshot cannot hold it"}};
    }
    pool_bytes_ += PoolBytes(path.size());
    path_bytes_ += path.size();
    if (node.is_string()) pool_bytes_ += PoolBytes(node.get_ref<const std::string&>().size());
    const size_t index = entries_.size();
    CheckFits(index + 1, path);
    entries_.push_back(PendingEntry{path, Type::kNull, 0, {}, 0, 0, 0});
    const size_t json_start = json_.size();
    PendingEntry e;  // filled below, stored at `index` (the vector may grow while recursing)
    e.path = path;
    switch (node.type()) {
      case nlohmann::json::value_t::object: {
        e.type = Type::kMap;
        e.child_count = static_cast<uint32_t>(node.size());
        json_ += '{';
        bool first = true;
        for (auto it = node.begin(); it != node.end(); ++it) {
          if (!first) json_ += ',';
          first = false;
          json_ += nlohmann::json(it.key()).dump();
          json_ += ':';
          Walk(it.value(), path.empty() ? it.key() : path + "." + it.key(), secret);
        }
        json_ += '}';
        break;
      }
      case nlohmann::json::value_t::array: {
        e.type = Type::kList;
        e.child_count = static_cast<uint32_t>(node.size());
        json_ += '[';
        for (size_t i = 0; i < node.size(); ++i) {
          if (i) json_ += ',';
          Walk(node[i], path.empty() ? std::to_string(i) : path + "." + std::to_string(i), secret);
        }
        json_ += ']';
        break;
      }
      case nlohmann::json::value_t::string:
        e.type = Type::kString;
        e.string_value = node.get_ref<const std::string&>();
        json_ += node.dump();
        break;
      case nlohmann::json::value_t::boolean:
        e.type = Type::kBool;
        e.value = node.get<bool>() ? 1 : 0;
        json_ += node.dump();
        break;
      case nlohmann::json::value_t::number_integer:
        e.type = Type::kInt;
        e.value = static_cast<uint64_t>(node.get<int64_t>());
        json_ += node.dump();
        break;
      case nlohmann::json::value_t::number_unsigned: {
        const uint64_t u = node.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) {
          e.type = Type::kDouble;
          const double d = static_cast<double>(u);
          std::memcpy(&e.value, &d, 8);
        } else {
          e.type = Type::kInt;
          e.value = u;
        }
        json_ += node.dump();
        break;
      }
      case nlohmann::json::value_t::number_float: {
        e.type = Type::kDouble;
        const double d = node.get<double>();
        std::memcpy(&e.value, &d, 8);
        json_ += node.dump();
        break;
      }
      default:
        e.type = Type::kNull;
        json_ += "null";
        break;
    }
    if (secret) e.child_count |= kSecretBit;
    e.json_off = static_cast<uint32_t>(json_start);
    e.json_len = static_cast<uint32_t>(json_.size() - json_start);
    entries_[index] = std::move(e);
    CheckFits(entries_.size(), path);
  }

  std::variant<BuiltSnapshot, BuildError> Finish() {
    std::unordered_set<std::string_view> seen;
    for (const PendingEntry& e : entries_) {
      if (!seen.insert(e.path).second) {
        return BuildError{false, ClipPath(e.path),
                          "two nodes have the same dotted path '" + e.path +
                              "' (a key containing '.' next to a nested map)"};
      }
    }
    // Pool: every path, then every string value, each 8-aligned and NUL-padded.
    std::string pool;
    pool.reserve(pool_bytes_);
    std::vector<uint32_t> path_off(entries_.size()), str_off(entries_.size());
    auto add = [&pool](const std::string& s) {
      const uint32_t off = static_cast<uint32_t>(pool.size());
      pool += s;
      pool.append(8 - pool.size() % 8, '\0');  // at least one NUL, then to the next word
      return off;
    };
    for (size_t i = 0; i < entries_.size(); ++i) path_off[i] = add(entries_[i].path);
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].type == Type::kString) str_off[i] = add(entries_[i].string_value);
    }
    const uint32_t buckets = static_cast<uint32_t>(BucketsFor(entries_.size()));

    SnapshotHeader h{static_cast<uint32_t>(entries_.size()), buckets, static_cast<uint32_t>(pool.size()),
                     static_cast<uint32_t>(json_.size())};
    const Regions r = RegionsOf(h);
    const uint64_t total = (r.end + 7) & ~uint64_t{7};
    if (total > capacity_) {
      return BuildError{true, "",
                        "the validated config needs " + std::to_string(total) + " bytes of snapshot, more than " +
                            CapacityName()};
    }

    BuiltSnapshot out;
    out.entry_count = h.entry_count;
    out.words.assign(total / 8, 0);
    auto* bytes = reinterpret_cast<uint8_t*>(out.words.data());
    std::memcpy(bytes, &h, sizeof(h));
    auto* table = reinterpret_cast<uint32_t*>(bytes + r.buckets_off);
    for (size_t i = 0; i < entries_.size(); ++i) {
      const PendingEntry& p = entries_[i];
      Entry e{};
      e.path_hash = PathHash(p.path.data(), p.path.size());
      e.path_off = static_cast<uint32_t>(r.pool_off + path_off[i]);
      e.path_len = static_cast<uint32_t>(p.path.size());
      e.type = static_cast<uint32_t>(p.type);
      e.json_off = static_cast<uint32_t>(r.json_off + p.json_off);
      e.json_len = p.json_len;
      e.child_count = p.child_count;
      e.value = p.type == Type::kString
                    ? (uint64_t{static_cast<uint32_t>(p.string_value.size())} << 32) | (r.pool_off + str_off[i])
                    : p.value;
      std::memcpy(bytes + r.entries_off + i * sizeof(Entry), &e, sizeof(e));
      uint32_t b = static_cast<uint32_t>(e.path_hash) & (buckets - 1);
      while (table[b] != 0) b = (b + 1) & (buckets - 1);
      table[b] = static_cast<uint32_t>(i + 1);
    }
    std::memcpy(bytes + r.pool_off, pool.data(), pool.size());
    std::memcpy(bytes + r.json_off, json_.data(), json_.size());
    return out;
  }

 private:
  std::string CapacityName() const {
    return capacity_ == layout::kMaxSlotCapacity ? std::to_string(capacity_) + " bytes, the largest --capacity"
                                                 : "the segment's --capacity of " + std::to_string(capacity_);
  }

  // What has been laid out so far only grows (more entries, more pool, more
  // JSON), so once it passes the capacity the whole snapshot would too.
  void CheckFits(uint64_t entries, const std::string& path) const {
    const uint64_t so_far = sizeof(SnapshotHeader) + 4 * BucketsFor(entries) + entries * sizeof(Entry) +
                            pool_bytes_ + json_.size();
    if (so_far <= capacity_) return;
    throw Stop{{true, ClipPath(path),
                NeedsMoreThan(capacity_) + ": it would exceed it at this path (" + std::to_string(entries) +
                    " values and " + std::to_string(path_bytes_) + " bytes of dotted paths so far)"}};
  }

  uint64_t capacity_;
  std::unordered_set<std::string> secret_paths_;
  uint64_t pool_bytes_ = 0;  // of every entry begun so far, its string value included
  uint64_t path_bytes_ = 0;
  std::vector<PendingEntry> entries_;
  std::string json_;
};

}  // namespace

uint64_t MinimumSnapshotBytes(uint64_t nodes, uint64_t path_bytes, uint64_t text_bytes) {
  // Per node at least: 2 buckets of 4 bytes, a 40-byte entry, the NUL after
  // its path in the pool and one byte of JSON. Keys and string values appear
  // in the JSON (strings in the pool too; counted once here).
  constexpr uint64_t kPerNode = 2 * 4 + sizeof(Entry) + 1 + 1;
  constexpr uint64_t kSaturated = uint64_t{1} << 62;
  if (nodes > kSaturated / kPerNode || path_bytes > kSaturated || text_bytes > kSaturated) return kSaturated;
  return sizeof(SnapshotHeader) + nodes * kPerNode + path_bytes + text_bytes;
}

std::string NeedsMoreThan(uint64_t capacity) {
  return capacity == layout::kMaxSlotCapacity
             ? "the validated config needs more than " + std::to_string(capacity) +
                   " bytes of snapshot, the largest --capacity"
             : "the validated config needs more than the segment's --capacity of " + std::to_string(capacity) +
                   " bytes of snapshot";
}

std::string ClipPath(std::string_view path) {
  constexpr size_t kHead = 96, kTail = 32;
  if (path.size() <= kHead + kTail + 32) return std::string(path);
  const auto continuation = [&](size_t i) { return (static_cast<unsigned char>(path[i]) & 0xC0) == 0x80; };
  size_t head = kHead, tail = path.size() - kTail;
  while (head > 0 && continuation(head)) --head;
  while (tail < path.size() && continuation(tail)) ++tail;
  return std::string(path.substr(0, head)) + "...(" + std::to_string(path.size()) + " bytes)..." +
         std::string(path.substr(tail));
}

std::variant<BuiltSnapshot, BuildError> BuildSnapshotWithin(const nlohmann::json& config, uint64_t capacity,
                                                            const std::vector<std::string>& secret_paths) {
  if (!config.is_object()) return BuildError{false, "", "the config must be a map"};
  Builder b(capacity, secret_paths);
  try {
    b.Walk(config, "", false);
  } catch (const Stop& stop) {
    return stop.error;
  } catch (const nlohmann::json::exception& e) {
    // A string that is not UTF-8 cannot become JSON. The YAML layer rejects
    // such bytes in the file and re-encodes the two escapes yaml-cpp 0.7
    // turns into raw bytes (\N gives 0x85, \_ gives 0xA0) as UTF-8, so no
    // config it accepts is known to reach this; it stays so that bad bytes
    // from any other source are an error rather than an exception.
    return BuildError{false, "", std::string("a value cannot be published as JSON: ") + e.what()};
  }
  return b.Finish();
}

std::variant<BuiltSnapshot, std::string> BuildSnapshot(const nlohmann::json& config,
                                                       const std::vector<std::string>& secret_paths) {
  auto built = BuildSnapshotWithin(config, layout::kMaxSlotCapacity, secret_paths);
  if (auto* error = std::get_if<BuildError>(&built)) {
    return error->path.empty() ? error->message : error->path + ": " + error->message;
  }
  return std::get<BuiltSnapshot>(std::move(built));
}

}  // namespace confcast::snapshot
