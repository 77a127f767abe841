// confcastctl_test.cc - confcastctl against a live publisher: `get` (strings
// bare, the rest as JSON), every exit code, `wait` (a new version or the
// timeout), `dump` (JSON and text) and `status --max-age` following the
// publisher's heartbeat (stopped with SIGSTOP, resumed with SIGCONT).
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/digest.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/wait.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using namespace std::chrono_literals;

using Confcastctl = PublisherTest;

TEST_F(Confcastctl, GetPrintsStringsBareAndTheRestAsJson) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(kFullConfig));
  const std::string seg = segment_.name();
  ProcessResult r = RunCtl(seg, {"get", "llm.model"});
  EXPECT_TRUE(r.status.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, "gpt-4.1-mini\n");
  r = RunCtl(seg, {"get", "llm.max_retries"});
  EXPECT_EQ(r.out, "7\n") << r.Describe();
  r = RunCtl(seg, {"get", "llm.temperature"});
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out).get<double>(), 0.25) << r.Describe();
  r = RunCtl(seg, {"get", "toolsets.prometheus/metrics.enabled"});
  EXPECT_EQ(r.out, "false\n") << r.Describe();
  r = RunCtl(seg, {"get", "toolsets"});
  EXPECT_TRUE(r.status.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::parse(sub_->GetJson("toolsets")));
}

TEST_F(Confcastctl, ExitCodes) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("codes")));
  const std::string seg = segment_.name();

  ProcessResult r = RunCtl(seg, {"get", "llm.no_such_field"});
  EXPECT_TRUE(r.status.ExitedWith(3)) << "missing path: " << r.Describe();
  r = RunCtl(seg, {"get", "no.such.path.at.all"});
  EXPECT_TRUE(r.status.ExitedWith(3)) << "missing path: " << r.Describe();

  const std::string absent = UniqueName("absent");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"get", "llm.model"}, {"dump"}, {"status"}, {"wait", "--timeout", "0"}}) {
    r = RunCtl(absent, args);
    EXPECT_TRUE(r.status.ExitedWith(2)) << "no segment, " << args[0] << ": " << r.Describe();
  }
  EXPECT_FALSE(PathExists(SegmentFile(absent))) << "confcastctl never creates a segment";

  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"get"}, {"get", "a", "b"}, {"status", "--max-age", "-1"},
           {"wait", "--timeout", "soon"}, {"dump", "--yaml"}}) {
    r = RunCtl(seg, args);
    EXPECT_TRUE(r.status.ExitedWith(4)) << "usage error: " << ::testing::PrintToString(args) << ": " << r.Describe();
  }
}

TEST_F(Confcastctl, WaitReturnsOnANewVersionOrTimesOut) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("w1")));
  const uint64_t v = sub_->version();
  const std::string seg = segment_.name();

  const auto started = Clock::now();
  ProcessResult r = RunCtl(seg, {"wait", "--after", std::to_string(v), "--timeout", "1"});
  EXPECT_TRUE(r.status.ExitedWith(1)) << r.Describe();
  EXPECT_GE(Clock::now() - started, 900ms) << "returned before its timeout";

  r = RunCtl(seg, {"wait", "--after", std::to_string(v - 1), "--timeout", "1"});
  EXPECT_TRUE(r.status.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(r.out, std::to_string(v) + "\n");

  // A waiting confcastctl wakes up on the next publish.
  ChildProcess waiter = ChildProcess::Spawn({CtlBinary(), "--segment", seg, "wait", "--after", std::to_string(v),
                                             "--timeout", "30"});
  WriteInPlace(config_, ModelConfig("w2"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  const std::optional<ExitStatus> status = waiter.WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << waiter.Describe();
  EXPECT_TRUE(status->ExitedWith(0)) << waiter.Describe();
  EXPECT_EQ(waiter.Stdout(), std::to_string(v + 1) + "\n");
}

TEST_F(Confcastctl, DumpJsonIsTheWholeVersion) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(kFullConfig));
  const ProcessResult r = RunCtl(segment_.name(), {"dump", "--json"});
  ASSERT_TRUE(r.status.ExitedWith(0)) << r.Describe();
  nlohmann::json dump;
  ASSERT_NO_THROW(dump = nlohmann::json::parse(r.out)) << r.out;
  EXPECT_EQ(dump["version"], sub_->version());
  EXPECT_EQ(dump["sha256"], Sha256Hex(kFullConfig));
  nlohmann::json published = nlohmann::json::parse(sub_->Pin().Json());
  published["llm"]["api_key"] = "<secret>";  // the one secret field, redacted
  EXPECT_EQ(dump["config"], published);
  const ProcessResult shown = RunCtl(segment_.name(), {"dump", "--json", "--show-secrets"});
  ASSERT_TRUE(shown.status.ExitedWith(0)) << shown.Describe();
  EXPECT_EQ(nlohmann::json::parse(shown.out)["config"], nlohmann::json::parse(sub_->Pin().Json()));
  EXPECT_EQ(dump["config"]["llm"]["model"], "gpt-4.1-mini");
  EXPECT_EQ(dump["config"]["llm"]["timeout_seconds"], 45);
  EXPECT_EQ(dump["config"]["custom"]["list"], nlohmann::json::parse("[10, 20, 30]"));

  const ProcessResult text = RunCtl(segment_.name(), {"dump"});
  EXPECT_TRUE(text.status.ExitedWith(0)) << text.Describe();
  EXPECT_NE(text.out.find("llm.model"), std::string::npos) << text.Describe();
  EXPECT_NE(text.out.find("gpt-4.1-mini"), std::string::npos) << text.Describe();
}

TEST_F(Confcastctl, StatusMaxAgeFollowsTheHeartbeat) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("alive")));
  const std::string seg = segment_.name();
  auto status_rc = [&] {
    const ProcessResult r = RunCtl(seg, {"status", "--max-age", "1"});
    return r.status.exited ? r.status.code : -1;
  };

  ASSERT_TRUE(WaitUntil([&] { return status_rc() == 0; }, kEventTimeout, 50ms)) << pub_->Describe();
  const ProcessResult shown = RunCtl(seg, {"status"});
  EXPECT_NE(shown.out.find("publisher pid:    " + std::to_string(pub_->pid())), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(InfoOf(*sub_).sha256_hex), std::string::npos) << shown.out;

  ASSERT_TRUE(pub_->Signal(SIGSTOP));  // a hung publisher: no more heartbeats
  ASSERT_TRUE(pub_->WaitStopped(kEventTimeout)) << pub_->Describe();
  EXPECT_TRUE(WaitUntil([&] { return status_rc() == 1; }, kEventTimeout, 100ms)) << "heartbeat never got old";
  ASSERT_TRUE(pub_->Signal(SIGCONT));
  EXPECT_TRUE(WaitUntil([&] { return status_rc() == 0; }, kEventTimeout, 50ms)) << "heartbeat never resumed";
}

}  // namespace
}  // namespace confcast
