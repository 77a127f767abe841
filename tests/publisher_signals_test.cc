// publisher_signals_test.cc - the publisher's signals: SIGTERM and SIGINT
// stop it with exit 0 and leave the segment for the workers (also when they
// arrive during startup, before the event loop exists), and SIGHUP reloads at
// once (and during startup waits for the loop instead of killing it).
//
// Waiting: version changes are awaited with Subscriber::Wait (a futex sleep
// with a deadline); things without a futex (the stats, a log line, an exit)
// are polled with a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <string.h>

#include <optional>
#include <string>

#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"
#include "support/wait.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using namespace std::chrono_literals;

class PublisherStop : public PublisherTest, public ::testing::WithParamInterface<int> {};

TEST_P(PublisherStop, ExitsZeroAndLeavesTheSegmentReadable) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("first")));
  WriteInPlace(config_, ModelConfig("last"));
  const uint64_t last = WaitForVersionAbove(*sub_, 1, kEventTimeout);
  ASSERT_EQ(last, 2u) << pub_->Describe();

  ASSERT_TRUE(pub_->Signal(GetParam()));
  const std::optional<ExitStatus> status = pub_->WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << "still running after " << strsignal(GetParam()) << "; " << pub_->Describe();
  EXPECT_TRUE(status->ExitedWith(0)) << pub_->Describe();
  EXPECT_TRUE(segment_.Exists()) << "the segment must stay for the workers";

  // An open handle and a new one both read the last version.
  EXPECT_EQ(sub_->version(), last);
  EXPECT_EQ(sub_->GetString("llm.model"), "last");
  Subscriber fresh(segment_.name());
  EXPECT_EQ(fresh.version(), last);
  EXPECT_EQ(fresh.GetString("llm.model"), "last");
  const ProcessResult get = RunCtl(segment_.name(), {"get", "llm.model"});
  EXPECT_TRUE(get.status.ExitedWith(0)) << get.Describe();
  EXPECT_EQ(get.out, "last\n");
}

// A stop signal during startup: after main() began, before the event loop's
// signalfd exists. Sending it "right after spawn" cannot test that: most such
// signals land while the dynamic loader still runs (a few ms here), where no
// program can catch them. Instead, --schema names a large schema file: the
// publisher's /proc/PID/io rchar passes the file's size once main() has read
// it, and parsing it then keeps the publisher in startup for a few hundred
// ms, so the signal lands there every time. Before the fix the signals were
// blocked only after the schema was parsed and this killed the publisher.
std::string LargeSchema(int fields) {
  std::string text = "description: a large schema, so that startup takes a while\nfields:\n";
  text += "  - path: llm\n    type: map\n  - path: llm.model\n    type: string\n";
  for (int i = 0; i < fields; ++i) text += "  - path: padding.f" + std::to_string(i) + "\n    type: int\n";
  return text;
}

// Bytes the process has read (rchar of /proc/PID/io), -1 if unknown.
int64_t BytesReadBy(pid_t pid) {
  const std::string io = ReadFile("/proc/" + std::to_string(pid) + "/io");
  const size_t at = io.find("rchar: ");
  return at == std::string::npos ? -1 : std::stoll(io.substr(at + 7));
}

// Starts a publisher of ModelConfig("early") with a large --schema and
// returns once it has read that schema: main() runs, the event loop is still
// ahead. *observable is false (and nothing is waited for) where /proc/PID/io
// cannot be read.
ChildProcess StartPublisherInStartup(PublisherOptions o, const std::string& config, const std::string& schema,
                                     bool* observable) {
  const std::string schema_text = LargeSchema(10000);
  WriteInPlace(schema, schema_text);
  WriteInPlace(config, ModelConfig("early"));
  o.extra_args = {"--schema", schema};
  ChildProcess pub = StartPublisher(o);
  *observable = BytesReadBy(pub.pid()) >= 0;
  if (*observable) {
    EXPECT_TRUE(WaitUntil(
        [&] { return BytesReadBy(pub.pid()) >= static_cast<int64_t>(schema_text.size()) || !pub.Running(); },
        kEventTimeout, 1ms))
        << pub.Describe();
  }
  return pub;
}

TEST_P(PublisherStop, DuringStartupExitsZeroAndTheFirstVersionStays) {
  constexpr int kRuns = 2;
  int signalled_during_startup = 0;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    bool observable = false;
    ChildProcess pub = StartPublisherInStartup(Options(), config_, dir_ / "schema.yaml", &observable);
    if (!observable) GTEST_SKIP() << "/proc/PID/io is not readable here";
    // Logged after the segment is opened, well before the loop.
    const bool early = pub.CountInStderr("confcast-publisher starting") == 0;
    ASSERT_TRUE(pub.Signal(GetParam())) << "it died before the signal; " << pub.Describe();
    signalled_during_startup += early;

    const std::optional<ExitStatus> status = pub.WaitExit(kEventTimeout);
    ASSERT_TRUE(status) << "still running after " << strsignal(GetParam()) << "; " << pub.Describe();
    EXPECT_TRUE(status->ExitedWith(0)) << status->ToString() << "; " << pub.Describe();
    // As after any stop: the version it published stays for the workers.
    ASSERT_TRUE(segment_.Exists());
    Subscriber sub(segment_.name());
    EXPECT_EQ(sub.version(), 1u);
    EXPECT_EQ(sub.GetString("llm.model"), "early");
  }
  if (signalled_during_startup == 0) {
    GTEST_SKIP() << "the machine stalled: every signal arrived after startup, which tests nothing new";
  }
}

INSTANTIATE_TEST_SUITE_P(Signals, PublisherStop, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return std::string(p.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

using PublisherSighup = PublisherTest;

// SIGHUP during startup (see PublisherStop.DuringStartup*): it waits for the
// loop and is a reload there, instead of killing the publisher.
TEST_F(PublisherSighup, DuringStartupIsAReloadNotADeath) {
  bool observable = false;
  ChildProcess pub = StartPublisherInStartup(Options(), config_, dir_ / "schema.yaml", &observable);
  if (!observable) GTEST_SKIP() << "/proc/PID/io is not readable here";
  ASSERT_TRUE(pub.Signal(SIGHUP)) << "it died before the signal; " << pub.Describe();
  ASSERT_TRUE(WaitUntil([&] { return pub.CountInStderr("SIGHUP: reloading now") > 0 || !pub.Running(); },
                        kEventTimeout))
      << pub.Describe();
  ASSERT_TRUE(pub.Running()) << pub.Describe();
  Subscriber sub(segment_.name());
  EXPECT_EQ(sub.version(), 1u) << "the same file is not published again";
  ASSERT_TRUE(pub.Signal(SIGTERM));
  const std::optional<ExitStatus> status = pub.WaitExit(kEventTimeout);
  ASSERT_TRUE(status) << pub.Describe();
  EXPECT_TRUE(status->ExitedWith(0)) << status->ToString() << "; " << pub.Describe();
}

TEST_F(PublisherSighup, ReloadsAtOnceInWatchMode) {
  PublisherOptions o = Options();
  o.debounce_ms = 60000;  // the watcher's reload cannot come first
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("start"), o));
  const uint64_t v = sub_->version();

  WriteInPlace(config_, ModelConfig("via-sighup"));
  ASSERT_TRUE(pub_->Signal(SIGHUP));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "via-sighup");
  EXPECT_TRUE(pub_->WaitForStderr("trigger=SIGHUP", kEventTimeout)) << pub_->Describe();

  // A SIGHUP with nothing changed publishes nothing.
  ASSERT_TRUE(pub_->Signal(SIGHUP));
  ASSERT_TRUE(pub_->WaitForStderr("SIGHUP: reloading now", kEventTimeout, 2)) << pub_->Describe();
  EXPECT_TRUE(NoVersionAbove(*sub_, v + 1, 200ms));
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();
}

}  // namespace
}  // namespace confcast
