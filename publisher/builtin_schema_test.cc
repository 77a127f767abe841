// Tests of the built-in schema as the one source of the HolmesGPT defaults:
// the text compiled into the publisher is publisher/schemas/holmesgpt.yaml
// byte for byte, the built-in schema and `--schema` of that file judge every
// example config alike, every default the file declares is in the validated
// config, and a reader (the typed view confcast/holmesgpt.hpp) gets each of
// them from a real published segment - or a clear error for a segment
// published with another schema.
//
// Single-threaded; the segment tests use their own POSIX shm segment and
// remove it (and its lock file) at the end.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../tests/support/names.hpp"
#include "../tests/support/segment_guard.hpp"
#include "config_test_support.hpp"
#include "confcast/holmesgpt.hpp"
#include "schema.hpp"
#include "schema_node.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher {
namespace {

using nlohmann::json;
using test_support::ReadFile;
using testing_support::ConfigDataDir;

const std::string kSchemaFile = CONFCAST_BUILTIN_SCHEMA_FILE;  // publisher/CMakeLists.txt passes its path

Schema Load(std::variant<Schema, ConfigError> loaded) {
  if (const auto* error = std::get_if<ConfigError>(&loaded)) {
    ADD_FAILURE() << "schema: " << error->ToString();
    return Schema::HolmesGpt();
  }
  return std::get<Schema>(std::move(loaded));
}

Schema FileSchema() { return Load(Schema::FromFile(kSchemaFile)); }

ValidatedConfig Valid(const std::string& text, const Schema& schema) {
  auto result = ParseAndValidate(text, "config.yaml", schema, false);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return {};
  }
  return std::get<ValidatedConfig>(std::move(result));
}

// What one ParseAndValidate said, as one comparable string.
std::string Outcome(const std::string& text, const Schema& schema, bool strict) {
  auto result = ParseAndValidate(text, "config.yaml", schema, strict);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    return std::string("error ") + ReasonName(error->reason) + " " + error->ToString();
  }
  const auto& valid = std::get<ValidatedConfig>(result);
  std::string out = "valid " + valid.config.dump();
  for (const std::string& warning : valid.warnings) out += "\nwarning " + warning;
  return out;
}

// Every field of the schema outside a wildcard that has a default, with it.
void CollectDefaults(const schema_detail::SchemaNode& node, std::vector<std::pair<std::string, json>>* out) {
  if (node.default_value) out->emplace_back(node.path, *node.default_value);
  for (const auto& [name, child] : node.children) CollectDefaults(*child, out);
}

json::json_pointer Pointer(const std::string& dotted) {
  std::string pointer;
  for (char c : "." + dotted) pointer += c == '.' ? '/' : c;
  return json::json_pointer(pointer);
}

TEST(BuiltInSchema, IsTheSchemaFileByteForByte) {
  EXPECT_EQ(HolmesGptSchemaYaml(), ReadFile(kSchemaFile));
  EXPECT_EQ(Schema::HolmesGpt().source(), "<built-in HolmesGPT schema>");
  EXPECT_EQ(FileSchema().source(), kSchemaFile);
}

TEST(BuiltInSchema, JudgesEveryExampleConfigAsTheSchemaFileDoes) {
  const Schema built_in = Schema::HolmesGpt();
  const Schema from_file = FileSchema();
  const std::filesystem::path source_dir = ConfigDataDir().parent_path().parent_path().parent_path();
  std::vector<std::filesystem::path> configs{source_dir / "examples" / "holmesgpt_api" / "config.yaml"};
  for (const auto& entry : std::filesystem::directory_iterator(ConfigDataDir())) configs.push_back(entry.path());
  int valid = 0, rejected = 0;
  for (const auto& path : configs) {
    const std::string text = ReadFile(path.string());
    for (const bool strict : {false, true}) {
      const std::string outcome = Outcome(text, built_in, strict);
      EXPECT_EQ(outcome, Outcome(text, from_file, strict)) << path << (strict ? " (--strict)" : "");
      ++(outcome.rfind("valid ", 0) == 0 ? valid : rejected);
    }
  }
  // Both kinds were compared: good configs (holmesgpt_*.yaml) and bad ones (bad_*).
  EXPECT_GE(valid, 4);
  EXPECT_GE(rejected, 4);
}

TEST(BuiltInSchema, EveryDefaultOfTheFileIsPublished) {
  const std::string minimal = ReadFile((ConfigDataDir() / "holmesgpt_minimal.yaml").string());
  const json config = Valid(minimal, Schema::HolmesGpt()).config;
  // What the file itself writes: the same text against a schema without fields.
  const json written = Valid(minimal, Load(Schema::FromYaml("fields: []\n", "no-fields.yaml"))).config;

  std::vector<std::pair<std::string, json>> defaults;
  CollectDefaults(FileSchema().root(), &defaults);
  ASSERT_GE(defaults.size(), 8u) << "the HolmesGPT fields with a default";
  for (const auto& [path, value] : defaults) {
    const json::json_pointer at = Pointer(path);
    ASSERT_TRUE(config.contains(at)) << path << " is missing from the validated config";
    EXPECT_EQ(config[at], written.contains(at) ? written[at] : value) << path;
  }
}

class PublishedSegment : public ::testing::Test {
 protected:
  // Publishes `config` as confcast-publisher does and pins it with a reader.
  Snapshot PublishAndPin(const json& config) {
    if (writer_ == nullptr) {
      auto opened = SegmentWriter::Open({guard_.name(), 1 << 20, 0600});
      if (auto* failure = std::get_if<SegmentWriter::Failure>(&opened)) {
        ADD_FAILURE() << "cannot open " << guard_.name() << ": " << failure->message;
        return {};
      }
      writer_ = std::move(std::get<std::unique_ptr<SegmentWriter>>(opened));
    }
    auto built = snapshot::BuildSnapshot(config);
    if (const auto* error = std::get_if<std::string>(&built)) {
      ADD_FAILURE() << "snapshot: " << *error;
      return {};
    }
    const auto& words = std::get<snapshot::BuiltSnapshot>(built).words;
    writer_->Publish(words.data(), words.size(), std::array<unsigned char, 32>{}, RealtimeNs());
    return Subscriber(guard_.name()).Pin();
  }

  test_support::SegmentGuard guard_{test_support::UniqueName("builtin-schema")};
  std::unique_ptr<SegmentWriter> writer_;
};

TEST_F(PublishedSegment, TheTypedViewReadsEveryDefaultFromTheSnapshot) {
  const std::string minimal = ReadFile((ConfigDataDir() / "holmesgpt_minimal.yaml").string());
  const holmesgpt::Config config(PublishAndPin(Valid(minimal, Schema::HolmesGpt()).config));

  // Expected values come from the schema file, not from this test.
  const Schema schema = FileSchema();
  const auto default_of = [&](const std::string& path) {
    const schema_detail::SchemaNode* node = &schema.root();
    for (size_t start = 0, dot = 0; dot != std::string::npos; start = dot + 1) {
      dot = path.find('.', start);
      node = node->Child(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (node == nullptr) throw std::runtime_error(path + " is not in the schema file");
    }
    if (!node->default_value) throw std::runtime_error(path + " has no default in the schema file");
    return *node->default_value;
  };
  EXPECT_EQ(config.llm_model(), "claude-3-5-sonnet") << "the one field holmesgpt_minimal.yaml sets";
  EXPECT_EQ(config.llm_provider(), default_of("llm.provider").get<std::string>());
  EXPECT_TRUE(default_of("llm.endpoint").is_null());
  EXPECT_EQ(config.llm_endpoint(), std::nullopt);
  EXPECT_EQ(config.llm_max_retries(), default_of("llm.max_retries").get<int64_t>());
  EXPECT_EQ(config.llm_timeout(), default_of("llm.timeout_seconds").get<int64_t>());
  EXPECT_DOUBLE_EQ(config.llm_temperature(), default_of("llm.temperature").get<double>());
  EXPECT_EQ(json::parse(config.toolsets()), default_of("toolsets"));
  EXPECT_EQ(config.log_level(), default_of("log_level").get<std::string>());
}

TEST_F(PublishedSegment, TheTypedViewRefusesAConfigOfAnotherSchema) {
  const Schema app = Load(Schema::FromFile((ConfigDataDir() / "app_schema.yaml").string()));
  const Snapshot snap = PublishAndPin(Valid(ReadFile((ConfigDataDir() / "app_good.yaml").string()), app).config);
  try {
    holmesgpt::Config config(snap);
    ADD_FAILURE() << "a payments-api config read as HolmesGPT's, model \"" << config.llm_model() << "\"";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("is not a HolmesGPT config (llm.model)"), std::string::npos) << e.what();
  }

  // A field of the wrong type is refused too, naming it.
  json config = Valid("log_level: info\n", Schema::HolmesGpt()).config;
  config["llm"]["timeout_seconds"] = "sixty";
  try {
    holmesgpt::Config view(PublishAndPin(config));
    ADD_FAILURE() << "a string timeout read as " << view.llm_timeout();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_TYPE);
    EXPECT_NE(std::string(e.what()).find("(llm.timeout_seconds)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace confcast::publisher
