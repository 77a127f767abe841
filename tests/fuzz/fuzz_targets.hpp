// fuzz_targets.hpp - the three fuzz harnesses (config bytes, segment bytes,
// schema-file bytes), as plain functions so that the libFuzzer wrappers
// (*_fuzzer.cc, clang) and the corpus replay test (tests/fuzz_corpus_test.cc,
// the normal and sanitizer builds) run exactly the same code.
//
// Each harness takes arbitrary bytes, must never crash, hang or read out of
// bounds (the sanitizers catch that), and checks invariants of its own: a
// rejected input gets a one-line message with a sane position; an accepted
// config's snapshot answers every path with the value it was built from; a
// reader's live view and its pinned copy of the same bytes agree. A broken
// invariant prints what and aborts, which libFuzzer records as a crash.
//
// Threading: single-threaded (libFuzzer and the replay test call one input at
// a time). The harnesses keep process-wide state (a memfd, a segment) in
// function-local statics, created on first use and removed at exit.
#ifndef CONFCAST_TESTS_FUZZ_FUZZ_TARGETS_HPP_
#define CONFCAST_TESTS_FUZZ_FUZZ_TARGETS_HPP_

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "confcast/layout.hpp"
#include "confcast/snapshot_format.hpp"
#include "confcast/subscriber.hpp"
#include "config_error.hpp"
#include "config_merge.hpp"
#include "config_sources.hpp"
#include "config_yaml.hpp"
#include "schema.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace confcast::fuzz {

// Aborts with a message: libFuzzer saves the input as a crash, the replay
// test dies with the message on stderr.
#define CONFCAST_FUZZ_CHECK(cond, ...)                                        \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, \
                   __LINE__, #cond);                                          \
      std::fprintf(stderr, __VA_ARGS__);                                      \
      std::fprintf(stderr, "\n");                                             \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

// A schema in the --schema format that uses every feature the loader has:
// required, non_empty, bounds of both kinds, enums of both kinds, case
// folding, url format, nullable, wildcards over maps and lists, open maps, any.
inline constexpr std::string_view kRichSchemaYaml = R"yaml(description: fuzz schema
fields:
  - path: service
    type: map
  - path: service.name
    type: string
    required: true
    non_empty: true
  - path: service.port
    type: int
    default: 8080
    min: 1
    max: 65535
  - path: service.mode
    type: string
    enum: [active, standby, drain]
    case_insensitive: true
    normalize: lower
    default: active
  - path: service.ratio
    type: float
    min: 0
    max: 1
    default: 0.5
  - path: service.workers
    type: int
    enum: [1, 2, 4, 8]
    default: 2
  - path: upstreams
    type: map
    default: {}
  - path: upstreams.*
    type: map
  - path: upstreams.*.url
    type: string
    format: url
    required: true
  - path: upstreams.*.timeout_ms
    type: int
    min: 1
    default: 1000
  - path: upstreams.*.tags
    type: list
  - path: upstreams.*.tags.*
    type: string
    non_empty: true
  - path: feature_flags
    type: map
    open: true
    default: {}
  - path: notes
    type: any
  - path: backup_url
    type: string
    nullable: true
    format: url
)yaml";

namespace detail {

inline size_t CountLines(std::string_view text) {
  size_t lines = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) ++lines;
  }
  return lines;
}

// What the publisher promises about a rejection: one line, a reason the
// metrics know, and (when given) a position inside the text.
inline void CheckError(const publisher::ConfigError& error, std::string_view text, const char* what) {
  const std::string line = error.ToString();
  CONFCAST_FUZZ_CHECK(!error.message.empty(), "%s: empty message", what);
  CONFCAST_FUZZ_CHECK(line.find('\n') == std::string::npos && line.find('\r') == std::string::npos,
                      "%s: message is not one line: %s", what, line.c_str());
  const int reason = static_cast<int>(error.reason);
  CONFCAST_FUZZ_CHECK(reason >= 0 && reason < static_cast<int>(layout::kReasonCount), "%s: reason %d", what, reason);
  CONFCAST_FUZZ_CHECK(error.line >= 0 && error.column >= 0, "%s: negative position %d:%d", what, error.line,
                      error.column);
  if (error.line > 0) {
    CONFCAST_FUZZ_CHECK(static_cast<size_t>(error.line) <= CountLines(text) && error.column >= 1,
                        "%s: position %d:%d outside a text of %zu lines: %s", what, error.line, error.column,
                        CountLines(text), line.c_str());
  }
}

inline bool AllFinite(const nlohmann::json& node) {
  if (node.is_number_float()) return std::isfinite(node.get<double>());
  if (node.is_structured()) {
    for (const auto& child : node) {
      if (!AllFinite(child)) return false;
    }
  }
  return true;
}

// Walks a config and checks that the snapshot built from it answers every
// dotted path with that node's type, value and JSON. Returns the node count.
template <class Memory>
class SnapshotChecker {
 public:
  SnapshotChecker(const snapshot::View<Memory>& view, const uint8_t* bytes) : view_(view), bytes_(bytes) {}

  size_t Check(const nlohmann::json& node, const std::string& path) {
    ++nodes_;
    snapshot::Found found;
    const uint64_t hash = snapshot::PathHash(path.data(), path.size());
    const auto status = view_.Find(path.data(), path.size(), hash, &found);
    CONFCAST_FUZZ_CHECK(status == snapshot::LookupStatus::kFound, "path '%s' not found in its own snapshot",
                        path.c_str());
    using snapshot::Type;
    switch (node.type()) {
      case nlohmann::json::value_t::object:
        CONFCAST_FUZZ_CHECK(found.type == Type::kMap, "'%s' should be a map", path.c_str());
        break;
      case nlohmann::json::value_t::array:
        CONFCAST_FUZZ_CHECK(found.type == Type::kList, "'%s' should be a list", path.c_str());
        break;
      case nlohmann::json::value_t::string: {
        CONFCAST_FUZZ_CHECK(found.type == Type::kString, "'%s' should be a string", path.c_str());
        uint64_t off = 0;
        uint32_t len = 0;
        CONFCAST_FUZZ_CHECK(view_.StringSpan(found.value, &off, &len), "'%s' string span", path.c_str());
        const std::string& want = node.get_ref<const std::string&>();
        CONFCAST_FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(bytes_) + off, len) == want,
                            "'%s' string value differs", path.c_str());
        break;
      }
      case nlohmann::json::value_t::boolean:
        CONFCAST_FUZZ_CHECK(found.type == Type::kBool && found.value == (node.get<bool>() ? 1u : 0u),
                            "'%s' bool differs", path.c_str());
        break;
      case nlohmann::json::value_t::number_integer:
        CONFCAST_FUZZ_CHECK(found.type == Type::kInt && static_cast<int64_t>(found.value) == node.get<int64_t>(),
                            "'%s' int differs", path.c_str());
        break;
      case nlohmann::json::value_t::number_unsigned:
        CONFCAST_FUZZ_CHECK(found.type == Type::kInt || found.type == Type::kDouble, "'%s' unsigned type",
                            path.c_str());
        break;
      case nlohmann::json::value_t::number_float: {
        double got = 0;
        std::memcpy(&got, &found.value, 8);
        const double want = node.get<double>();
        CONFCAST_FUZZ_CHECK(found.type == Type::kDouble && std::memcmp(&got, &want, 8) == 0,
                            "'%s' float differs", path.c_str());
        break;
      }
      default:
        CONFCAST_FUZZ_CHECK(found.type == Type::kNull, "'%s' should be null", path.c_str());
        break;
    }
    uint64_t joff = 0;
    uint32_t jlen = 0;
    CONFCAST_FUZZ_CHECK(view_.JsonSpan(found.entry_off, &joff, &jlen), "'%s' json span", path.c_str());
    // Parsing every subtree is quadratic in depth; the root and the first
    // nodes are enough to catch a wrong span.
    if (nodes_ <= 48 && AllFinite(node)) {
      const std::string_view text(reinterpret_cast<const char*>(bytes_) + joff, jlen);
      const nlohmann::json back = nlohmann::json::parse(text, nullptr, false);
      CONFCAST_FUZZ_CHECK(!back.is_discarded() && back == node, "'%s' JSON span does not parse back: %.*s",
                          path.c_str(), static_cast<int>(std::min<size_t>(jlen, 200)), text.data());
    }
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        Check(it.value(), path.empty() ? it.key() : path + "." + it.key());
      }
    } else if (node.is_array()) {
      for (size_t i = 0; i < node.size(); ++i) {
        Check(node[i], path.empty() ? std::to_string(i) : path + "." + std::to_string(i));
      }
    }
    return nodes_;
  }

 private:
  const snapshot::View<Memory>& view_;
  const uint8_t* bytes_;
  size_t nodes_ = 0;
};

// A real segment (SegmentWriter) and a real reader of it, created once per
// process: accepted configs are published and read back through the API.
class LoopbackSegment {
 public:
  static LoopbackSegment* Get() {
    static LoopbackSegment* instance = Create();
    return instance;
  }
  publisher::SegmentWriter& writer() { return *writer_; }
  Subscriber& reader() { return *reader_; }

 private:
  static LoopbackSegment* Create() {
    static std::string name = "confcast-fuzz-" + std::to_string(getpid());
    auto opened = publisher::SegmentWriter::Open({name, 1 << 20, 0600});
    if (auto* failure = std::get_if<publisher::SegmentWriter::Failure>(&opened)) {
      std::fprintf(stderr, "fuzz: cannot create segment %s: %s\n", name.c_str(), failure->message.c_str());
      std::abort();
    }
    auto* self = new LoopbackSegment();
    self->writer_ = std::move(std::get<0>(opened));
    self->reader_ = std::make_unique<Subscriber>(name);
    std::atexit([] {
      shm_unlink(("/" + name).c_str());
      shm_unlink(("/" + name + ".confcast-lock").c_str());  // the publisher lock beside it
    });
    return self;
  }
  std::unique_ptr<publisher::SegmentWriter> writer_;
  std::unique_ptr<Subscriber> reader_;
};

inline void CheckBuilt(const nlohmann::json& config, const char* what) {
  CONFCAST_FUZZ_CHECK(config.is_object(), "%s: a validated config must be a map", what);
  auto built = snapshot::BuildSnapshot(config);
  if (std::holds_alternative<std::string>(built)) return;  // an ambiguous path: a clean rejection
  const auto& snap = std::get<snapshot::BuiltSnapshot>(built);
  const auto* bytes = reinterpret_cast<const uint8_t*>(snap.words.data());
  snapshot::View<snapshot::PrivateMemory> view(bytes, snap.size_bytes());
  CONFCAST_FUZZ_CHECK(view.LoadHeader(), "%s: built snapshot header does not verify", what);
  SnapshotChecker<snapshot::PrivateMemory> checker(view, bytes);
  const size_t nodes = checker.Check(config, "");
  CONFCAST_FUZZ_CHECK(nodes == snap.entry_count, "%s: %zu nodes but %u entries", what, nodes, snap.entry_count);
  snapshot::Found unused;
  const std::string missing = "\x01no such path";
  CONFCAST_FUZZ_CHECK(view.Find(missing.data(), missing.size(), snapshot::PathHash(missing.data(), missing.size()),
                                &unused) == snapshot::LookupStatus::kNotFound,
                      "%s: a missing path was found", what);

  // Through a real segment and a real reader.
  LoopbackSegment* loop = LoopbackSegment::Get();
  if (snap.size_bytes() > loop->writer().capacity()) return;
  std::array<unsigned char, 32> sha{};
  const uint64_t version = loop->writer().Publish(snap.words.data(), snap.words.size(), sha, 1);
  CONFCAST_FUZZ_CHECK(loop->reader().version() == version, "%s: reader sees another version", what);
  const auto& h = view.header();
  std::string whole(h.json_size, '\0');
  size_t len = 0;
  uint64_t seen = 0;
  const int rc = loop->reader().SnapshotJson(whole.data(), whole.size(), &len, &seen);
  CONFCAST_FUZZ_CHECK(rc == CONFCAST_OK && len == h.json_size && seen == version, "%s: SnapshotJson rc %d", what, rc);
  CONFCAST_FUZZ_CHECK(std::memcmp(whole.data(), bytes + view.regions().json_off, len) == 0, "%s: SnapshotJson bytes differ", what);
  int checked = 0;
  for (auto it = config.begin(); it != config.end() && checked < 16; ++it, ++checked) {
    std::string json;
    try {
      json = loop->reader().GetJson(it.key());
    } catch (const Error& e) {
      // A top-level key containing '.' names another path; only plain keys must be found.
      CONFCAST_FUZZ_CHECK(it.key().find('.') != std::string::npos || it.key().size() > snapshot::kMaxPathBytes,
                          "%s: GetJson('%s') failed: %s", what, it.key().c_str(), e.what());
      continue;
    }
    if (AllFinite(it.value()) && it.key().find('.') == std::string::npos) {
      CONFCAST_FUZZ_CHECK(nlohmann::json::parse(json, nullptr, false) == it.value(), "%s: GetJson('%s') differs",
                          what, it.key().c_str());
    }
  }
}

// A memfd that a harness rewrites per input and opens by path.
class ScratchFile {
 public:
  explicit ScratchFile(const char* name) {
    fd_ = memfd_create(name, MFD_CLOEXEC);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    // memfds are born 0777; readers refuse a segment others could write.
    if (fchmod(fd_, 0600) != 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void Write(const void* data, size_t size, size_t file_size) {
    if (ftruncate(fd_, 0) != 0 || ftruncate(fd_, static_cast<off_t>(file_size)) != 0) std::abort();
    const size_t n = std::min(size, file_size);
    if (n > 0 && pwrite(fd_, data, n, 0) != static_cast<ssize_t>(n)) std::abort();
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// A parsed node as plain JSON, aliases expanded; scalars as their kind and
// text, so that two trees compare exactly (NaN included).
inline nlohmann::json YamlToJson(const publisher::YamlDocument& document, publisher::YamlNodeId id) {
  const publisher::YamlNode& node = document.node(id);
  if (node.kind == publisher::YamlKind::kMap) {
    nlohmann::json out = nlohmann::json::object();
    for (const publisher::YamlEntry& entry : node.entries) out[entry.key] = YamlToJson(document, entry.value);
    return out;
  }
  if (node.kind == publisher::YamlKind::kList) {
    nlohmann::json out = nlohmann::json::array();
    for (publisher::YamlNodeId item : node.items) out.push_back(YamlToJson(document, item));
    return out;
  }
  return std::to_string(static_cast<int>(node.kind)) + ":" + node.text;
}

// The merge as the documentation states it: maps merge key by key, a later
// value replaces anything else.
inline nlohmann::json ModelMerge(const nlohmann::json& earlier, const nlohmann::json& later) {
  if (!earlier.is_object() || !later.is_object()) return later;
  nlohmann::json out = earlier;
  for (const auto& [key, value] : later.items()) {
    out[key] = out.contains(key) ? ModelMerge(out[key], value) : value;
  }
  return out;
}

// The bytes split in two sources at the first line break past the middle:
// both parsed, merged, compared with the model; then both validated together,
// an error naming one of the two files.
inline void FuzzMerge(std::string_view text, const publisher::Schema& schema) {
  const size_t cut = text.find('\n', text.size() / 2);
  if (cut == std::string_view::npos) return;
  const std::string first(text.substr(0, cut + 1)), second(text.substr(cut + 1));
  publisher::YamlLimits limits;
  limits.max_snapshot_bytes = 1 << 16;  // keeps the expanded model small
  auto a = publisher::ParseYamlDocument(first, "a.yaml", limits);
  auto b = publisher::ParseYamlDocument(second, "b.yaml", limits);
  if (std::holds_alternative<publisher::YamlDocument>(a) && std::holds_alternative<publisher::YamlDocument>(b)) {
    const publisher::YamlDocument& da = std::get<publisher::YamlDocument>(a);
    const publisher::YamlDocument& db = std::get<publisher::YamlDocument>(b);
    const nlohmann::json expected = ModelMerge(YamlToJson(da, da.root), YamlToJson(db, db.root));
    std::vector<publisher::YamlDocument> documents;
    documents.push_back(da);
    documents.push_back(db);
    const publisher::YamlDocument merged = publisher::MergeYamlDocuments(std::move(documents), {"a.yaml", "b.yaml"});
    CONFCAST_FUZZ_CHECK(YamlToJson(merged, merged.root) == expected, "merge: the merged tree differs from the model");
    for (const publisher::YamlNode& node : merged.nodes) {
      CONFCAST_FUZZ_CHECK(node.position.source < 2, "merge: a node names no source file");
    }
  }
  auto result = publisher::ParseAndValidateSources({{"a.yaml", first}, {"b.yaml", second}}, schema, false, 1 << 20);
  if (auto* error = std::get_if<publisher::ConfigError>(&result)) {
    CheckError(*error, error->file == "a.yaml" ? std::string_view(first) : std::string_view(second), "merge");
    CONFCAST_FUZZ_CHECK(error->file == "a.yaml" || error->file == "b.yaml", "merge: the error names no source");
  } else {
    CheckBuilt(std::get<publisher::ValidatedConfig>(result).config, "merge");
  }
}

}  // namespace detail

// 1. Config bytes -> ParseAndValidate (built-in schema, lenient; a schema
//    file's schema, strict) -> BuildSnapshot -> every path looked up ->
//    published into a real segment and read back. Then the same bytes as two
//    sources (split at a line break past the middle) merged and validated.
inline int FuzzConfig(const uint8_t* data, size_t size) {
  static const publisher::Schema builtin = publisher::Schema::HolmesGpt();
  static const publisher::Schema rich = [] {
    auto loaded = publisher::Schema::FromYaml(kRichSchemaYaml, "rich-schema.yaml");
    if (auto* error = std::get_if<publisher::ConfigError>(&loaded)) {
      std::fprintf(stderr, "fuzz: the rich schema does not load: %s\n", error->ToString().c_str());
      std::abort();
    }
    return std::get<publisher::Schema>(std::move(loaded));
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  struct Variant {
    const publisher::Schema* schema;
    bool strict;
    const char* name;
  };
  for (const Variant& v : {Variant{&builtin, false, "built-in schema"}, Variant{&rich, true, "rich schema, strict"}}) {
    // The loopback segment's capacity, as the publisher passes its own: an
    // amplifying input is then refused as too_large after bounded work.
    auto result = publisher::ParseAndValidate(text, "fuzz.yaml", *v.schema, v.strict, 1 << 20);
    if (auto* error = std::get_if<publisher::ConfigError>(&result)) {
      detail::CheckError(*error, text, v.name);
      CONFCAST_FUZZ_CHECK(error->reason == publisher::Reason::kParse || error->reason == publisher::Reason::kValidate ||
                              error->reason == publisher::Reason::kTooLarge,
                          "%s: a parse must fail as parse, validate or too_large, got %s", v.name,
                          publisher::ReasonName(error->reason));
      CONFCAST_FUZZ_CHECK(error->file == "fuzz.yaml", "%s: the message must name the file", v.name);
      continue;
    }
    const auto& valid = std::get<publisher::ValidatedConfig>(result);
    for (const std::string& warning : valid.warnings) {
      CONFCAST_FUZZ_CHECK(warning.find('\n') == std::string::npos, "%s: warning is not one line", v.name);
    }
    detail::CheckBuilt(valid.config, v.name);
  }
  detail::FuzzMerge(text, builtin);
  return 0;
}

// 3. Schema-file bytes -> Schema::FromFile; a schema that loads then
//    validates a few configs (its own defaults, the bytes themselves).
inline int FuzzSchema(const uint8_t* data, size_t size) {
  static detail::ScratchFile file("confcast-fuzz-schema");
  file.Write(data, size, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = publisher::Schema::FromFile(file.path());
  if (auto* error = std::get_if<publisher::ConfigError>(&loaded)) {
    detail::CheckError(*error, text, "schema");
    CONFCAST_FUZZ_CHECK(error->file == file.path(), "schema: the message must name the file");
    return 0;
  }
  const publisher::Schema& schema = std::get<publisher::Schema>(loaded);
  static const std::string_view kConfigs[] = {
      "{}\n",
      "service: {name: a, port: 1, mode: Drain, ratio: 0.25}\nupstreams: {x: {url: 'http://h', tags: [t]}}\n",
      "llm: {model: m, max_retries: 3, temperature: 1}\ntoolsets: {a: {enabled: true}}\nlog_level: debug\n",
      "a: [1, 2.5, true, null, s]\nb: {c: {d: e}}\n",
  };
  for (std::string_view config : kConfigs) {
    for (bool strict : {false, true}) {
      auto result = publisher::ParseAndValidate(config, "config.yaml", schema, strict);
      if (auto* error = std::get_if<publisher::ConfigError>(&result)) {
        detail::CheckError(*error, config, "config against fuzzed schema");
      } else {
        detail::CheckBuilt(std::get<publisher::ValidatedConfig>(result).config, "config against fuzzed schema");
      }
    }
  }
  auto self = publisher::ParseAndValidate(text, "self.yaml", schema, false);
  if (auto* valid = std::get_if<publisher::ValidatedConfig>(&self)) detail::CheckBuilt(valid->config, "schema as config");
  return 0;
}

// 2. Arbitrary bytes as a segment -> Subscriber open (verify), every getter,
//    Key reads, Pin and the pinned getters, snapshot JSON, Info, Wait.
//
// Input: byte 0 picks the mode. Mode 3 ("raw"): the rest is the segment file
// as is, so the header checks themselves get fuzzed. Otherwise ("shaped"):
// bytes 0..31 are control bytes and the rest is the active slot's snapshot
// data, in a segment whose identity (magic, layout, sizes) is set right, so
// most inputs reach the snapshot lookup.
//   ctl[1]  flags: 1 active slot index, 2 active_slot garbage (ctl[8..15]),
//           4 version 0, 8 stats copy from data, 16 data_size from ctl[24..31],
//           32 other slot holds a copy mid-write, 64 retired, 128 file shorter
//   ctl[2]  extra capacity / 8;  ctl[3] with flag 128: bytes cut off / 64
//   ctl[4]  0xA5: the active slot's seq is odd (a reader then spins its bound)
//   ctl[8..15] version;  ctl[16..23] stats_seq;  ctl[24..31] data_size
inline constexpr size_t kSegmentControlBytes = 32;

namespace detail {

inline uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

// Printable NUL-terminated runs in the data: the paths and strings a real
// snapshot holds, so lookups by them reach deep into the table.
inline std::vector<std::string> CandidatePaths(const uint8_t* data, size_t size) {
  std::vector<std::string> paths = {"",          "llm",           "llm.model",  "llm.max_retries",
                                    "llm.temperature", "toolsets", "toolsets.kubernetes/core.enabled",
                                    "log_level", "a.list.0",      std::string(5000, 'x')};
  size_t start = 0;
  for (size_t i = 0; i < size && paths.size() < 48; ++i) {
    const unsigned char c = data[i];
    if (c >= 0x20 && c < 0x7f) continue;
    if (c == 0 && i > start && i - start <= 128) {
      paths.emplace_back(reinterpret_cast<const char*>(data) + start, i - start);
    }
    start = i + 1;
  }
  return paths;
}

inline bool KnownStatus(int rc) { return rc <= CONFCAST_OK && rc >= CONFCAST_ERR_SYSTEM; }

// Every getter of an open subscriber; when the pin succeeds, the live view
// and the pinned copy read the same bytes and must agree. `c`, a C handle on
// the same file (or null when it could not open), must answer as `sub` does.
inline void ReadEverything(const Subscriber& sub, confcast_subscriber* c, const std::vector<std::string>& paths,
                           bool spins) {
  static std::vector<std::unique_ptr<Key>> keys;  // shared across inputs: a warm cache meets another segment
  if (keys.empty()) {
    for (const char* p : {"llm.model", "llm.max_retries", "llm.temperature", "log_level", "a"}) {
      keys.push_back(std::make_unique<Key>(p));
    }
  }
  const uint64_t version = sub.version();
  confcast_info info;
  const int info_rc = sub.Info(&info);
  CONFCAST_FUZZ_CHECK(KnownStatus(info_rc), "Info rc %d", info_rc);
  if (info_rc == CONFCAST_OK) {
    CONFCAST_FUZZ_CHECK(std::strlen(info.last_error) < sizeof(info.last_error) &&
                            std::strlen(info.sha256_hex) < sizeof(info.sha256_hex),
                        "Info strings not terminated");
  }
  uint64_t by_reason[layout::kReasonCount];
  CONFCAST_FUZZ_CHECK(KnownStatus(sub.ErrorsByReason(by_reason)), "ErrorsByReason");
  uint64_t seen = 0;
  const int wait_rc = sub.Wait(version, 0, &seen);
  CONFCAST_FUZZ_CHECK(wait_rc == CONFCAST_ERR_TIMEOUT || wait_rc == CONFCAST_ERR_INCOMPATIBLE || wait_rc == CONFCAST_OK,
                      "Wait(after current, 0) rc %d", wait_rc);
  if (version > 0) {
    CONFCAST_FUZZ_CHECK(sub.Wait(version - 1, 0, &seen) == CONFCAST_OK && seen == version, "Wait(after v-1)");
  }
  if (spins) {
    // An odd sequence in the active slot: each read spins to its bound; one is enough.
    int64_t i = 0;
    CONFCAST_FUZZ_CHECK(sub.Get("llm.max_retries", &i) == CONFCAST_ERR_CORRUPT, "odd seq must end corrupt");
    return;
  }
  // The C ABI's key handles, as long-lived as the Keys (and freed at exit,
  // so that LeakSanitizer has nothing to say).
  using CKey = std::unique_ptr<confcast_key, void (*)(confcast_key*)>;
  static std::vector<CKey> c_keys;
  if (c_keys.empty()) {
    for (auto& key : keys) {
      confcast_key* k = nullptr;
      CONFCAST_FUZZ_CHECK(confcast_key_new(key->path().c_str(), &k) == CONFCAST_OK, "confcast_key_new");
      c_keys.emplace_back(k, confcast_key_free);
    }
  }
  for (size_t k = 0; k < keys.size(); ++k) {
    for (int round = 0; round < 2; ++round) {  // cold, then warm
      int64_t i = 0;
      double d = 0;
      bool b = false;
      const int ri = sub.Get(*keys[k], &i);
      CONFCAST_FUZZ_CHECK(KnownStatus(ri), "Key int");
      CONFCAST_FUZZ_CHECK(KnownStatus(sub.Get(*keys[k], &d)), "Key double");
      CONFCAST_FUZZ_CHECK(KnownStatus(sub.Get(*keys[k], &b)), "Key bool");
      if (c != nullptr) {
        int64_t ci = 0;
        const int rci = confcast_get_int_key(c, c_keys[k].get(), &ci, nullptr);
        CONFCAST_FUZZ_CHECK(rci == ri && (ri != CONFCAST_OK || ci == i), "C key int of '%s': %d vs %d",
                            keys[k]->path().c_str(), rci, ri);
        int cb = 0;
        CONFCAST_FUZZ_CHECK(KnownStatus(confcast_get_bool_key(c, c_keys[k].get(), &cb, nullptr)), "C key bool");
        char s[8];
        size_t len = 0;
        CONFCAST_FUZZ_CHECK(KnownStatus(confcast_get_string_key(c, c_keys[k].get(), s, sizeof(s), &len, nullptr)),
                            "C key string");
      }
    }
  }
  Snapshot pinned;
  const int pin_rc = sub.TryPin(&pinned);
  CONFCAST_FUZZ_CHECK(KnownStatus(pin_rc), "TryPin rc %d", pin_rc);
  const bool compare = pin_rc == CONFCAST_OK;
  if (compare) {
    CONFCAST_FUZZ_CHECK(pinned.sha256_hex().size() == 64, "sha256_hex");
    std::string_view all;
    CONFCAST_FUZZ_CHECK(KnownStatus(pinned.GetJson("", &all)), "pinned root json");
  }
  char small[5];
  std::vector<char> big(1 << 16);
  for (const std::string& path : paths) {
    int64_t i = 0, pi = 0;
    double d = 0, pd = 0;
    bool b = false, pb = false;
    const int ri = sub.Get(path, &i);
    const int rd = sub.Get(path, &d);
    const int rb = sub.Get(path, &b);
    CONFCAST_FUZZ_CHECK(KnownStatus(ri) && KnownStatus(rd) && KnownStatus(rb), "typed get of '%s'", path.c_str());
    // The C ABI's read by NUL-terminated path answers the same: the first
    // call learns the place, the second uses it.
    const bool c_path = c != nullptr && path.find('\0') == std::string::npos;
    for (int round = 0; c_path && round < 2; ++round) {
      int64_t ci = 0;
      int cb = 0;
      const int rci = confcast_get_int(c, path.c_str(), &ci, nullptr);
      CONFCAST_FUZZ_CHECK(rci == ri && (ri != CONFCAST_OK || ci == i), "C path int of '%.64s' (%zu bytes): %d, by length: %d",
                          path.c_str(), path.size(), rci, ri);
      const int rcb = confcast_get_bool(c, path.c_str(), &cb, nullptr);
      CONFCAST_FUZZ_CHECK(rcb == rb && (rb != CONFCAST_OK || (cb != 0) == b), "C path bool of '%.64s' differs",
                          path.c_str());
    }
    size_t len = 0;
    const int rs = sub.GetString(path, big.data(), big.size(), &len);
    CONFCAST_FUZZ_CHECK(KnownStatus(rs), "GetString");
    if (rs == CONFCAST_OK) CONFCAST_FUZZ_CHECK(len < big.size() && big[len] == '\0', "GetString not terminated");
    const std::string live_string = rs == CONFCAST_OK ? std::string(big.data(), len) : std::string();
    const int rs_small = sub.GetString(path, small, sizeof(small), &len);
    CONFCAST_FUZZ_CHECK(KnownStatus(rs_small), "GetString small");
    if (rs_small == CONFCAST_ERR_TRUNCATED) CONFCAST_FUZZ_CHECK(small[sizeof(small) - 1] == '\0', "truncated not terminated");
    CONFCAST_FUZZ_CHECK(KnownStatus(sub.GetString(path, nullptr, 0, &len)), "GetString cap 0");
    const int rj = sub.GetJson(path, big.data(), big.size(), &len);
    CONFCAST_FUZZ_CHECK(KnownStatus(rj), "GetJson");
    const std::string live_json = rj == CONFCAST_OK ? std::string(big.data(), len) : std::string();
    if (c_path) {
      const int rcs = confcast_get_string(c, path.c_str(), big.data(), big.size(), &len, nullptr);
      CONFCAST_FUZZ_CHECK(rcs == rs && (rs != CONFCAST_OK || std::string_view(big.data(), len) == live_string),
                          "C path string of '%.64s' differs", path.c_str());
      const int rcj = confcast_get_json(c, path.c_str(), big.data(), big.size(), &len, nullptr);
      CONFCAST_FUZZ_CHECK(rcj == rj && (rj != CONFCAST_OK || std::string_view(big.data(), len) == live_json),
                          "C path json of '%.64s' differs", path.c_str());
    }
    CONFCAST_FUZZ_CHECK(KnownStatus(sub.GetJson(path, small, sizeof(small), &len)), "GetJson small");
    if (!compare) continue;
    CONFCAST_FUZZ_CHECK(pinned.Get(path, &pi) == ri && (ri != CONFCAST_OK || pi == i), "pinned int of '%s' differs",
                        path.c_str());
    const int prd = pinned.Get(path, &pd);
    CONFCAST_FUZZ_CHECK(prd == rd && (rd != CONFCAST_OK || std::memcmp(&pd, &d, 8) == 0), "pinned double differs");
    CONFCAST_FUZZ_CHECK(pinned.Get(path, &pb) == rb && (rb != CONFCAST_OK || pb == b), "pinned bool differs");
    std::string_view ps;
    const int prs = pinned.Get(path, &ps);
    // The live read copies into a 64 KiB buffer: longer strings are TRUNCATED there.
    if (rs != CONFCAST_ERR_TRUNCATED) {
      CONFCAST_FUZZ_CHECK(prs == rs && (rs != CONFCAST_OK || ps == live_string), "pinned string of '%s' differs",
                          path.c_str());
    }
    std::string_view pj;
    const int prj = pinned.GetJson(path, &pj);
    if (rj != CONFCAST_ERR_TRUNCATED) {
      CONFCAST_FUZZ_CHECK(prj == rj && (rj != CONFCAST_OK || pj == live_json), "pinned json of '%s' differs: %d vs %d, %zu vs %zu",
                          path.c_str(), prj, rj, pj.size(), live_json.size());
    }
    (void)pinned.TypeOf(path);
  }
  size_t len = 0;
  CONFCAST_FUZZ_CHECK(KnownStatus(sub.SnapshotJson(big.data(), big.size(), &len)), "SnapshotJson");
  CONFCAST_FUZZ_CHECK(KnownStatus(sub.SnapshotJson(nullptr, 0, &len)), "SnapshotJson cap 0");
}

}  // namespace detail

inline int FuzzSegment(const uint8_t* data, size_t size) {
  static detail::ScratchFile file("confcast-fuzz-segment");
  if (size == 0) return 0;
  std::vector<uint8_t> segment;
  size_t file_size = 0;
  std::vector<std::string> paths;
  if ((data[0] & 3) == 3 || size < kSegmentControlBytes) {
    segment.assign(data + 1, data + size);
    file_size = segment.size();
    paths = detail::CandidatePaths(segment.data(), segment.size());
  } else {
    const uint8_t* ctl = data;
    const uint8_t* snap = data + kSegmentControlBytes;
    const size_t snap_size = size - kSegmentControlBytes;
    const uint8_t flags = ctl[1];
    const uint64_t capacity = ((std::max<size_t>(snap_size, 64) + 7) & ~size_t{7}) + uint64_t{ctl[2]} * 8;
    segment.assign(layout::SegmentSize(capacity), 0);
    auto* h = reinterpret_cast<layout::SegmentHeader*>(segment.data());
    h->magic = layout::kMagic;
    h->layout_version = layout::kLayoutVersion;
    h->layout_signature = layout::Signature();
    h->segment_size = segment.size();
    h->slot_capacity = capacity;
    h->slot_count = layout::kSlotCount;
    h->slot_header_size = sizeof(layout::SlotHeader);
    h->slot_stride = layout::SlotStride(capacity);
    const uint64_t version = (flags & 4) ? 0 : detail::Le64(ctl + 8);
    const uint64_t active = flags & 1;
    h->active_slot = (flags & 2) ? detail::Le64(ctl + 8) : active;
    h->version = version;
    h->change_futex = 7;
    h->publisher_pid = 1;
    h->heartbeat_unix_ns = 1;
    h->retired = (flags & 64) ? 1 : 0;
    h->stats_seq = detail::Le64(ctl + 16);
    for (auto& stats : h->stats) {
      stats.reload_total = 3;
      stats.last_error_len = ctl[5];
      std::memset(stats.last_error, 'e', sizeof(stats.last_error));
    }
    if (flags & 8) {
      std::memcpy(&h->stats[h->stats_seq & 1], snap, std::min(snap_size, sizeof(layout::Stats)));
    }
    const uint64_t stride = h->slot_stride;
    auto* slot = reinterpret_cast<layout::SlotHeader*>(segment.data() + layout::kHeaderSize + active * stride);
    slot->seq = ctl[4] == 0xA5 ? 3 : 2;
    slot->version = version;
    slot->published_unix_ns = 5;
    slot->data_size = (flags & 16) ? detail::Le64(ctl + 24) : ((snap_size + 7) & ~size_t{7});
    std::memcpy(slot->sha256, ctl, 32);
    std::memcpy(reinterpret_cast<uint8_t*>(slot) + sizeof(layout::SlotHeader), snap, snap_size);
    if (flags & 32) {
      auto* other = reinterpret_cast<layout::SlotHeader*>(segment.data() + layout::kHeaderSize + (active ^ 1) * stride);
      other->seq = 1;
      other->version = version + 1;
      other->data_size = slot->data_size;
      std::memcpy(reinterpret_cast<uint8_t*>(other) + sizeof(layout::SlotHeader), snap, snap_size / 2);
    }
    file_size = segment.size();
    if (flags & 128) file_size -= std::min<size_t>(file_size, size_t{ctl[3]} * 64 + 1);
    paths = detail::CandidatePaths(snap, snap_size);
  }
  file.Write(segment.data(), segment.size(), file_size);
  // An odd sequence in the slot readers use makes each read spin to its
  // bound (a correct writer never leaves one there); the harness then keeps
  // to one read, or every input of that kind would take seconds.
  bool spins = false;
  if (segment.size() >= layout::kHeaderSize) {
    const uint64_t active = detail::Le64(segment.data() + offsetof(layout::SegmentHeader, active_slot));
    const uint64_t stride = detail::Le64(segment.data() + offsetof(layout::SegmentHeader, slot_stride));
    if (active < layout::kSlotCount && stride < segment.size()) {
      const uint64_t seq_off = layout::kHeaderSize + active * stride;
      spins = seq_off + 8 <= segment.size() && (detail::Le64(segment.data() + seq_off) & 1) != 0;
    }
  }
  try {
    Subscriber sub(file.path());
    confcast_subscriber* c = nullptr;
    if (confcast_open(file.path().c_str(), &c) != CONFCAST_OK) c = nullptr;
    const std::unique_ptr<confcast_subscriber, void (*)(confcast_subscriber*)> close_c(c, confcast_close);
    detail::ReadEverything(sub, c, paths, spins);
  } catch (const Error& e) {
    const int rc = e.status();
    CONFCAST_FUZZ_CHECK(rc == CONFCAST_ERR_CORRUPT || rc == CONFCAST_ERR_INCOMPATIBLE || rc == CONFCAST_ERR_NO_SEGMENT,
                        "open failed with an unexpected status %d: %s", rc, e.what());
  }
  return 0;
}

// Builds a shaped segment-fuzzer input from a real snapshot (seeds).
inline std::vector<uint8_t> SegmentSeed(const snapshot::BuiltSnapshot& snap, uint64_t version, uint8_t flags) {
  std::vector<uint8_t> out(kSegmentControlBytes + snap.size_bytes(), 0);
  out[0] = 0;
  out[1] = flags;
  std::memcpy(out.data() + 8, &version, 8);
  std::memcpy(out.data() + kSegmentControlBytes, snap.words.data(), snap.size_bytes());
  return out;
}

}  // namespace confcast::fuzz

#endif  // CONFCAST_TESTS_FUZZ_FUZZ_TARGETS_HPP_
