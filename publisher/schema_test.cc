// Tests of the schemas and ParseAndValidate: the built-in HolmesGPT schema
// (defaults, types, bounds, enum, URL, toolsets, unknown keys, ambiguous
// paths), a custom --schema file (wildcards, enum, required, bounds, lists,
// open maps), and every way a schema file itself can be wrong.
#include "schema.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include <filesystem>
#include <regex>

#include "config_file.hpp"
#include "config_test_support.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher {
namespace {

using nlohmann::json;
using test_support::ReadFile;
using test_support::TempDir;
using testing_support::ConfigDataDir;
using testing_support::ErrorOf;
using testing_support::IsError;

ValidatedConfig ValidOk(std::string_view text, const Schema& schema = Schema::HolmesGpt(), bool strict = false) {
  auto result = ParseAndValidate(text, "c.yaml", schema, strict);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return ValidatedConfig{};
  }
  return std::get<ValidatedConfig>(std::move(result));
}

ConfigError Invalid(std::string_view text, const Schema& schema = Schema::HolmesGpt(), bool strict = false) {
  return ErrorOf(ParseAndValidate(text, "c.yaml", schema, strict));
}

Schema LoadSchema(std::string_view text) {
  auto result = Schema::FromYaml(text, "s.yaml");
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected schema error: " << error->ToString();
    return Schema::HolmesGpt();
  }
  return std::get<Schema>(std::move(result));
}

ConfigError BadSchema(std::string_view text) { return ErrorOf(Schema::FromYaml(text, "s.yaml")); }

Schema AppSchema() {
  auto result = Schema::FromFile((ConfigDataDir() / "app_schema.yaml").string());
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "app schema: " << error->ToString();
    return Schema::HolmesGpt();
  }
  return std::get<Schema>(std::move(result));
}

const json kHolmesDefaults = json::parse(R"({
  "llm": {"model": "gpt-4o", "provider": "openai", "endpoint": null, "api_key": null, "max_retries": 3,
          "timeout_seconds": 60, "temperature": 0.0},
  "toolsets": {},
  "log_level": "INFO"})");

// ---- the built-in HolmesGPT schema ---------------------------------------

TEST(HolmesGptSchema, LoadsAndIsTheDefault) {
  EXPECT_EQ(Schema::HolmesGpt().source(), "<built-in HolmesGPT schema>");
  EXPECT_EQ(Schema().source(), "<built-in HolmesGPT schema>");
  // The embedded text is an ordinary schema file.
  LoadSchema(HolmesGptSchemaYaml());
}

TEST(HolmesGptSchema, MissingFieldsTakeTheirDefaults) {
  const ValidatedConfig minimal = ValidOk("log_level: info\n");
  EXPECT_EQ(minimal.config, kHolmesDefaults);
  EXPECT_TRUE(minimal.warnings.empty());

  json expected = kHolmesDefaults;
  expected["llm"]["model"] = "claude-3-5-sonnet";
  EXPECT_EQ(ValidOk(ReadFile(ConfigDataDir() / "holmesgpt_minimal.yaml")).config, expected);

  expected = kHolmesDefaults;
  expected["llm"]["max_retries"] = 0;
  EXPECT_EQ(ValidOk("llm: {max_retries: 0}\n").config, expected);
  EXPECT_EQ(ValidOk("llm: {}\n").config, kHolmesDefaults);
  EXPECT_EQ(ValidOk("toolsets: {}\n").config, kHolmesDefaults);
}

TEST(HolmesGptSchema, IntegersStayIntegersAndFloatsFloats) {
  const json config = ValidOk("llm: {max_retries: 7, temperature: 1}\n").config;
  EXPECT_TRUE(config["llm"]["max_retries"].is_number_integer());
  EXPECT_TRUE(config["llm"]["timeout_seconds"].is_number_integer());
  EXPECT_TRUE(config["llm"]["temperature"].is_number_float());  // an int in YAML is taken as a float
  EXPECT_EQ(config["llm"]["temperature"].get<double>(), 1.0);
  EXPECT_TRUE(ValidOk("log_level: info\n").config["llm"]["temperature"].is_number_float());
  EXPECT_EQ(ValidOk("llm: {temperature: 2}\n").config["llm"]["temperature"].get<double>(), 2.0);
  EXPECT_EQ(ValidOk("llm: {temperature: 0.7}\n").config["llm"]["temperature"].get<double>(), 0.7);
  EXPECT_EQ(ValidOk("llm: {max_retries: 0x0A}\n").config["llm"]["max_retries"].get<int64_t>(), 10);
}

TEST(HolmesGptSchema, ACompleteConfigFromAFile) {
  const std::string path = (ConfigDataDir() / "holmesgpt_good.yaml").string();
  auto read = ReadConfigFile(path, 1 << 20);
  ASSERT_TRUE(std::holds_alternative<FileBytes>(read));
  const ValidatedConfig result = ValidOk(std::get<FileBytes>(read).bytes);
  EXPECT_TRUE(result.warnings.empty()) << result.warnings.front();
  EXPECT_EQ(result.config, json::parse(R"({
    "llm": {"model": "gpt-4o-mini", "provider": "azure",
            "endpoint": "https://example.openai.azure.com/openai/v1",
            "max_retries": 5, "timeout_seconds": 120, "temperature": 1.0, "api_key": null},
    "toolsets": {
      "kubernetes/core": {"enabled": true},
      "prometheus/metrics": {"enabled": false,
                             "config": {"url": "http://prometheus:9090", "labels": ["a", "b"]}},
      "internet": {}},
    "log_level": "WARNING"})"));
}

// Valid YAML escapes that yaml-cpp decodes to non-UTF-8 bytes used to be
// refused at publish time ("validate" error without a position).
TEST(HolmesGptSchema, YamlCharacterEscapesArePublishedAsUtf8) {
  const json config = ValidOk("llm: {model: \"a\\Nb\\_c\\Ld\\Pe\"}\n").config;
  const std::string expected = "a\xC2\x85" "b\xC2\xA0" "c\xE2\x80\xA8" "d\xE2\x80\xA9" "e";
  EXPECT_EQ(config["llm"]["model"].get<std::string>(), expected);
  const auto built = snapshot::BuildSnapshot(config);
  EXPECT_TRUE(std::holds_alternative<snapshot::BuiltSnapshot>(built))
      << "the snapshot builder refused it: " << std::get<std::string>(built);

  const std::string literal = "caf\xC3\xA9\xE2\x80\xA6 \xC3\x85\xC3\xA0";  // café… Åà
  EXPECT_EQ(ValidOk("llm: {model: \"" + literal + "\"}\n").config["llm"]["model"].get<std::string>(), literal);
}

TEST(HolmesGptSchema, WrongTypesAndRangesAreRejectedWithPositionAndExpectation) {
  EXPECT_TRUE(IsError(Invalid(ReadFile(ConfigDataDir() / "bad_max_retries.yaml")), Reason::kValidate, 3, 16,
                      "llm.max_retries", "expected an integer from 0 to 10, got 42"));
  EXPECT_EQ(Invalid("llm:\n  max_retries: 42\n").ToString(),
            "c.yaml:2:16: llm.max_retries: expected an integer from 0 to 10, got 42");
  EXPECT_TRUE(IsError(Invalid("llm: {max_retries: -1}\n"), Reason::kValidate, 1, 20, "llm.max_retries",
                      "expected an integer from 0 to 10, got -1"));
  EXPECT_TRUE(IsError(Invalid("llm: {max_retries: 3.0}\n"), Reason::kValidate, 1, 20, "llm.max_retries",
                      "expected an integer from 0 to 10, got 3.0"));
  EXPECT_TRUE(IsError(Invalid("llm: {max_retries: true}\n"), Reason::kValidate, 1, 20, "llm.max_retries",
                      "got true"));
  EXPECT_TRUE(IsError(Invalid("llm: {max_retries: \"3\"}\n"), Reason::kValidate, 1, 20, "llm.max_retries",
                      "got \"3\""));
  EXPECT_TRUE(IsError(Invalid("llm:\n  timeout_seconds: 0\n"), Reason::kValidate, 2, 20, "llm.timeout_seconds",
                      "expected an integer from 1 to 3600, got 0"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  timeout_seconds: 3601\n"), Reason::kValidate, 2, 20, "llm.timeout_seconds",
                      "expected an integer from 1 to 3600, got 3601"));
  ValidOk("llm:\n  timeout_seconds: 3600\n");
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: 2.5\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "expected a number from 0.0 to 2.0, got 2.5"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: -0.1\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "got -0.1"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: .nan\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "got .nan"));
  // A bool is not a number.
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: true\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "expected a number from 0.0 to 2.0, got true"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: '0.5'\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "got \"0.5\""));
  EXPECT_TRUE(IsError(Invalid("llm:\n  model: 123\n"), Reason::kValidate, 2, 10, "llm.model",
                      "expected a non-empty string, got 123 (quote it to make it a string)"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  model: ''\n"), Reason::kValidate, 2, 10, "llm.model",
                      "expected a non-empty string, got \"\""));
  EXPECT_TRUE(IsError(Invalid("llm:\n  provider: '   '\n"), Reason::kValidate, 2, 13, "llm.provider",
                      "expected a non-empty string"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  model: [a]\n"), Reason::kValidate, 2, 10, "llm.model", "got a list"));
  // An empty value is reported at its key, where the user looks.
  EXPECT_TRUE(IsError(Invalid("llm:\n  model:\n  provider: x\n"), Reason::kValidate, 2, 3, "llm.model",
                      "expected a non-empty string, got an empty value"));
  EXPECT_TRUE(IsError(Invalid("llm: 5\n"), Reason::kValidate, 1, 6, "llm", "expected a map, got 5"));
  EXPECT_TRUE(IsError(Invalid("llm:\nlog_level: info\n"), Reason::kValidate, 1, 1, "llm",
                      "expected a map, got an empty value (write {} for an empty map)"));
}

// JSON has no .inf or .nan (nlohmann writes null) while the typed getters
// would return the double, so the two views of one value would disagree.
TEST(HolmesGptSchema, NonFiniteNumbersAreRejectedEverywhere) {
  const std::string hint = "is not a finite number (.inf/.nan cannot be published as JSON)";
  // Free-form: an unknown key, nested in maps and lists, in any spelling.
  EXPECT_TRUE(IsError(Invalid("llm: {model: m}\nlimit: .inf\n"), Reason::kValidate, 2, 8, "limit", ".inf " + hint));
  EXPECT_TRUE(IsError(Invalid("extra:\n  a: [1, -.Inf]\n"), Reason::kValidate, 2, 10, "extra.a.1", "-.Inf " + hint));
  EXPECT_TRUE(IsError(Invalid("extra: {x: {y: .NaN}}\n"), Reason::kValidate, 1, 16, "extra.x.y", ".NaN " + hint));
  EXPECT_TRUE(IsError(Invalid("extra: !!float .nan\n"), Reason::kValidate, 1, 8, "extra", ".nan " + hint));
  EXPECT_TRUE(IsError(Invalid("toolsets:\n  kubectl: {enabled: true, depth: +.inf}\n"), Reason::kValidate, 2, 35,
                      "toolsets.kubectl.depth", "+.inf " + hint));
  // Through an alias the error names the path of the first use, in file order.
  EXPECT_TRUE(IsError(Invalid("extra: [&x .inf]\nmore: *x\n"), Reason::kValidate, 1, 9, "extra.0", hint));
  // A typed float field says what it expects, as for any other bad number.
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: .inf\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "expected a number from 0.0 to 2.0, got .inf (.inf/.nan cannot be published as JSON)"));
  EXPECT_TRUE(IsError(Invalid("llm:\n  temperature: .nan\n"), Reason::kValidate, 2, 16, "llm.temperature",
                      "expected a number from 0.0 to 2.0, got .nan (.inf/.nan cannot be published as JSON)"));
  // Strings that spell them, and huge finite numbers, are fine.
  const json config =
      ValidOk("extra: {a: '.inf', b: \".nan\", c: 1.7976931348623157e308, d: -1e-320, e: inf, f: nan}\n").config;
  EXPECT_EQ(config["extra"], json::parse(R"({"a": ".inf", "b": ".nan", "c": 1.7976931348623157e308,
                                             "d": -1e-320, "e": "inf", "f": "nan"})"));
}

TEST(HolmesGptSchema, TheFirstErrorInFileOrderIsReported) {
  EXPECT_TRUE(IsError(Invalid("log_level: loud\nllm:\n  max_retries: 42\n"), Reason::kValidate, 1, 12, "log_level",
                      "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), got \"loud\""));
}

TEST(HolmesGptSchema, LogLevelIsNormalisedToUpperCase) {
  for (const auto& [written, published] : std::vector<std::pair<std::string, std::string>>{
           {"debug", "DEBUG"}, {"Info", "INFO"}, {"WARNING", "WARNING"}, {"eRRoR", "ERROR"}, {"critical", "CRITICAL"}}) {
    EXPECT_EQ(ValidOk("log_level: " + written + "\n").config["log_level"], published) << written;
  }
  EXPECT_TRUE(IsError(Invalid("log_level: verbose\n"), Reason::kValidate, 1, 12, "log_level", "got \"verbose\""));
  EXPECT_TRUE(IsError(Invalid("log_level: 10\n"), Reason::kValidate, 1, 12, "log_level", "got 10"));
  EXPECT_TRUE(IsError(Invalid("log_level: null\n"), Reason::kValidate, 1, 12, "log_level", "got null"));
}

TEST(HolmesGptSchema, EndpointIsNullOrAnHttpUrl) {
  for (const char* url : {"http://localhost:8080/v1", "https://api.openai.com", "HTTPS://Example.com/x?y=1#z",
                          "http://user:pw@10.0.0.1:443/", "http://[::1]:8080/"}) {
    EXPECT_EQ(ValidOk(std::string("llm: {endpoint: \"") + url + "\"}\n").config["llm"]["endpoint"], url) << url;
  }
  EXPECT_TRUE(ValidOk("llm: {endpoint: null}\n").config["llm"]["endpoint"].is_null());
  EXPECT_TRUE(ValidOk("llm: {endpoint: ~}\n").config["llm"]["endpoint"].is_null());
  EXPECT_TRUE(ValidOk("llm:\n  endpoint:\n").config["llm"]["endpoint"].is_null());
  for (const char* bad : {"ftp://files.example.com", "localhost:8080", "http://", "https://:8080/",
                          "http://host:99999", "http://host:", "http://a b.com", "", "http//x.com"}) {
    EXPECT_TRUE(IsError(Invalid(std::string("llm:\n  endpoint: '") + bad + "'\n"), Reason::kValidate, 2, 13,
                        "llm.endpoint", "expected an http:// or https:// URL or null, got \"" + std::string(bad)))
        << bad;
  }
  EXPECT_TRUE(IsError(Invalid("llm:\n  endpoint: 8080\n"), Reason::kValidate, 2, 13, "llm.endpoint", "got 8080"));
}

TEST(HolmesGptSchema, ToolsetsAreMapsWithABoolEnabled) {
  const json config =
      ValidOk("toolsets:\n  a: {enabled: true, x: [1, {y: 2}]}\n  b: {}\n  c: {enabled: false}\n").config;
  EXPECT_EQ(config["toolsets"],
            json::parse(R"({"a": {"enabled": true, "x": [1, {"y": 2}]}, "b": {}, "c": {"enabled": false}})"));
  EXPECT_TRUE(IsError(Invalid("toolsets:\n  kubernetes/core:\n    enabled: yes\n"), Reason::kValidate, 3, 14,
                      "toolsets.kubernetes/core.enabled", "expected true or false, got \"yes\""));
  EXPECT_TRUE(IsError(Invalid("toolsets:\n  kubernetes/core: true\n"), Reason::kValidate, 2, 20,
                      "toolsets.kubernetes/core", "expected a map, got true"));
  EXPECT_TRUE(IsError(Invalid("toolsets: [a, b]\n"), Reason::kValidate, 1, 11, "toolsets", "expected a map, got a list"));
  EXPECT_TRUE(IsError(Invalid("toolsets:\n  k8s:\n    enabled: 1\n"), Reason::kValidate, 3, 14, "toolsets.k8s.enabled",
                      "got 1"));
  // Toolset contents are free-form: no warnings for them, even with --strict.
  const ValidatedConfig strict = ValidOk("toolsets:\n  k8s: {anything: {goes: here}}\n", Schema::HolmesGpt(), true);
  EXPECT_TRUE(strict.warnings.empty());
}

TEST(HolmesGptSchema, UnknownKeysAreKeptWithAWarningOrRejectedWhenStrict) {
  const std::string text = ReadFile(ConfigDataDir() / "holmesgpt_unknown_keys.yaml");
  const ValidatedConfig result = ValidOk(text);
  EXPECT_EQ(result.config["llm"]["max_retires"], 4);
  EXPECT_EQ(result.config["llm"]["max_retries"], 3);
  EXPECT_EQ(result.config["feature_x"], json::parse(R"({"enabled": true})"));
  ASSERT_EQ(result.warnings.size(), 2u);  // one per unknown key, none for what is below feature_x
  EXPECT_EQ(result.warnings[0],
            "c.yaml:3:3: llm.max_retires: unknown key (not in the schema), kept and published as-is; did you mean "
            "\"max_retries\"?");
  EXPECT_EQ(result.warnings[1], "c.yaml:4:1: feature_x: unknown key (not in the schema), kept and published as-is");

  EXPECT_TRUE(IsError(Invalid(text, Schema::HolmesGpt(), true), Reason::kValidate, 3, 3, "llm.max_retires",
                      "unknown key (not in the schema; --strict rejects unknown keys); did you mean \"max_retries\"?"));
  EXPECT_TRUE(IsError(Invalid("log_level: info\nextra: 1\n", Schema::HolmesGpt(), true), Reason::kValidate, 2, 1,
                      "extra", "--strict rejects unknown keys"));
}

TEST(HolmesGptSchema, AmbiguousDottedPathsAreRejected) {
  EXPECT_TRUE(IsError(Invalid("a.b: 1\na:\n  b: 2\n"), Reason::kValidate, 3, 3, "a.b",
                      "this node and the node at line 1, column 1 have the same dotted path"));
  EXPECT_TRUE(IsError(Invalid("a:\n  b: 2\na.b: 1\n"), Reason::kValidate, 3, 1, "a.b",
                      "this node and the node at line 2, column 3 have the same dotted path"));
  EXPECT_TRUE(IsError(Invalid("x: {\"y.z\": 1, y: {z: 2}}\n"), Reason::kValidate, 1, 19, "x.y.z",
                      "the node at line 1, column 5"));
  // The schema's own defaults count: llm.model is always there.
  EXPECT_TRUE(IsError(Invalid("llm.model: x\n"), Reason::kValidate, 1, 1, "llm.model",
                      "this key names the same path as a default the schema adds"));
  EXPECT_TRUE(IsError(Invalid("\"\": 1\n"), Reason::kValidate, 1, 1, "",
                      "an empty top-level key has the same path as the whole document"));
  // Dots alone are fine when nothing else has that path.
  EXPECT_EQ(ValidOk("toolsets:\n  kubernetes.core: {enabled: true}\n").config["toolsets"]["kubernetes.core"]["enabled"],
            true);
}

// ---- a custom --schema file -------------------------------------------------

TEST(CustomSchema, AppliesWildcardsDefaultsEnumsAndNormalisation) {
  const ValidatedConfig result = ValidOk(ReadFile(ConfigDataDir() / "app_good.yaml"), AppSchema(), true);
  EXPECT_TRUE(result.warnings.empty());
  EXPECT_EQ(result.config, json::parse(R"({
    "service": {"name": "payments", "port": 8080, "mode": "standby", "ratio": 1.0, "workers": 2},
    "upstreams": {
      "ledger": {"url": "http://ledger:8080", "timeout_ms": 1000, "tags": ["core", "sync"]},
      "fraud": {"url": "https://fraud.internal", "timeout_ms": 250}},
    "feature_flags": {"new_checkout": true, "rollout": {"percent": 10}},
    "notes": ["anything", {"goes": "here"}],
    "backup_url": null})"));
  EXPECT_TRUE(result.config["service"]["ratio"].is_number_float());
  // Absent optional fields without a default stay absent; defaults fill the rest.
  EXPECT_EQ(ValidOk("service: {name: x}\n", AppSchema()).config,
            json::parse(R"({"service": {"name": "x", "port": 8080, "mode": "active", "ratio": 0.5, "workers": 2},
                            "upstreams": {}, "feature_flags": {}})"));
}

TEST(CustomSchema, RequiredFieldsMustBeWritten) {
  const Schema schema = AppSchema();
  EXPECT_TRUE(IsError(Invalid("service:\n  port: 80\n", schema), Reason::kValidate, 2, 3, "service.name",
                      "required field is missing (expected a non-empty string) in the map that starts here"));
  // A missing parent map is built from its defaults, and its required fields are still missing.
  EXPECT_TRUE(IsError(Invalid("notes: x\n", schema), Reason::kValidate, 1, 1, "service.name",
                      "required field is missing"));
  // Required under a wildcard: every upstream needs a url.
  EXPECT_TRUE(IsError(Invalid("service: {name: a}\nupstreams:\n  ledger:\n    timeout_ms: 5\n", schema),
                      Reason::kValidate, 4, 5, "upstreams.ledger.url", "required field is missing"));
}

TEST(CustomSchema, BoundsEnumsListsAndFormats) {
  const Schema schema = AppSchema();
  const auto app = [](const std::string& service, const std::string& rest = "") {
    return "service: {name: a" + service + "}\n" + rest;
  };
  EXPECT_TRUE(IsError(Invalid(app(", port: 0"), schema), Reason::kValidate, 1, 26, "service.port",
                      "expected an integer from 1 to 65535, got 0"));
  EXPECT_TRUE(IsError(Invalid(app(", workers: 3"), schema), Reason::kValidate, 1, 29, "service.workers",
                      "expected one of 1, 2, 4, 8, got 3"));
  EXPECT_TRUE(IsError(Invalid(app(", mode: paused"), schema), Reason::kValidate, 1, 26, "service.mode",
                      "expected one of active, standby, drain (any case), got \"paused\""));
  EXPECT_TRUE(IsError(Invalid(app(", ratio: 1.5"), schema), Reason::kValidate, 1, 27, "service.ratio",
                      "expected a number from 0.0 to 1.0, got 1.5"));
  EXPECT_TRUE(IsError(Invalid(app("", "upstreams:\n  u: {url: 'http://u', timeout_ms: 0}\n"), schema),
                      Reason::kValidate, 3, 36, "upstreams.u.timeout_ms", "expected an integer of at least 1, got 0"));
  EXPECT_TRUE(IsError(Invalid(app("", "upstreams:\n  u:\n    url: http://u\n    tags:\n      - a\n      - ''\n"), schema),
                      Reason::kValidate, 7, 9, "upstreams.u.tags.1", "expected a non-empty string, got \"\""));
  EXPECT_TRUE(IsError(Invalid(app("", "upstreams:\n  u: {url: http://u, tags: a}\n"), schema), Reason::kValidate, 3,
                      28, "upstreams.u.tags", "expected a list, got \"a\""));
  EXPECT_TRUE(IsError(Invalid(app("", "backup_url: s3://bucket\n"), schema), Reason::kValidate, 2, 13, "backup_url",
                      "expected an http:// or https:// URL or null"));
  // Unknown keys inside a wildcard entry are warned about; inside an open map they are not.
  const ValidatedConfig result =
      ValidOk(app("", "upstreams:\n  u: {url: http://u, retries: 2}\nfeature_flags: {x: {y: z}}\n"), schema);
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("c.yaml:3:22: upstreams.u.retries: unknown key"), std::string::npos)
      << result.warnings[0];
}

TEST(CustomSchema, AFloatFieldWithoutBoundsStillRefusesNonFiniteNumbers) {
  const Schema schema = LoadSchema("fields:\n  - {path: x, type: float}\n  - {path: y, type: any}\n"
                                   "  - {path: z, type: float, min: -.inf, max: .inf}\n");
  EXPECT_TRUE(IsError(Invalid("x: .inf\n", schema), Reason::kValidate, 1, 4, "x",
                      "expected a number, got .inf (.inf/.nan cannot be published as JSON)"));
  EXPECT_TRUE(IsError(Invalid("y: {v: -.inf}\n", schema), Reason::kValidate, 1, 8, "y.v", "-.inf is not a finite number"));
  EXPECT_TRUE(IsError(Invalid("z: -.inf\n", schema), Reason::kValidate, 1, 4, "z", "got -.inf"));
  EXPECT_EQ(ValidOk("x: 1e308\ny: [1.5]\nz: -2\n", schema).config, json::parse(R"({"x": 1e308, "y": [1.5], "z": -2.0})"));
  // A default is published like a value: the same rule applies to it.
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: any, default: [.nan]}\n"), Reason::kValidate, 2, 36,
                      "a.0", "the default does not fit the field: .nan is not a finite number"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: float, default: .inf}\n"), Reason::kValidate, 2, 37,
                      "a", "the default does not fit the field: expected a number, got .inf"));
}

TEST(CustomSchema, SchemaFilesShareTheSizeDepthAndAliasLimits) {
  TempDir dir("config");
  EXPECT_TRUE(IsError(ErrorOf(Schema::FromFile((dir.path() / "none.yaml").string())), Reason::kIo, 0, 0, "",
                      "No such file or directory"));
  const std::string big = dir.Write("big.yaml", "fields: []\n" + std::string(Schema::kMaxFileBytes, '#'));
  EXPECT_TRUE(IsError(ErrorOf(Schema::FromFile(big)), Reason::kTooLarge, 0, 0, "", "above the limit"));
  std::string deep = "fields:\n  - path: a\n    type: any\n    default: " + std::string(70, '[') +
                     std::string(70, ']') + "\n";
  EXPECT_TRUE(IsError(ErrorOf(Schema::FromFile(dir.Write("deep.yaml", deep))), Reason::kParse, 4, 75,
                      "fields.0.default" + [] {
                        std::string path;
                        for (int i = 0; i < 61; ++i) path += ".0";
                        return path;
                      }(),
                      "nesting deeper than 64 levels"));
  const std::string laughs = dir.Write("laughs.yaml", ReadFile(ConfigDataDir() / "bad_billion_laughs.yaml"));
  EXPECT_TRUE(IsError(ErrorOf(Schema::FromFile(laughs)), Reason::kParse, 8, 63, "lol6.7", "alias expansion"));
}

TEST(CustomSchema, TheDocumentedExamplesLoad) {
  // Every ```yaml block of docs/schema.md that is a schema (has a top-level
  // "fields:") must load; the full example must equal tests/data/configs/app_schema.yaml.
  const std::string doc = ReadFile(ConfigDataDir().parent_path().parent_path().parent_path() / "docs" / "schema.md");
  ASSERT_FALSE(doc.empty());
  const std::regex block("```yaml\n([\\s\\S]*?)```");
  int schemas = 0;
  bool found_app_schema = false;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), block); it != std::sregex_iterator(); ++it) {
    const std::string text = (*it)[1].str();
    if (text.rfind("fields:", 0) != 0 && text.find("\nfields:") == std::string::npos) continue;
    ++schemas;
    LoadSchema(text);
    if (text == ReadFile(ConfigDataDir() / "app_schema.yaml")) found_app_schema = true;
  }
  EXPECT_GE(schemas, 1);  // the built-in schema is linked, not copied (builtin_schema_test.cc checks that file)
  EXPECT_TRUE(found_app_schema);
}

// ---- bad schema files ----------------------------------------------------------

TEST(BadSchema, NotAYamlMap) {
  EXPECT_TRUE(IsError(BadSchema("fields: [\n"), Reason::kParse, 2, 1, "fields", "YAML syntax error"));
  EXPECT_TRUE(IsError(BadSchema("- path: a\n  type: int\n"), Reason::kParse, 1, 1, "", "the top level is a list"));
  EXPECT_TRUE(IsError(BadSchema(""), Reason::kParse, 0, 0, "", "the file is empty"));
  EXPECT_TRUE(IsError(BadSchema("fields: []\nfields: []\n"), Reason::kParse, 2, 1, "fields", "duplicate key"));
}

TEST(BadSchema, TopLevelShape) {
  EXPECT_TRUE(IsError(BadSchema("description: x\n"), Reason::kValidate, 1, 1, "fields", "needs a \"fields\" list"));
  EXPECT_TRUE(IsError(BadSchema("fields: {a: 1}\n"), Reason::kValidate, 1, 9, "fields", "expected a list of fields"));
  EXPECT_TRUE(IsError(BadSchema("fields: []\nversion: 2\n"), Reason::kValidate, 2, 1, "version",
                      "unknown key in a schema file"));
  EXPECT_TRUE(IsError(BadSchema("fields: []\ndescription: [x]\n"), Reason::kValidate, 2, 14, "description",
                      "expected a string"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - a\n"), Reason::kValidate, 2, 5, "fields.0", "expected a field"));
  // An empty list of fields is a valid (if useless) schema: every key is unknown.
  EXPECT_EQ(ValidOk("a: 1\n", LoadSchema("fields: []\n")).warnings.size(), 1u);
}

TEST(BadSchema, FieldAttributes) {
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - type: int\n"), Reason::kValidate, 2, 5, "fields.0.path",
                      "a field needs a \"path\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - path: a\n"), Reason::kValidate, 2, 5, "fields.0.type",
                      "a field needs a \"type\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - path: a\n    type: integer\n"), Reason::kValidate, 3, 11, "fields.0.type",
                      "unknown type \"integer\"; expected one of string, int, float, bool, map, list, any"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - path: a\n    type: int\n    maximum: 3\n"), Reason::kValidate, 4, 5,
                      "fields.0.maximum", "unknown field attribute; expected one of path, type"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - path: a..b\n    type: int\n"), Reason::kValidate, 2, 11, "fields.0.path",
                      "empty segment"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - path: 5\n    type: int\n"), Reason::kValidate, 2, 11, "fields.0.path",
                      "expected a dotted path, got 5"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int}\n  - {path: a, type: string}\n"), Reason::kValidate,
                      3, 12, "fields.1.path", "\"a\" is declared twice (first at line 2)"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, required: yes}\n"), Reason::kValidate, 2, 36,
                      "fields.0.required", "expected true or false, got \"yes\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, normalize: title}\n"), Reason::kValidate, 2, 40,
                      "fields.0.normalize", "expected upper or lower, got \"title\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, format: email}\n"), Reason::kValidate, 2, 37,
                      "fields.0.format", "unknown format \"email\"; expected url"));
}

TEST(BadSchema, AttributesMustFitTheType) {
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, min: 1}\n"), Reason::kValidate, 2, 29,
                      "fields.0.min", "\"min\" applies to fields of type int, float, not string"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, open: true}\n"), Reason::kValidate, 2, 26,
                      "fields.0.open", "applies to fields of type map"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: bool, enum: [true]}\n"), Reason::kValidate, 2, 27,
                      "fields.0.enum", "applies to fields of type string, int, float"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, format: url}\n"), Reason::kValidate, 2, 26,
                      "fields.0.format", "applies to fields of type string"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, min: 1.5}\n"), Reason::kValidate, 2, 31,
                      "fields.0.min", "expected an integer, got 1.5"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: float, min: low}\n"), Reason::kValidate, 2, 33,
                      "fields.0.min", "expected a number, got \"low\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, min: 5, max: 1}\n"), Reason::kValidate, 2, 39,
                      "fields.0.max", "max is below min"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, enum: [1, two]}\n"), Reason::kValidate, 2, 36,
                      "fields.0.enum.1", "expected an integer (the field is an int), got \"two\""));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, enum: []}\n"), Reason::kValidate, 2, 35,
                      "fields.0.enum", "an enum needs at least one value"));
}

TEST(BadSchema, PathsMustFitTheTree) {
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int}\n  - {path: a.b, type: int}\n"), Reason::kValidate, 3,
                      12, "fields.1.path", "\"a\" is declared as int, so no field can be below it"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a.b, type: int}\n  - {path: a, type: string}\n"),
                      Reason::kValidate, 3, 21, "fields.1.type",
                      "\"a\" has fields below it, so its type must be map or list, not string"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: l, type: list}\n  - {path: l.x, type: int}\n"), Reason::kValidate,
                      3, 12, "fields.1.path", "\"l\" is a list; its elements are addressed with *"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: l.x, type: int}\n  - {path: l, type: list}\n"), Reason::kValidate,
                      3, 21, "fields.1.type", "cannot be a list"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: any}\n  - {path: a.b, type: int}\n"), Reason::kValidate, 3,
                      12, "fields.1.path", "\"a\" is declared as any"));
}

TEST(BadSchema, DefaultsMustFitTheirField) {
  EXPECT_TRUE(IsError(ErrorOf(Schema::FromFile((ConfigDataDir() / "bad_schema_default.yaml").string())),
                      Reason::kValidate, 6, 14, "retries",
                      "the default does not fit the field: expected an integer from 0 to 5, got 9"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, default: 5}\n"), Reason::kValidate, 2, 38, "a",
                      "the default does not fit the field: expected a string, got 5"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: string, default: null}\n"), Reason::kValidate, 2, 38, "a",
                      "expected a string, got null"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: a, type: int, required: true, default: 1}\n"), Reason::kValidate,
                      2, 42, "fields.0.default", "a required field has no default"));
  // A map default is checked against the fields below it, and filled in by their defaults.
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: m, type: map, default: {x: 1}}\n  - {path: m.y, type: int}\n"),
                      Reason::kValidate, 2, 36, "m.x",
                      "unknown key (not in the schema; a default holds only the fields declared below it)"));
  EXPECT_TRUE(IsError(BadSchema("fields:\n  - {path: m, type: map, default: {}}\n"
                                "  - {path: m.y, type: int, required: true}\n"),
                      Reason::kValidate, 2, 35, "m.y", "required field is missing"));
  const Schema filled = LoadSchema("fields:\n  - {path: m, type: map, default: {}}\n  - {path: m.y, type: int, default: 4}\n"
                                   "  - {path: e, type: string, enum: [A, B], case_insensitive: true, normalize: upper, "
                                   "default: b}\n");
  EXPECT_EQ(ValidOk("z: 1\n", filled).config, json::parse(R"({"m": {"y": 4}, "e": "B", "z": 1})"));
}

}  // namespace
}  // namespace confcast::publisher

namespace confcast::publisher {
namespace {

TEST(SnapshotCapacity, AmplifiedConfigsAreTooLargeBeforeTheyAreExpanded) {
  // 4 x 1000 bytes of keys above 8000 leaves: 60 KB of YAML, 32 MB of paths.
  std::string text = "toolsets: {";
  for (char c : {'k', 'j', 'h', 'g'}) text += std::string(1000, c) + ": {";
  for (int i = 0; i < 8000; ++i) text += (i ? ", a" : "a") + std::to_string(i) + ": 0";
  text += "}}}}}\n";
  const auto started = std::chrono::steady_clock::now();
  const ConfigError error = ErrorOf(ParseAndValidate(text, "c.yaml", Schema::HolmesGpt(), true, 1 << 20));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(error.reason, Reason::kTooLarge);
  EXPECT_EQ(error.file, "c.yaml");
  EXPECT_EQ(error.message.rfind("the validated config needs more than the segment's --capacity of 1048576 bytes of "
                                "snapshot: it would exceed it at line 1, column ",
                                0),
            0u)
      << error.message;
}

TEST(SnapshotCapacity, DefaultsCopiedUnderAWildcardCount) {
  const Schema schema = LoadSchema(
      "fields:\n"
      "  - {path: m, type: map}\n"
      "  - {path: m.*, type: map}\n"
      "  - {path: m.*.d, type: string, default: \"" + std::string(2000, 'd') + "\"}\n");
  std::string text = "m: {";
  for (int i = 0; i < 1000; ++i) text += (i ? ", a" : "a") + std::to_string(i) + ": {}";
  text += "}\n";
  // 2 MB of default strings from an 8 KB file: refused while validating.
  const ConfigError error = ErrorOf(ParseAndValidate(text, "c.yaml", schema, false, 1 << 20));
  EXPECT_EQ(error.reason, Reason::kTooLarge);
  EXPECT_NE(error.message.find("defaults included"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(", path m.a"), std::string::npos) << error.message;
  // With room for them, the same file is valid.
  auto fits = ParseAndValidate(text, "c.yaml", schema, false, 8 << 20);
  ASSERT_TRUE(std::holds_alternative<ValidatedConfig>(fits)) << std::get<ConfigError>(fits).ToString();
  EXPECT_EQ(std::get<ValidatedConfig>(fits).config["m"]["a999"]["d"], std::string(2000, 'd'));
}

}  // namespace
// ---- secret fields ------------------------------------------------------------

TEST(SecretFields, TheBuiltInApiKeyIsSecretAndNullByDefault) {
  const ValidatedConfig config = ValidOk("llm: {api_key: sk-live-1234}\n");
  EXPECT_EQ(config.config["llm"]["api_key"], "sk-live-1234");  // readers get the value
  EXPECT_EQ(SecretPaths(Schema::HolmesGpt(), config.config), std::vector<std::string>{"llm.api_key"});
  EXPECT_TRUE(ValidOk("log_level: info\n").config["llm"]["api_key"].is_null());
}

TEST(SecretFields, OnlySecretsThatHoldAValueCountAsSet) {
  // What a reader of the segment would learn: a null (unset) key tells nothing.
  const Schema& schema = Schema::HolmesGpt();
  EXPECT_EQ(SetSecretPaths(schema, ValidOk("log_level: info\n").config), std::vector<std::string>{});
  EXPECT_EQ(SecretPaths(schema, ValidOk("log_level: info\n").config), std::vector<std::string>{"llm.api_key"});
  EXPECT_EQ(SetSecretPaths(schema, ValidOk("llm: {api_key: sk-live-1234}\n").config),
            std::vector<std::string>{"llm.api_key"});
}

TEST(SecretFields, ASecretMapMakesEverythingBelowItSecretWhereverItIsMatched) {
  const Schema schema = LoadSchema(
      "fields:\n"
      "  - {path: name, type: string}\n"
      "  - {path: tools.*.token, type: string, secret: true}\n"
      "  - {path: vault, type: map, open: true, secret: true}\n"
      "  - {path: vault.pin, type: int, min: 0, max: 9999}\n");
  const ValidatedConfig config = ValidOk(
      "name: app\ntools: {a: {token: t1}, b: {token: t2, url: u}}\nvault: {pin: 1234, extra: [1, 2]}\n", schema);
  EXPECT_EQ(SecretPaths(schema, config.config),
            (std::vector<std::string>{"tools.a.token", "tools.b.token", "vault"}));
  // A field inside a secret map is secret too: its errors quote nothing.
  const ConfigError error = Invalid("vault: {pin: 123456}\n", schema);
  EXPECT_EQ(error.path, "vault.pin");
  EXPECT_EQ(error.message.find("123456"), std::string::npos) << error.message;
}

TEST(SecretFields, ErrorsAboutASecretSayWhatIsWrongWithoutTheValue) {
  for (const char* text : {"llm: {api_key: 4815162342}\n", "llm: {api_key: '   '}\n", "llm: {api_key: true}\n",
                           "llm: {api_key: [sk-in-a-list-4815]}\n", "llm: {api_key: {k: sk-in-a-map-4815}}\n"}) {
    const ConfigError error = Invalid(text);
    EXPECT_EQ(error.path, "llm.api_key") << text;
    EXPECT_EQ(error.reason, Reason::kValidate) << text;
    EXPECT_NE(error.message.find("expected"), std::string::npos) << error.message;
    for (const char* secret : {"4815162342", "sk-in-a", "true", "'   '"}) {
      EXPECT_EQ(error.ToString().find(secret), std::string::npos) << text << " -> " << error.ToString();
    }
  }
  EXPECT_NE(Invalid("llm: {api_key: ''}\n").message.find("an empty string"), std::string::npos);
  // Not secret: the value is quoted, as for every other field.
  EXPECT_NE(Invalid("llm: {model: 4815162342}\n").message.find("4815162342"), std::string::npos);
}

TEST(SecretFields, SecretIsTrueOrFalse) {
  const ConfigError error = BadSchema("fields:\n  - {path: a, type: string, secret: maybe}\n");
  EXPECT_EQ(error.path, "fields.0.secret");
  EXPECT_NE(error.message.find("true or false"), std::string::npos) << error.message;
}

}  // namespace confcast::publisher
