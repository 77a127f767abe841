// reload_test.cc - what a reload publishes and what it refuses: every typed
// getter (by path, by Key, pinned, the HolmesGPT view) on the published
// config, the built-in schema's defaults for missing fields, new values after
// a change (a snapshot pinned before keeps the old ones), and invalid files
// (YAML errors, schema violations, duplicate keys, an empty file) that are
// reported with their position while the last good version stays served.
//
// Waiting: version changes are awaited with Subscriber::Wait (a futex sleep
// with a deadline); things without a futex (the stats, a log line, an exit)
// are polled with a deadline.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "confcast/holmesgpt.hpp"
#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/digest.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using namespace std::chrono_literals;

using PublishedConfig = PublisherTest;

TEST_F(PublishedConfig, EachTypedGetter) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(kFullConfig));
  const uint64_t v = sub_->version();

  // Throwing getters by path.
  EXPECT_EQ(sub_->GetString("llm.model"), "gpt-4.1-mini");
  EXPECT_EQ(sub_->GetString("llm.provider"), "azure");
  EXPECT_EQ(sub_->GetString("llm.endpoint"), "https://llm.example.com/v1");
  EXPECT_EQ(sub_->GetInt("llm.max_retries"), 7);
  EXPECT_EQ(sub_->GetInt("llm.timeout_seconds"), 45);
  EXPECT_DOUBLE_EQ(sub_->GetDouble("llm.temperature"), 0.25);
  EXPECT_DOUBLE_EQ(sub_->GetDouble("llm.max_retries"), 7.0) << "a double getter also reads an int";
  EXPECT_TRUE(sub_->GetBool("toolsets.kubernetes/core.enabled"));
  EXPECT_FALSE(sub_->GetBool("toolsets.prometheus/metrics.enabled"));
  EXPECT_EQ(sub_->GetString("log_level"), "WARNING") << "published upper-case";
  EXPECT_EQ(sub_->GetInt("custom.list.1"), 20) << "unknown keys are published as they are";
  EXPECT_EQ(nlohmann::json::parse(sub_->GetJson("toolsets")),
            nlohmann::json::parse(R"({"kubernetes/core": {"enabled": true},
                                      "prometheus/metrics": {"enabled": false}, "internet": {}})"));
  EXPECT_EQ(nlohmann::json::parse(sub_->GetJson("custom.list")), nlohmann::json::parse("[10, 20, 30]"));

  // Status-returning getters, with the version read.
  int64_t i = 0;
  uint64_t read_version = 0;
  EXPECT_EQ(sub_->Get("llm.timeout_seconds", &i, &read_version), CONFCAST_OK);
  EXPECT_EQ(i, 45);
  EXPECT_EQ(read_version, v);
  EXPECT_EQ(sub_->Get("llm.model", &i), CONFCAST_ERR_TYPE);
  EXPECT_EQ(sub_->Get("llm.no_such_field", &i), CONFCAST_ERR_NOT_FOUND);
  bool b = false;
  EXPECT_EQ(sub_->Get("llm.max_retries", &b), CONFCAST_ERR_TYPE);

  // Pre-resolved keys (cold, then warm cache).
  static const Key kRetries("llm.max_retries");
  static const Key kTemperature("llm.temperature");
  static const Key kEnabled("toolsets.kubernetes/core.enabled");
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(sub_->GetInt(kRetries), 7);
    EXPECT_DOUBLE_EQ(sub_->GetDouble(kTemperature), 0.25);
    EXPECT_TRUE(sub_->GetBool(kEnabled));
  }

  // A pinned snapshot.
  const Snapshot snap = sub_->Pin();
  EXPECT_EQ(snap.version(), v);
  EXPECT_EQ(snap.sha256_hex(), Sha256Hex(kFullConfig));
  EXPECT_EQ(snap.GetString("llm.model"), "gpt-4.1-mini");
  EXPECT_EQ(snap.GetInt("llm.timeout_seconds"), 45);
  EXPECT_DOUBLE_EQ(snap.GetDouble("llm.temperature"), 0.25);
  EXPECT_FALSE(snap.GetBool("toolsets.prometheus/metrics.enabled"));
  EXPECT_EQ(snap.TypeOf("custom.ratio"), snapshot::Type::kInt) << "an unknown key keeps its YAML type";
  EXPECT_EQ(nlohmann::json::parse(snap.Json())["llm"]["provider"], "azure");

  // The HolmesGPT typed view (the original ConfigManager's getter names).
  const auto config = holmesgpt::Config::Pin(*sub_);
  EXPECT_EQ(config.version(), v);
  EXPECT_EQ(config.llm_model(), "gpt-4.1-mini");
  EXPECT_EQ(config.llm_provider(), "azure");
  EXPECT_EQ(config.llm_endpoint(), std::optional<std::string_view>("https://llm.example.com/v1"));
  EXPECT_EQ(config.llm_max_retries(), 7);
  EXPECT_EQ(config.llm_timeout(), 45);
  EXPECT_DOUBLE_EQ(config.llm_temperature(), 0.25);
  EXPECT_EQ(config.log_level(), "WARNING");
  EXPECT_TRUE(config.toolset_enabled("kubernetes/core"));
  EXPECT_FALSE(config.toolset_enabled("prometheus/metrics"));
  EXPECT_TRUE(config.toolset_enabled("internet"));
  EXPECT_FALSE(config.toolset_enabled("not-configured"));
}

TEST_F(PublishedConfig, MissingFieldUsesDefault) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("only-the-model")));

  // Read from the published snapshot itself (not the typed view's fallbacks):
  // the publisher filled in the built-in schema's defaults.
  EXPECT_EQ(sub_->GetString("llm.model"), "only-the-model");
  EXPECT_EQ(sub_->GetString("llm.provider"), "openai");
  EXPECT_EQ(sub_->GetInt("llm.max_retries"), 3);
  EXPECT_EQ(sub_->GetInt("llm.timeout_seconds"), 60);
  EXPECT_DOUBLE_EQ(sub_->GetDouble("llm.temperature"), 0.0);
  EXPECT_EQ(sub_->GetString("log_level"), "INFO");
  EXPECT_EQ(sub_->GetJson("toolsets"), "{}");
  const Snapshot snap = sub_->Pin();
  EXPECT_EQ(snap.TypeOf("llm.endpoint"), snapshot::Type::kNull);
  EXPECT_EQ(snap.TypeOf("llm.temperature"), snapshot::Type::kDouble);

  // No llm section at all: llm.model takes its default too; an int
  // temperature is published as a float.
  const uint64_t v = sub_->version();
  WriteInPlace(config_, "log_level: error\nllm:\n  temperature: 1\n");
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "gpt-4o");
  EXPECT_EQ(sub_->GetInt("llm.timeout_seconds"), 60);
  EXPECT_EQ(sub_->Pin().TypeOf("llm.temperature"), snapshot::Type::kDouble);
  EXPECT_DOUBLE_EQ(sub_->GetDouble("llm.temperature"), 1.0);
  EXPECT_EQ(sub_->GetString("log_level"), "ERROR");
}

TEST_F(PublishedConfig, ReloadUpdatesValues) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(kFullConfig));
  const uint64_t v = sub_->version();
  static const Key kModel("llm.model");
  static const Key kTimeout("llm.timeout_seconds");
  static const Key kTemperature("llm.temperature");
  static const Key kEnabled("toolsets.kubernetes/core.enabled");
  EXPECT_EQ(sub_->GetInt(kTimeout), 45);  // warms the key caches on the old version
  EXPECT_TRUE(sub_->GetBool(kEnabled));
  const Snapshot before = sub_->Pin();

  WriteInPlace(config_, R"(llm:
  model: claude-next
  timeout_seconds: 120
  temperature: 1.5
toolsets:
  kubernetes/core:
    enabled: false
log_level: Critical
)");
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString(kModel.path()), "claude-next");
  EXPECT_EQ(sub_->GetInt(kTimeout), 120);
  EXPECT_DOUBLE_EQ(sub_->GetDouble(kTemperature), 1.5);
  EXPECT_FALSE(sub_->GetBool(kEnabled));
  EXPECT_EQ(sub_->GetString("llm.provider"), "openai") << "a field removed from the file goes back to its default";
  EXPECT_EQ(sub_->GetString("log_level"), "CRITICAL");
  int64_t ignored;
  EXPECT_EQ(sub_->Get("custom.ratio", &ignored), CONFCAST_ERR_NOT_FOUND) << "removed keys are gone";
  EXPECT_EQ(holmesgpt::Config::Pin(*sub_).llm_model(), "claude-next");
  // A snapshot pinned earlier is a private copy: still the old version.
  EXPECT_EQ(before.version(), v);
  EXPECT_EQ(before.GetString("llm.model"), "gpt-4.1-mini");
  EXPECT_EQ(before.GetInt("llm.timeout_seconds"), 45);
}

// A bad file is reported and the last good version stays served.
using ReloadRejection = PublisherTest;

TEST_F(ReloadRejection, GracefulOnInvalidFile) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("good-1")));
  const uint64_t v = sub_->version();

  // Schema violation at line 3, column 16.
  WriteInPlace(config_, "llm:\n  model: bad\n  max_retries: 99\n");
  confcast_info info;
  ASSERT_TRUE(WaitForInfo(*sub_, [](const confcast_info& i) { return i.reload_errors_total >= 1; }, kEventTimeout,
                          &info))
      << pub_->Describe();
  EXPECT_EQ(info.reload_errors_total, 1u);
  EXPECT_EQ(info.version, v);
  EXPECT_EQ(sub_->GetString("llm.model"), "good-1");
  EXPECT_EQ(std::string(info.last_error).rfind(config_ + ":3:16: llm.max_retries: ", 0), 0u) << info.last_error;
  EXPECT_EQ(ErrorsByReason(*sub_).validate, 1u);
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();

  // YAML syntax error: reported with its position as well.
  WriteInPlace(config_, "llm:\n  model: [unclosed\n");
  ASSERT_TRUE(WaitForInfo(*sub_, [](const confcast_info& i) { return i.reload_errors_total >= 2; }, kEventTimeout,
                          &info))
      << pub_->Describe();
  EXPECT_EQ(info.version, v);
  EXPECT_TRUE(std::regex_search(info.last_error, std::regex("^" + config_ + ":[0-9]+:[0-9]+: ")))
      << info.last_error;
  EXPECT_EQ(ErrorsByReason(*sub_).parse, 1u);
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();

  // The next good file is published as the next version.
  WriteInPlace(config_, ModelConfig("good-2"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "good-2");
  EXPECT_EQ(InfoOf(*sub_).reload_errors_total, 2u);
}

TEST_F(ReloadRejection, InvalidYamlKeepsPrevious) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(kFullConfig));
  const uint64_t v = sub_->version();

  const std::vector<std::string> bad_versions = {
      "llm:\n  model: [oops\n",                        // YAML syntax
      "llm:\n  model: x\n  timeout_seconds: abc\n",    // wrong type
      "llm:\n  model: x\nllm:\n  model: y\n",          // duplicate key
      "",                                              // empty (a truncated write)
  };
  uint64_t errors = 0;
  for (const std::string& bad : bad_versions) {
    SCOPED_TRACE("bad content: " + bad);
    WriteInPlace(config_, bad);
    ++errors;
    ASSERT_TRUE(WaitForInfo(*sub_, [&](const confcast_info& i) { return i.reload_errors_total >= errors; },
                            kEventTimeout))
        << pub_->Describe();
    EXPECT_EQ(sub_->version(), v);
    EXPECT_EQ(sub_->GetString("llm.model"), "gpt-4.1-mini");
    EXPECT_EQ(sub_->GetInt("llm.timeout_seconds"), 45);
    EXPECT_DOUBLE_EQ(sub_->GetDouble("llm.temperature"), 0.25);
    EXPECT_TRUE(sub_->GetBool("toolsets.kubernetes/core.enabled"));
    EXPECT_EQ(sub_->GetString("log_level"), "WARNING");
  }
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();
}

}  // namespace
}  // namespace confcast
