// file_change_test.cc - how confcast-publisher notices that its config
// changed: a change is published once (debounced), unchanged bytes publish
// nothing, each way a file really changes (written in place, an editor's
// write-to-temp-and-rename, deleted and recreated, the kubelet's ConfigMap
// `..data` swap), the --poll-seconds re-hash for a change no inotify event
// reports, and --no-watch / HOT_RELOAD_ENABLED=false, where only SIGHUP reloads.
//
// Waiting: version changes are awaited with Subscriber::Wait (a futex sleep
// with a deadline); things without a futex (the stats, a log line, an exit)
// are polled with a deadline. The only plain time windows are where the
// behaviour under test IS a time window: "nothing is published within
// (debounce | poll period)" and the debounce itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <thread>

#include "confcast/subscriber.hpp"
#include "segment_writer.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using namespace std::chrono_literals;

using FileChangeDetection = PublisherTest;

TEST_F(FileChangeDetection, DetectsChange) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("before")));
  const uint64_t v = sub_->version();

  WriteInPlace(config_, ModelConfig("after"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "after");
  confcast_info info;
  EXPECT_TRUE(WaitForInfo(*sub_, [](const confcast_info& i) { return i.reload_total >= 2; }, kEventTimeout, &info));
  EXPECT_EQ(info.reload_total, 2u);
}

TEST_F(FileChangeDetection, DebouncesRapidChanges) {
  PublisherOptions o = Options();
  o.debounce_ms = 300;
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("m-0"), o));
  const uint64_t v = sub_->version();

  // 20 distinct contents, a few ms apart: every gap is far inside the 300 ms
  // trailing window, so they must coalesce into one reload of the last one.
  auto previous = Clock::now();
  milliseconds widest_gap{0};
  int64_t last_write_unix_ns = 0;
  for (int i = 1; i <= 20; ++i) {
    WriteInPlace(config_, ModelConfig("m-" + std::to_string(i)));
    last_write_unix_ns = publisher::RealtimeNs();
    const auto now = Clock::now();
    widest_gap = std::max(widest_gap, std::chrono::duration_cast<milliseconds>(now - previous));
    previous = now;
    std::this_thread::sleep_for(5ms);  // spreads the burst over ~100 ms
  }
  if (widest_gap >= 250ms) {
    GTEST_SKIP() << "the machine stalled " << widest_gap.count()
                 << " ms between two writes: the burst did not fit the debounce window";
  }

  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "m-20");
  const confcast_info info = InfoOf(*sub_);
  // Trailing edge: published only after 300 ms of quiet after the last write.
  EXPECT_GE(info.published_unix_ns - last_write_unix_ns, 290'000'000) << "published too early";
  // And nothing more follows (another version would come within one window).
  EXPECT_TRUE(NoVersionAbove(*sub_, v + 1, 700ms)) << pub_->Describe();
  EXPECT_EQ(InfoOf(*sub_).reload_total, 2u);
}

TEST_F(FileChangeDetection, TracksHash) {
  const std::string content = ModelConfig("same");
  PublisherOptions o = Options();
  o.log_level = "debug";  // "file event: unchanged" tells when each no-op reload is done
  ASSERT_NO_FATAL_FAILURE(PublishFirst(content, o));
  const uint64_t v = sub_->version();
  constexpr std::string_view kUnchanged = "file event: unchanged (sha256 ";

  WriteInPlace(config_, content);  // identical bytes, in place
  ASSERT_TRUE(pub_->WaitForStderr(kUnchanged, kEventTimeout, 1)) << pub_->Describe();
  ASSERT_EQ(utimensat(AT_FDCWD, config_.c_str(), nullptr, 0), 0);  // touch
  ASSERT_TRUE(pub_->WaitForStderr(kUnchanged, kEventTimeout, 2)) << pub_->Describe();
  WriteViaRename(config_, content);  // an editor saving an unmodified buffer
  ASSERT_TRUE(pub_->WaitForStderr(kUnchanged, kEventTimeout, 3)) << pub_->Describe();

  EXPECT_EQ(sub_->version(), v);
  EXPECT_EQ(InfoOf(*sub_).reload_total, 1u);
  // The proof that nothing was published in between: the next real change is exactly +1.
  WriteInPlace(config_, ModelConfig("different"));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "different");
}

// The four ways a config file really changes.
TEST_F(FileChangeDetection, InPlaceWrite) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("v1")));
  struct stat before;
  ASSERT_EQ(stat(config_.c_str(), &before), 0);
  for (int i = 2; i <= 4; ++i) {
    const uint64_t v = sub_->version();
    WriteInPlace(config_, ModelConfig("v" + std::to_string(i)));  // O_TRUNC + write + close
    ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
    EXPECT_EQ(sub_->GetString("llm.model"), "v" + std::to_string(i));
  }
  struct stat after;
  ASSERT_EQ(stat(config_.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "the test must write in place";
}

TEST_F(FileChangeDetection, EditorWriteToTempAndRename) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("v1")));
  for (int i = 2; i <= 4; ++i) {
    const uint64_t v = sub_->version();
    WriteViaRename(config_, ModelConfig("v" + std::to_string(i)));
    ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
    EXPECT_EQ(sub_->GetString("llm.model"), "v" + std::to_string(i));
  }
  EXPECT_EQ(InfoOf(*sub_).reload_errors_total, 0u) << "a rename never exposes a half-written file";
}

TEST_F(FileChangeDetection, DeleteThenRecreate) {
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("v1")));
  for (uint64_t round = 1; round <= 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const uint64_t v = sub_->version();
    ASSERT_EQ(::unlink(config_.c_str()), 0);
    // The deletion itself is a (rejected) reload: io, the old version stays.
    ASSERT_TRUE(WaitUntil([&] { return ErrorsByReason(*sub_).io >= round; }, kEventTimeout)) << pub_->Describe();
    EXPECT_EQ(ErrorsByReason(*sub_).io, round);
    EXPECT_EQ(sub_->version(), v);
    EXPECT_EQ(sub_->GetString("llm.model"), "v" + std::to_string(round));
    EXPECT_NE(std::string(InfoOf(*sub_).last_error).find(config_), std::string::npos) << InfoOf(*sub_).last_error;
    EXPECT_TRUE(pub_->Running()) << pub_->Describe();

    WriteInPlace(config_, ModelConfig("v" + std::to_string(round + 1)));
    ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
    EXPECT_EQ(sub_->GetString("llm.model"), "v" + std::to_string(round + 1));
  }
}

TEST_F(FileChangeDetection, KubeletConfigMapSwap) {
  ConfigMapVolume volume(dir_.MakeDir("configmap"), {{"config.yaml", ModelConfig("cm-0")}});
  PublisherOptions o = Options();
  o.config = volume.PathOf("config.yaml");  // DIR/config.yaml -> ..data/config.yaml
  ASSERT_NO_FATAL_FAILURE(StartAndOpenReader(o));
  EXPECT_EQ(sub_->GetString("llm.model"), "cm-0");
  for (int i = 1; i <= 3; ++i) {
    const uint64_t v = sub_->version();
    const std::string old_generation = volume.current_generation();
    volume.Update({{"config.yaml", ModelConfig("cm-" + std::to_string(i))}});
    ASSERT_FALSE(PathExists(dir_ / ("configmap/" + old_generation))) << "the old directory is gone";
    ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
    EXPECT_EQ(sub_->GetString("llm.model"), "cm-" + std::to_string(i));
  }
  EXPECT_EQ(InfoOf(*sub_).reload_errors_total, 0u) << pub_->Describe();
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();
}

// --poll-seconds: the safety net for changes inotify does not report.
//
// The watcher watches the config's directory. A hard link to the same inode
// in another directory lets the test change the content without any event in
// the watched directory: an in-place write through the other name notifies
// only that other directory. Only the periodic re-hash can see it.
TEST_F(FileChangeDetection, RehashFindsAChangeTheWatcherCannotSee) {
  WriteInPlace(config_, ModelConfig("before"));
  const std::string alias = dir_.MakeDir("elsewhere") + "/alias.yaml";
  ASSERT_EQ(::link(config_.c_str(), alias.c_str()), 0);
  PublisherOptions o = Options();
  o.poll_seconds = 1;
  ASSERT_NO_FATAL_FAILURE(StartAndOpenReader(o));
  const uint64_t v = sub_->version();

  WriteInPlace(alias, ModelConfig("after"));
  ASSERT_EQ(ReadFile(config_), ModelConfig("after")) << "same inode";
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "after");
  EXPECT_TRUE(pub_->WaitForStderr("trigger=poll", kEventTimeout))
      << "the version must come from the poll, not from an event; " << pub_->Describe();
}

// --no-watch / HOT_RELOAD_ENABLED=false: no watcher, no poll; SIGHUP still reloads.
enum class NoWatchBy { kFlag, kEnvironment };

class WatchDisabled : public PublisherTest, public ::testing::WithParamInterface<NoWatchBy> {};

TEST_P(WatchDisabled, IgnoresChangesUntilSighup) {
  PublisherOptions o = Options();
  o.poll_seconds = 1;  // to show that the poll is off as well
  if (GetParam() == NoWatchBy::kFlag) {
    o.extra_args.push_back("--no-watch");
  } else {
    o.spawn.env_set["HOT_RELOAD_ENABLED"] = "false";
  }
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("start"), o));
  const uint64_t v = sub_->version();
  EXPECT_TRUE(pub_->WaitForStderr("watch=false", kEventTimeout)) << pub_->Describe();

  WriteInPlace(config_, ModelConfig("changed"));
  // Longer than a poll period plus the debounce: nothing may be published.
  EXPECT_TRUE(NoVersionAbove(*sub_, v, 1600ms)) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "start");

  ASSERT_TRUE(pub_->Signal(SIGHUP));
  ASSERT_EQ(WaitForVersionAbove(*sub_, v, kEventTimeout), v + 1) << pub_->Describe();
  EXPECT_EQ(sub_->GetString("llm.model"), "changed");
  EXPECT_TRUE(pub_->Running()) << pub_->Describe();
}

INSTANTIATE_TEST_SUITE_P(Modes, WatchDisabled, ::testing::Values(NoWatchBy::kFlag, NoWatchBy::kEnvironment),
                         [](const ::testing::TestParamInfo<NoWatchBy>& p) {
                           return std::string(p.param == NoWatchBy::kFlag ? "NoWatchFlag" : "HotReloadEnabledFalse");
                         });

}  // namespace
}  // namespace confcast
