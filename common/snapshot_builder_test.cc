// snapshot_builder_test.cc - the builder (snapshot_builder.hpp) and the
// bounds-checked lookup (snapshot_format.hpp) together: whatever the builder
// lays out, the reader finds, with the right type, value and JSON span.
//
// Threading: single-threaded; every test builds private bytes and reads them
// through View<PrivateMemory>, exactly as a pinned Snapshot does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "confcast/snapshot_format.hpp"
#include "snapshot_builder.hpp"

namespace confcast::snapshot {
namespace {

using nlohmann::json;

BuiltSnapshot MustBuild(const json& config) {
  auto built = BuildSnapshot(config);
  if (auto* err = std::get_if<std::string>(&built)) {
    ADD_FAILURE() << "BuildSnapshot failed: " << *err;
    return {};
  }
  return std::get<BuiltSnapshot>(std::move(built));
}

std::string MustFail(const json& config) {
  auto built = BuildSnapshot(config);
  if (auto* err = std::get_if<std::string>(&built)) return *err;
  ADD_FAILURE() << "BuildSnapshot accepted " << config.dump();
  return {};
}

// Reads a built snapshot the way a subscriber reads a slot.
class Reader {
 public:
  explicit Reader(const BuiltSnapshot& s)
      : view_(reinterpret_cast<const uint8_t*>(s.words.data()), s.size_bytes()) {
    header_ok_ = view_.LoadHeader();
  }
  bool header_ok() const { return header_ok_; }
  const SnapshotHeader& header() const { return view_.header(); }

  std::optional<Found> Find(std::string_view path) const {
    Found f;
    const LookupStatus st = view_.Find(path.data(), path.size(), PathHash(path.data(), path.size()), &f);
    EXPECT_NE(st, LookupStatus::kCorrupt) << "path '" << path << "'";
    if (st != LookupStatus::kFound) return std::nullopt;
    return f;
  }
  Type TypeAt(std::string_view path) const {
    auto f = Find(path);
    EXPECT_TRUE(f.has_value()) << "no entry at '" << path << "'";
    return f ? f->type : Type::kNull;
  }
  int64_t Int(std::string_view path) const { return static_cast<int64_t>(ValueOf(path, Type::kInt)); }
  double Double(std::string_view path) const {
    const uint64_t bits = ValueOf(path, Type::kDouble);
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  bool Bool(std::string_view path) const { return ValueOf(path, Type::kBool) != 0; }
  std::string String(std::string_view path) const {
    const uint64_t v = ValueOf(path, Type::kString);
    uint64_t off;
    uint32_t len;
    if (!view_.StringSpan(v, &off, &len)) {
      ADD_FAILURE() << "string span of '" << path << "' outside the pool";
      return {};
    }
    std::string s(len, '\0');
    view_.Copy(off, s.data(), len);
    return s;
  }
  std::string Json(std::string_view path) const {
    auto f = Find(path);
    if (!f) {
      ADD_FAILURE() << "no entry at '" << path << "'";
      return {};
    }
    uint64_t off;
    uint32_t len;
    if (!view_.JsonSpan(f->entry_off, &off, &len)) {
      ADD_FAILURE() << "json span of '" << path << "' outside the json text";
      return {};
    }
    std::string s(len, '\0');
    view_.Copy(off, s.data(), len);
    return s;
  }
  uint32_t ChildCount(std::string_view path) const {
    auto f = Find(path);
    if (!f) return ~0u;
    return static_cast<uint32_t>(view_.Word(f->entry_off + 24) >> 32);
  }
  // The JSON of the root entry: the whole config.
  std::string WholeJson() const { return Json(""); }

 private:
  uint64_t ValueOf(std::string_view path, Type want) const {
    auto f = Find(path);
    if (!f) {
      ADD_FAILURE() << "no entry at '" << path << "'";
      return 0;
    }
    EXPECT_EQ(f->type, want) << "type at '" << path << "'";
    return f->value;
  }

  View<PrivateMemory> view_;
  bool header_ok_ = false;
};

TEST(SnapshotBuilder, EveryScalarTypeRoundTrips) {
  const json config = {
      {"null_value", nullptr},
      {"yes", true},
      {"no", false},
      {"zero", 0},
      {"negative", -42},
      {"int_max", std::numeric_limits<int64_t>::max()},
      {"int_min", std::numeric_limits<int64_t>::min()},
      {"unsigned_small", uint64_t{7}},
      {"unsigned_huge", std::numeric_limits<uint64_t>::max()},
      {"pi", 3.14159},
      {"negative_double", -0.5},
      {"whole_double", 2.0},
      {"text", "hello"},
  };
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(s.entry_count, config.size() + 1);
  EXPECT_EQ(r.header().entry_count, s.entry_count);

  EXPECT_EQ(r.TypeAt("null_value"), Type::kNull);
  EXPECT_TRUE(r.Bool("yes"));
  EXPECT_FALSE(r.Bool("no"));
  EXPECT_EQ(r.Int("zero"), 0);
  EXPECT_EQ(r.Int("negative"), -42);
  EXPECT_EQ(r.Int("int_max"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r.Int("int_min"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.Int("unsigned_small"), 7);
  // Beyond int64: kept as the nearest double rather than wrapped negative.
  EXPECT_EQ(r.Double("unsigned_huge"), static_cast<double>(std::numeric_limits<uint64_t>::max()));
  EXPECT_DOUBLE_EQ(r.Double("pi"), 3.14159);
  EXPECT_EQ(r.Double("negative_double"), -0.5);
  EXPECT_EQ(r.TypeAt("whole_double"), Type::kDouble);  // 2.0 stays a double, not an int
  EXPECT_EQ(r.String("text"), "hello");
  EXPECT_EQ(r.TypeAt(""), Type::kMap);

  for (auto it = config.begin(); it != config.end(); ++it) {
    EXPECT_EQ(r.Json(it.key()), it.value().dump()) << it.key();
  }
}

TEST(SnapshotBuilder, NestedMapsAndListsHaveDottedPaths) {
  const json config = json::parse(R"({
    "a": {"list": [10, "two", {"x": true, "y": [1.5, [7, 8]]}, []], "inner": {"deeper": {"leaf": -1}}},
    "top_list": [[1, 2], [3]]
  })");
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(r.TypeAt("a"), Type::kMap);
  EXPECT_EQ(r.TypeAt("a.list"), Type::kList);
  EXPECT_EQ(r.ChildCount("a.list"), 4u);
  EXPECT_EQ(r.Int("a.list.0"), 10);
  EXPECT_EQ(r.String("a.list.1"), "two");
  EXPECT_EQ(r.TypeAt("a.list.2"), Type::kMap);
  EXPECT_EQ(r.ChildCount("a.list.2"), 2u);
  EXPECT_TRUE(r.Bool("a.list.2.x"));
  EXPECT_EQ(r.Double("a.list.2.y.0"), 1.5);
  EXPECT_EQ(r.Int("a.list.2.y.1.0"), 7);
  EXPECT_EQ(r.Int("a.list.2.y.1.1"), 8);
  EXPECT_EQ(r.TypeAt("a.list.3"), Type::kList);
  EXPECT_EQ(r.ChildCount("a.list.3"), 0u);
  EXPECT_EQ(r.Int("a.inner.deeper.leaf"), -1);
  EXPECT_EQ(r.Int("top_list.0.1"), 2);
  EXPECT_EQ(r.Int("top_list.1.0"), 3);
  EXPECT_EQ(r.ChildCount(""), 2u);

  // Neighbours of real paths are not found: out of range, a prefix, a trailing dot.
  for (const char* missing : {"a.list.4", "a.list.-1", "a.list.00", "a.lis", "a.list.", ".a", "a..list",
                              "a.list.2.z", "top_list.2", "b", "A"}) {
    EXPECT_FALSE(r.Find(missing).has_value()) << missing;
  }
}

TEST(SnapshotBuilder, KeysWithSlashesAreOnePathComponent) {
  const json config = json::parse(R"({
    "toolsets": {
      "kubernetes/core": {"enabled": true},
      "kubernetes/logs": {"enabled": false, "config": {"url": "http://x/y"}},
      "helm/core": {}
    }
  })");
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_TRUE(r.Bool("toolsets.kubernetes/core.enabled"));
  EXPECT_FALSE(r.Bool("toolsets.kubernetes/logs.enabled"));
  EXPECT_EQ(r.String("toolsets.kubernetes/logs.config.url"), "http://x/y");
  EXPECT_EQ(r.TypeAt("toolsets.helm/core"), Type::kMap);
  EXPECT_EQ(r.Json("toolsets.helm/core"), "{}");
  EXPECT_EQ(r.Json("toolsets.kubernetes/core"), R"({"enabled":true})");
  EXPECT_FALSE(r.Find("toolsets.kubernetes").has_value());
  EXPECT_FALSE(r.Find("toolsets.kubernetes.core.enabled").has_value());
}

TEST(SnapshotBuilder, RootJsonIsTheWholeConfig) {
  const json config = json::parse(R"({
    "llm": {"model": "gpt-4o", "provider": "openai", "endpoint": null, "max_retries": 3,
            "timeout_seconds": 60, "temperature": 0.7},
    "toolsets": {"kubernetes/core": {"enabled": true}, "prometheus/metrics": {"enabled": false,
                 "config": {"prometheus_url": "http://p:9090"}}},
    "log_level": "INFO",
    "extra": [1, [2, {"three": 3}], "quote\"and\\backslash\n"]
  })");
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(r.Json(""), config.dump());
  EXPECT_EQ(r.WholeJson(), config.dump());
  EXPECT_EQ(json::parse(r.WholeJson()), config);
}

// Every node's span is exactly that node's compact JSON (a substring of the whole).
void ExpectSpansMatch(const Reader& r, const json& node, const std::string& path) {
  EXPECT_EQ(r.Json(path), node.dump()) << "path '" << path << "'";
  if (node.is_object()) {
    EXPECT_EQ(r.ChildCount(path), node.size()) << path;
    for (auto it = node.begin(); it != node.end(); ++it) {
      ExpectSpansMatch(r, it.value(), path.empty() ? it.key() : path + "." + it.key());
    }
  } else if (node.is_array()) {
    EXPECT_EQ(r.ChildCount(path), node.size()) << path;
    for (size_t i = 0; i < node.size(); ++i) {
      ExpectSpansMatch(r, node[i], path.empty() ? std::to_string(i) : path + "." + std::to_string(i));
    }
  }
}

TEST(SnapshotBuilder, EverySubtreeJsonSpanIsThatSubtree) {
  const json config = json::parse(R"({
    "a": {"b": {"c": [1, 2, {"d": "e", "f": [true, false, null]}]}, "g": 1e300, "h": -1.25e-10},
    "i": [], "j": {}, "k": "", "l": [[], {}, [[]]],
    "m": {"n/o": {"p.q-r": 1}}
  })");
  // "p.q-r" contains a dot but nothing else claims "m.n/o.p.q-r" or "m.n/o.p": not ambiguous.
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  ExpectSpansMatch(r, config, "");
  EXPECT_EQ(r.Int("m.n/o.p.q-r"), 1);
  EXPECT_FALSE(r.Find("m.n/o.p").has_value());
}

TEST(SnapshotBuilder, UnicodeStringsAndKeysAreStoredAsUtf8Bytes) {
  const std::string accented = "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9";
  const std::string cjk = "\xE8\xA8\xAD\xE5\xAE\x9A";           // 設定
  const std::string emoji = "\xF0\x9F\x9A\x80 launch \xF0\x9F\x94\xA5";  // rocket, fire
  const json config = {
      {"accented", accented},
      {"cjk", cjk},
      {"emoji", emoji},
      {cjk, {{"key", "value"}, {emoji, 5}}},
      {"with_nul", std::string("a\0b", 3)},
      {"control", "tab\there\x01"},
  };
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(r.String("accented"), accented);
  EXPECT_EQ(r.String("cjk"), cjk);
  EXPECT_EQ(r.String("emoji"), emoji);
  EXPECT_EQ(r.String(cjk + ".key"), "value");
  EXPECT_EQ(r.Int(cjk + "." + emoji), 5);
  EXPECT_EQ(r.String("with_nul"), std::string("a\0b", 3));  // the length, not strlen
  EXPECT_EQ(r.String("control"), "tab\there\x01");
  EXPECT_EQ(r.Json("emoji"), json(emoji).dump());
  EXPECT_EQ(r.Json("with_nul"), R"("a\u0000b")");
  EXPECT_EQ(json::parse(r.WholeJson()), config);
}

// YAML has .inf and .nan (an unknown key may carry them); JSON has neither.
// The typed value keeps them; the JSON stays valid JSON (they become null).
TEST(SnapshotBuilder, NonFiniteDoublesKeepTheirTypedValueAndTheJsonStaysValid) {
  const json config = {{"inf", std::numeric_limits<double>::infinity()},
                       {"ninf", -std::numeric_limits<double>::infinity()},
                       {"nan", std::numeric_limits<double>::quiet_NaN()}};
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(r.Double("inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.Double("ninf"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(r.Double("nan")));
  EXPECT_EQ(r.Json("inf"), "null");
  const json parsed = json::parse(r.WholeJson(), nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << r.WholeJson();
  EXPECT_TRUE(parsed["nan"].is_null());
}

TEST(SnapshotBuilder, EmptyStringMapAndList) {
  const json config = {{"empty_string", ""}, {"empty_map", json::object()}, {"empty_list", json::array()}};
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(r.String("empty_string"), "");
  EXPECT_EQ(r.Json("empty_string"), "\"\"");
  EXPECT_EQ(r.TypeAt("empty_map"), Type::kMap);
  EXPECT_EQ(r.ChildCount("empty_map"), 0u);
  EXPECT_EQ(r.Json("empty_map"), "{}");
  EXPECT_EQ(r.TypeAt("empty_list"), Type::kList);
  EXPECT_EQ(r.ChildCount("empty_list"), 0u);
  EXPECT_EQ(r.Json("empty_list"), "[]");
  EXPECT_FALSE(r.Find("empty_map.x").has_value());
  EXPECT_FALSE(r.Find("empty_list.0").has_value());
}

TEST(SnapshotBuilder, EmptyConfigIsJustTheRoot) {
  const BuiltSnapshot s = MustBuild(json::object());
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  EXPECT_EQ(s.entry_count, 1u);
  EXPECT_EQ(r.TypeAt(""), Type::kMap);
  EXPECT_EQ(r.Json(""), "{}");
  EXPECT_FALSE(r.Find("anything").has_value());
}

TEST(SnapshotBuilder, IsDeterministic) {
  const char* text = R"({"z": 1, "a": {"list": [1, 2.5, "x", null, true]}, "m": {"k/1": {"enabled": true}}})";
  const BuiltSnapshot first = MustBuild(json::parse(text));
  for (int i = 0; i < 5; ++i) {
    const BuiltSnapshot again = MustBuild(json::parse(text));
    EXPECT_EQ(again.words, first.words);
    EXPECT_EQ(again.entry_count, first.entry_count);
  }
  // Key order in the source does not matter: the config is a map.
  const BuiltSnapshot reordered =
      MustBuild(json::parse(R"({"m": {"k/1": {"enabled": true}}, "a": {"list": [1, 2.5, "x", null, true]}, "z": 1})"));
  EXPECT_EQ(reordered.words, first.words);
  // And a different value gives different bytes.
  const BuiltSnapshot changed =
      MustBuild(json::parse(R"({"z": 2, "a": {"list": [1, 2.5, "x", null, true]}, "m": {"k/1": {"enabled": true}}})"));
  EXPECT_NE(changed.words, first.words);
}

TEST(SnapshotBuilder, AmbiguousDottedPathsAreRejected) {
  std::string err = MustFail(json::parse(R"({"a.b": 1, "a": {"b": 2}})"));
  EXPECT_NE(err.find("'a.b'"), std::string::npos) << err;
  err = MustFail(json::parse(R"({"list.0": "x", "list": ["y"]})"));
  EXPECT_NE(err.find("'list.0'"), std::string::npos) << err;
  err = MustFail(json::parse(R"({"x": {"y.z": 1, "y": {"z": 2}}})"));
  EXPECT_NE(err.find("'x.y.z'"), std::string::npos) << err;
  // A key "" at the top would be the root's own path.
  MustFail(json::parse(R"({"": 1})"));
  // A dotted key with nothing next to it is fine.
  const BuiltSnapshot ok = MustBuild(json::parse(R"({"a.b": 1, "a": {"c": 2}})"));
  Reader r(ok);
  EXPECT_EQ(r.Int("a.b"), 1);
  EXPECT_EQ(r.Int("a.c"), 2);
}

TEST(SnapshotBuilder, RejectsNonMapsAndOverlongPaths) {
  MustFail(json::array({1, 2}));
  MustFail(json(5));
  MustFail(json("text"));
  MustFail(json(nullptr));
  const std::string long_key(kMaxPathBytes + 1, 'k');
  const std::string err = MustFail(json{{long_key, 1}});
  EXPECT_NE(err.find("longer than"), std::string::npos) << err;
  MustBuild(json{{std::string(kMaxPathBytes, 'k'), 1}});  // exactly the limit is fine
}

TEST(SnapshotBuilder, HeaderFitsExactlyTheBuiltBytes) {
  const json config = json::parse(R"({"a": {"b": [1, "two", 3.0]}, "s": "x", "t": "0123456789abcdef"})");
  const BuiltSnapshot s = MustBuild(config);
  Reader r(s);
  ASSERT_TRUE(r.header_ok());
  const SnapshotHeader& h = r.header();
  EXPECT_EQ(h.entry_count, s.entry_count);
  EXPECT_EQ(h.bucket_count & (h.bucket_count - 1), 0u);
  EXPECT_GE(h.bucket_count, 2 * h.entry_count);
  EXPECT_EQ(s.size_bytes() % 8, 0u);
  // The builder adds no slack: one word less and the regions no longer fit.
  View<PrivateMemory> shorter(reinterpret_cast<const uint8_t*>(s.words.data()), s.size_bytes() - 8);
  EXPECT_FALSE(shorter.LoadHeader());
  View<PrivateMemory> tiny(reinterpret_cast<const uint8_t*>(s.words.data()), 8);
  EXPECT_FALSE(tiny.LoadHeader());
}

TEST(SnapshotBuilder, ThousandsOfKeysAreAllFound) {
  json config = json::object();
  constexpr int kSections = 40, kPerSection = 125;  // 5000 leaves + 40 maps + the root
  for (int s = 0; s < kSections; ++s) {
    json section = json::object();
    for (int k = 0; k < kPerSection; ++k) {
      const int n = s * kPerSection + k;
      if (n % 3 == 0) section["key_" + std::to_string(k)] = n;
      else if (n % 3 == 1) section["key_" + std::to_string(k)] = "value-" + std::to_string(n);
      else section["key_" + std::to_string(k)] = json::array({n, n + 1});
    }
    config["section_" + std::to_string(s)] = std::move(section);
  }
  const BuiltSnapshot snap = MustBuild(config);
  Reader r(snap);
  ASSERT_TRUE(r.header_ok());
  EXPECT_GE(snap.entry_count, uint32_t{kSections * kPerSection + kSections + 1});
  for (int s = 0; s < kSections; ++s) {
    const std::string prefix = "section_" + std::to_string(s) + ".key_";
    for (int k = 0; k < kPerSection; ++k) {
      const int n = s * kPerSection + k;
      const std::string path = prefix + std::to_string(k);
      if (n % 3 == 0) {
        ASSERT_EQ(r.Int(path), n) << path;
      } else if (n % 3 == 1) {
        ASSERT_EQ(r.String(path), "value-" + std::to_string(n)) << path;
      } else {
        ASSERT_EQ(r.Int(path + ".1"), n + 1) << path;
      }
    }
  }
  EXPECT_FALSE(r.Find("section_0.key_125").has_value());
  EXPECT_FALSE(r.Find("section_40").has_value());
  EXPECT_FALSE(r.Find("section_0.key_0.0").has_value());  // an int, not a list
  EXPECT_FALSE(r.Find("no.such.path").has_value());
  EXPECT_EQ(json::parse(r.WholeJson()), config);
}

}  // namespace
}  // namespace confcast::snapshot

namespace confcast::snapshot {
namespace {

// A map under keys of key_bytes each, `levels` deep, holding `leaves` ints:
// every leaf's path repeats the long keys.
json LongKeysOverLeaves(int levels, size_t key_bytes, int leaves) {
  json inner = json::object();
  for (int i = 0; i < leaves; ++i) inner["a" + std::to_string(i)] = i;
  for (int level = 0; level < levels; ++level) inner = json{{std::string(key_bytes, static_cast<char>('k' + level)), inner}};
  return inner;
}

TEST(SnapshotBuilderLimits, ExactlyTheCapacityFitsAndOneByteLessIsTooLarge) {
  const json config = LongKeysOverLeaves(2, 100, 50);
  const BuiltSnapshot whole = MustBuild(config);
  auto fits = BuildSnapshotWithin(config, whole.size_bytes());
  ASSERT_TRUE(std::holds_alternative<BuiltSnapshot>(fits)) << std::get<BuildError>(fits).message;
  EXPECT_EQ(std::get<BuiltSnapshot>(fits).words, whole.words);
  auto over = BuildSnapshotWithin(config, whole.size_bytes() - 1);
  ASSERT_TRUE(std::holds_alternative<BuildError>(over));
  const BuildError& error = std::get<BuildError>(over);
  EXPECT_TRUE(error.too_large);
  EXPECT_NE(error.message.find("more than the segment's --capacity of " + std::to_string(whole.size_bytes() - 1)),
            std::string::npos)
      << error.message;
}

TEST(SnapshotBuilderLimits, StopsAtTheFirstNodeThatCannotFitAndNamesIt) {
  // About 160 MB of dotted paths if it were laid out: the builder must stop
  // near the capacity, at a leaf, long before storing them.
  const json config = LongKeysOverLeaves(4, 1000, 40000);
  auto built = BuildSnapshotWithin(config, 1 << 20);
  ASSERT_TRUE(std::holds_alternative<BuildError>(built));
  const BuildError& error = std::get<BuildError>(built);
  EXPECT_TRUE(error.too_large);
  EXPECT_EQ(error.message.rfind("the validated config needs more than the segment's --capacity of 1048576 bytes", 0), 0u)
      << error.message;
  EXPECT_NE(error.path.find(".a"), std::string::npos) << error.path;
  EXPECT_LT(error.path.size(), 300u) << "a long path is clipped for the message";
  // The same without a capacity: the largest a segment can have.
  const std::string legacy = MustFail(LongKeysOverLeaves(4, 1000, 40000));
  EXPECT_NE(legacy.find("the largest --capacity"), std::string::npos) << legacy;
}

TEST(SnapshotBuilderLimits, PathLimitIsCheckedBeforeTheNodeIsStored) {
  const std::string at_limit(kMaxPathBytes - 2, 'k');  // "k...k.x": exactly kMaxPathBytes
  auto ok = BuildSnapshotWithin(json{{at_limit, {{"x", 1}}}}, 1 << 20);
  EXPECT_TRUE(std::holds_alternative<BuiltSnapshot>(ok));
  auto over = BuildSnapshotWithin(json{{at_limit, {{"xy", 1}}}}, 1 << 20);
  ASSERT_TRUE(std::holds_alternative<BuildError>(over));
  EXPECT_FALSE(std::get<BuildError>(over).too_large);
  EXPECT_NE(std::get<BuildError>(over).message.find("longer than 4096 bytes (4097)"), std::string::npos);
}

TEST(SnapshotBuilderLimits, MinimumSnapshotBytesNeverExceedsARealSnapshot) {
  for (const json& config : {json::object(), json{{"a", "x"}}, LongKeysOverLeaves(3, 10, 7),
                             json::parse(R"({"a": {"b": [1, "two", 3.0, null, true]}, "e": {"": ""}})")}) {
    const BuiltSnapshot s = MustBuild(config);
    uint64_t nodes = 0, paths = 0, text = 0;
    const auto walk = [&](const auto& self, const json& node, const std::string& path) -> void {
      ++nodes;
      paths += path.size();
      if (node.is_string()) text += node.get<std::string>().size();
      if (node.is_object()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
          text += it.key().size();
          self(self, it.value(), path.empty() ? it.key() : path + "." + it.key());
        }
      } else if (node.is_array()) {
        for (size_t i = 0; i < node.size(); ++i) self(self, node[i], path.empty() ? std::to_string(i) : path + "." + std::to_string(i));
      }
    };
    walk(walk, config, "");
    EXPECT_LE(MinimumSnapshotBytes(nodes, paths, text), s.size_bytes()) << config.dump();
  }
}

}  // namespace
}  // namespace confcast::snapshot
