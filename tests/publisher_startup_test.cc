// publisher_startup_test.cc - starting confcast-publisher: the first version
// it publishes (value, counters, the file's SHA-256), a first config that is
// invalid (fatal with nothing published; with an earlier version in the
// segment, that version keeps being served), and one publisher per segment.
// The real binary on a real file and segment; values are read back through
// confcast::Subscriber and confcastctl.
//
// Waiting: version changes are awaited with Subscriber::Wait (a futex sleep
// with a deadline); things without a futex (the stats, a log line, an exit)
// are polled with a deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <optional>
#include <string>

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

// How long a whole publisher start may take on a loaded 2-core box (the
// bound the crash-recovery and segment tests use).
const milliseconds kTimeout(15000);

using PublisherStartup = PublisherTest;

TEST_F(PublisherStartup, InitialLoad) {
  const std::string content = "llm:\n  model: gpt-4.1\n  max_retries: 5\n";
  ASSERT_NO_FATAL_FAILURE(PublishFirst(content));

  EXPECT_EQ(sub_->version(), 1u);
  EXPECT_EQ(sub_->GetString("llm.model"), "gpt-4.1");
  EXPECT_EQ(sub_->GetInt("llm.max_retries"), 5);
  // The counters are stored just after the version goes live: wait for them.
  confcast_info info;
  EXPECT_TRUE(WaitForInfo(*sub_, [](const confcast_info& i) { return i.reload_total >= 1; }, kEventTimeout, &info));
  EXPECT_EQ(info.publisher_pid, pub_->pid());
  EXPECT_EQ(info.reload_total, 1u);
  EXPECT_EQ(info.reload_errors_total, 0u);
  EXPECT_EQ(std::string(info.sha256_hex), Sha256Hex(content)) << "the segment carries the file's SHA-256";
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();
}

TEST_F(PublisherStartup, InvalidConfigWithNothingPublishedIsFatal) {
  WriteInPlace(config_, "llm:\n  model: gpt\n  max_retries: 99\n");
  ChildProcess pub = StartPublisher(Options());
  const std::optional<ExitStatus> status = pub.WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << pub.Describe();
  EXPECT_TRUE(status->ExitedWith(1)) << pub.Describe();
  const std::string err = pub.Stderr();
  EXPECT_NE(err.find(config_ + ":3:16: llm.max_retries"), std::string::npos) << err;
  // No version for workers: the segment is absent or empty.
  try {
    Subscriber probe(segment_.name());
    EXPECT_EQ(probe.version(), 0u);
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NO_SEGMENT) << e.what();
  }
  const ProcessResult get = RunCtl(segment_.name(), {"get", "llm.model"});
  EXPECT_TRUE(get.status.ExitedWith(2)) << get.Describe();
}

TEST_F(PublisherStartup, InvalidConfigWithAnEarlierVersionKeepsServingIt) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("earlier")));
  ChildProcess& first = *pub_;
  const uint64_t v = sub_->version();
  ASSERT_TRUE(first.Signal(SIGTERM));
  ASSERT_TRUE(first.WaitExit(kEventTimeout));

  WriteInPlace(config_, "llm:\n  model: gpt\n  max_retries: 99\n");
  ChildProcess second = StartPublisher(Options());
  confcast_info info;
  ASSERT_TRUE(WaitForInfo(
      *sub_, [&](const confcast_info& i) { return i.publisher_pid == second.pid() && i.last_error[0] != '\0'; },
      kEventTimeout, &info))
      << second.Describe();
  EXPECT_EQ(info.version, v);
  EXPECT_EQ(std::string(info.last_error).rfind(config_ + ":3:16: llm.max_retries: ", 0), 0u) << info.last_error;
  EXPECT_EQ(sub_->GetString("llm.model"), "earlier");
  EXPECT_TRUE(second.Running()) << second.Describe();
  const ProcessResult status = RunCtl(segment_.name(), {"status"});
  EXPECT_TRUE(status.status.ExitedWith(0)) << status.Describe();
  EXPECT_NE(status.out.find(config_ + ":3:16: llm.max_retries"), std::string::npos) << status.Describe();

  WriteInPlace(config_, ModelConfig("fixed"));  // it is watching
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << second.Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "fixed");
}

// One publisher per segment: a second one exits 1 and the first goes on.
using PublisherExclusivity = PublisherTest;

TEST_F(PublisherExclusivity, SecondPublisherIsRefusedAndTheFirstKeepsWorking) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("first")));
  ChildProcess& first = *pub_;
  const uint64_t v = sub_->version();

  ChildProcess second = StartPublisher(Options());
  const std::optional<ExitStatus> status = second.WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << "the second publisher still runs; " << second.Describe();
  EXPECT_TRUE(status->ExitedWith(1)) << second.Describe();
  const std::string err = second.Stderr();
  EXPECT_NE(err.find(segment_.name()), std::string::npos) << err;
  EXPECT_NE(err.find("only one publisher"), std::string::npos) << err;

  EXPECT_TRUE(first.Running()) << first.Describe();
  EXPECT_EQ(InfoOf(*sub_).publisher_pid, first.pid());
  EXPECT_EQ(sub_->version(), v);
  WriteInPlace(config_, ModelConfig("still-first"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << first.Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "still-first");
}

TEST_F(PublisherExclusivity, ASecondPublisherOnTheSameSegmentExitsOne) {
  WriteViaRename(config_, NumberedConfig(1));
  auto first = ChildProcess::Spawn(PublisherArgs(config_, segment_.name()), {.output_path = dir_ / "first.log"});
  auto sub = OpenWhenReady(segment_.name(), kTimeout);
  ASSERT_TRUE(sub);
  ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);
  auto second = ChildProcess::Spawn(PublisherArgs(config_, segment_.name()), {.output_path = dir_ / "second.log"});
  ASSERT_TRUE(second.WaitExit(kTimeout));
  EXPECT_EQ(second.exit_code(), 1);
  EXPECT_NE(ReadFile(dir_ / "second.log").find("only one publisher per segment"), std::string::npos);
  EXPECT_TRUE(first.Running());
  first.Signal(SIGTERM);
  ASSERT_TRUE(first.WaitExit(kTimeout));
}

}  // namespace
}  // namespace confcast
