// publisher/file_watcher_test.cc - FileWatcher against real inotify on real
// directories under /tmp.
//
// inotify queues an event inside the system call that causes it, so once a
// test's own file operation returns, the event is in every interested queue.
// "Nothing reported" is proven, not slept on: a second inotify instance (the
// witness) shows the unrelated event arrived, poll() shows the watcher's fd
// was readable, and HandleEvents still says false.
#include "file_watcher.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../tests/support/scratch.hpp"

namespace {

namespace fs = std::filesystem;
using confcast::publisher::FileWatcher;
using namespace confcast::test_support;  // NOLINT: scratch files are this file's vocabulary
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kEventTimeout{5000};

void MakeSymlink(const std::string& target, const std::string& link) {
  if (symlink(target.c_str(), link.c_str()) != 0) ThrowErrno("symlink " + link);
}

void Rename(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) ThrowErrno("rename " + from);
}

std::string Describe(const std::vector<std::string>& watched) {
  std::string joined;
  for (const std::string& entry : watched) joined += "\n  " + entry;
  return joined.empty() ? " (nothing)" : joined;
}

// The WatchedPaths entry for `directory`, or "" when it is not watched.
std::string WatchOf(const FileWatcher& watcher, const std::string& directory) {
  for (const std::string& entry : watcher.WatchedPaths()) {
    if (entry.starts_with(directory + " (")) return entry;
  }
  return "";
}

bool FdReadableNow(int fd) {
  pollfd ready{fd, POLLIN, 0};
  int result;
  do {
    result = poll(&ready, 1, 0);
  } while (result < 0 && errno == EINTR);
  return result > 0 && (ready.revents & POLLIN);
}

// Waits (bounded) until HandleEvents reports a change.
::testing::AssertionResult ChangeReported(FileWatcher& watcher) {
  const auto deadline = Clock::now() + kEventTimeout;
  for (;;) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) {
      return ::testing::AssertionFailure()
             << "no change reported within " << kEventTimeout.count() << " ms; watching:"
             << Describe(watcher.WatchedPaths());
    }
    pollfd ready{watcher.fd(), POLLIN, 0};
    int result = poll(&ready, 1, static_cast<int>(remaining.count()));
    if (result < 0 && errno != EINTR) {
      return ::testing::AssertionFailure() << "poll: " << std::strerror(errno);
    }
    if (result > 0 && watcher.HandleEvents()) return ::testing::AssertionSuccess();
  }
}

// For events the caller has already seen at a witness: they reached the
// watcher (its fd is readable) and are not reported as a change.
::testing::AssertionResult DeliveredButNotReported(FileWatcher& watcher) {
  if (!FdReadableNow(watcher.fd())) {
    return ::testing::AssertionFailure() << "the events never reached the watcher's fd";
  }
  if (watcher.HandleEvents()) {
    return ::testing::AssertionFailure() << "reported a change; watching:"
                                         << Describe(watcher.WatchedPaths());
  }
  if (FdReadableNow(watcher.fd())) {
    return ::testing::AssertionFailure() << "HandleEvents left events pending";
  }
  return ::testing::AssertionSuccess();
}

// A second inotify instance on one directory, to know that an event happened.
class EventWitness {
 public:
  explicit EventWitness(const std::string& directory, uint32_t mask = IN_ALL_EVENTS)
      : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (fd_ < 0) ThrowErrno("inotify_init1");
    if (inotify_add_watch(fd_, directory.c_str(), mask) < 0) ThrowErrno("inotify_add_watch " + directory);
  }
  ~EventWitness() { close(fd_); }
  EventWitness(const EventWitness&) = delete;
  EventWitness& operator=(const EventWitness&) = delete;

  // Reads events until one for `name` with any bit of `mask`.
  ::testing::AssertionResult Saw(std::string_view name, uint32_t mask) {
    const auto deadline = Clock::now() + kEventTimeout;
    while (Clock::now() < deadline) {
      pollfd ready{fd_, POLLIN, 0};
      if (poll(&ready, 1, 100) <= 0) continue;
      bool seen = false;
      ReadBatch([&](const inotify_event& event) {
        if ((event.mask & mask) && event.len > 0 &&
            std::string_view(event.name, strnlen(event.name, event.len)) == name) {
          seen = true;
        }
      });
      if (seen) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the witness never saw an event for " << name;
  }

  // Drains whatever is queued; true when the queue overflowed.
  bool DrainAndCheckOverflow() {
    bool overflowed = false;
    while (ReadBatch([&](const inotify_event& event) {
      if (event.mask & IN_Q_OVERFLOW) overflowed = true;
    })) {
    }
    return overflowed;
  }

 private:
  template <class Visit>
  bool ReadBatch(Visit visit) {
    alignas(inotify_event) char buffer[64 * 1024];
    ssize_t length;
    do {
      length = read(fd_, buffer, sizeof buffer);
    } while (length < 0 && errno == EINTR);
    if (length <= 0) return false;
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      visit(*event);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
    return true;
  }

  int fd_;
};

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directory(dir_); }

  TempDir scratch_{"file-watcher"};
  std::string root_ = scratch_.path().string();
  std::string dir_ = root_ + "/conf";
  std::string config_ = dir_ + "/config.yaml";
};

TEST_F(FileWatcherTest, FdIsNonBlockingCloseOnExecAndIdleHandleEventsReturnsAtOnce) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);
  EXPECT_TRUE(fcntl(watcher.fd(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(watcher.fd(), F_GETFD) & FD_CLOEXEC);
  EXPECT_FALSE(watcher.HandleEvents());
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, ..*)"});
}

TEST_F(FileWatcherTest, RelativePathIsTakenFromTheCurrentDirectory) {
  WriteInPlace(config_, "a: 1\n");
  const fs::path previous = fs::current_path();
  fs::current_path(root_);
  FileWatcher watcher("conf/config.yaml");
  fs::current_path(previous);
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, ..*)"});
  WriteInPlace(config_, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, InPlaceWriteIsReportedOnCloseNotBefore) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);
  EventWitness witness(dir_);

  int fd = open(config_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "a: 2\n", 5), 5);
  ASSERT_TRUE(witness.Saw("config.yaml", IN_MODIFY));
  EXPECT_FALSE(FdReadableNow(watcher.fd())) << "a bare write must not wake the loop";
  EXPECT_FALSE(watcher.HandleEvents());

  ASSERT_EQ(close(fd), 0);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 2\n");
  EXPECT_FALSE(FdReadableNow(watcher.fd()));
}

TEST_F(FileWatcherTest, WriteToTempAndRenameOverIsReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);
  EventWitness witness(dir_);

  const std::string temp = dir_ + "/.config.yaml.tmp-1234";
  WriteInPlace(temp, "a: 2\n");
  ASSERT_TRUE(witness.Saw(".config.yaml.tmp-1234", IN_CLOSE_WRITE));
  EXPECT_TRUE(DeliveredButNotReported(watcher)) << "the temp file is not the config";

  Rename(temp, config_);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 2\n");
}

TEST_F(FileWatcherTest, DeleteThenRecreateIsReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);
  EventWitness witness(dir_);

  ASSERT_EQ(unlink(config_.c_str()), 0);
  EXPECT_TRUE(ChangeReported(watcher));

  // A new regular file is reported when its writer closes it, not on creation.
  int fd = open(config_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "a: ", 3), 3);
  ASSERT_TRUE(witness.Saw("config.yaml", IN_CREATE));
  EXPECT_TRUE(DeliveredButNotReported(watcher)) << "a half-written new file was reported";
  ASSERT_EQ(write(fd, "2\n", 2), 2);
  ASSERT_EQ(close(fd), 0);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 2\n");
}

TEST_F(FileWatcherTest, HardLinkAndSymlinkCreationAreReported) {
  WriteInPlace(config_, "a: 1\n");
  const std::string staged = dir_ + "/staged.yaml";
  WriteInPlace(staged, "a: 2\n");
  FileWatcher watcher(config_);

  ASSERT_EQ(unlink(config_.c_str()), 0);
  ASSERT_TRUE(ChangeReported(watcher));
  ASSERT_EQ(link(staged.c_str(), config_.c_str()), 0);
  EXPECT_TRUE(ChangeReported(watcher)) << "a hard link is complete when it appears";

  ASSERT_EQ(unlink(config_.c_str()), 0);
  ASSERT_TRUE(ChangeReported(watcher));
  MakeSymlink("staged.yaml", config_);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, staged.yaml, ..*)"});

  // The symlink's target is the config now: writing it in place is a change.
  WriteInPlace(staged, "a: 3\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 3\n");
}

TEST_F(FileWatcherTest, KubeletConfigMapSwapIsReportedEveryTime) {
  // The kubelet's atomic writer (k8s.io/kubernetes/pkg/volume/util/atomic_writer.go).
  auto timestamped = [](int generation) {
    return "..2026_11_28_17_0" + std::to_string(generation) + "_00.12345678" + std::to_string(generation);
  };
  fs::create_directory(dir_ + "/" + timestamped(0));
  WriteInPlace(dir_ + "/" + timestamped(0) + "/config.yaml", "generation: 0\n");
  MakeSymlink(timestamped(0), dir_ + "/..data");
  MakeSymlink("..data/config.yaml", config_);

  FileWatcher watcher(config_);
  EXPECT_EQ(WatchOf(watcher, dir_), dir_ + " (..data, config.yaml, ..*)");
  EXPECT_EQ(WatchOf(watcher, dir_ + "/" + timestamped(0)), dir_ + "/" + timestamped(0) + " (config.yaml)");

  for (int generation = 1; generation <= 3; ++generation) {
    const std::string old_dir = dir_ + "/" + timestamped(generation - 1);
    const std::string new_dir = dir_ + "/" + timestamped(generation);
    fs::create_directory(new_dir);
    WriteInPlace(new_dir + "/config.yaml", "generation: " + std::to_string(generation) + "\n");
    MakeSymlink(timestamped(generation), dir_ + "/..data_tmp");
    // Every ".." event may report; what matters is that the swap itself does.
    watcher.HandleEvents();
    ASSERT_FALSE(FdReadableNow(watcher.fd()));

    Rename(dir_ + "/..data_tmp", dir_ + "/..data");
    EXPECT_TRUE(ChangeReported(watcher)) << "generation " << generation;
    EXPECT_EQ(ReadFile(config_), "generation: " + std::to_string(generation) + "\n");
    EXPECT_EQ(WatchOf(watcher, new_dir), new_dir + " (config.yaml)");

    fs::remove_all(old_dir);
    EXPECT_TRUE(ChangeReported(watcher));
    EXPECT_EQ(WatchOf(watcher, old_dir), "") << "stale watch kept on the old directory";
    EXPECT_EQ(watcher.WatchedPaths().size(), 2u) << Describe(watcher.WatchedPaths());
    EXPECT_FALSE(FdReadableNow(watcher.fd())) << "events left pending";
  }
}

TEST_F(FileWatcherTest, SymlinkIntoAnotherDirectoryIsFollowedAndRetargeted) {
  const std::string real_dir = root_ + "/srv";
  const std::string next_dir = root_ + "/opt";
  fs::create_directory(real_dir);
  fs::create_directory(next_dir);
  WriteInPlace(real_dir + "/real.yaml", "a: 1\n");
  WriteInPlace(next_dir + "/next.yaml", "a: 10\n");
  MakeSymlink(real_dir + "/real.yaml", config_);

  FileWatcher watcher(config_);
  EXPECT_EQ(WatchOf(watcher, real_dir), real_dir + " (real.yaml)");
  EventWitness real_witness(real_dir);

  WriteInPlace(real_dir + "/real.yaml", "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 2\n");

  WriteInPlace(real_dir + "/neighbour.yaml", "b: 1\n");
  ASSERT_TRUE(real_witness.Saw("neighbour.yaml", IN_CLOSE_WRITE));
  EXPECT_TRUE(DeliveredButNotReported(watcher));

  // Retarget the link (relative this time) atomically.
  MakeSymlink("../opt/next.yaml", dir_ + "/config.yaml.new");
  Rename(dir_ + "/config.yaml.new", config_);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 10\n");
  EXPECT_EQ(WatchOf(watcher, real_dir), "") << "stale watch kept on the old target's directory";
  EXPECT_EQ(WatchOf(watcher, next_dir), next_dir + " (next.yaml)");
  EXPECT_FALSE(FdReadableNow(watcher.fd())) << "the dropped watch's IN_IGNORED was left pending";

  WriteInPlace(real_dir + "/real.yaml", "a: 3\n");
  ASSERT_TRUE(real_witness.Saw("real.yaml", IN_CLOSE_WRITE));
  EXPECT_FALSE(FdReadableNow(watcher.fd())) << "the old target is still watched";

  WriteInPlace(next_dir + "/next.yaml", "a: 11\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, UnrelatedNamesInTheDirectoryAreNotReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);
  EventWitness witness(dir_);

  WriteInPlace(dir_ + "/other.yaml", "b: 1\n");
  WriteInPlace(dir_ + "/.config.yaml.swp", "swap");
  ASSERT_EQ(unlink((dir_ + "/.config.yaml.swp").c_str()), 0);
  WriteInPlace(dir_ + "/config.yaml.bak", "a: 0\n");
  WriteInPlace(dir_ + "/config.yaml~", "a: 0\n");
  WriteInPlace(dir_ + "/xconfig.yaml", "a: 0\n");
  fs::create_directory(dir_ + "/subdir");
  WriteInPlace(dir_ + "/subdir/config.yaml", "a: 0\n");
  Rename(dir_ + "/other.yaml", dir_ + "/other2.yaml");
  ASSERT_EQ(chmod((dir_ + "/other2.yaml").c_str(), 0600), 0);
  ASSERT_TRUE(witness.Saw("other2.yaml", IN_ATTRIB));
  EXPECT_TRUE(DeliveredButNotReported(watcher));

  WriteInPlace(config_, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_FALSE(FdReadableNow(watcher.fd()));
}

TEST_F(FileWatcherTest, DeletedDirectoryIsAwaitedAndItsReturnReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);

  fs::remove_all(dir_);
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{root_ + " (awaiting conf)"});

  fs::create_directory(dir_);
  WriteInPlace(config_, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, ..*)"});
  EXPECT_EQ(ReadFile(config_), "a: 2\n");
  WriteInPlace(config_, "a: 3\n");
  EXPECT_TRUE(ChangeReported(watcher)) << "the recreated directory is not watched";

  // The directory can also come back whole, renamed into place.
  fs::remove_all(dir_);
  EXPECT_TRUE(ChangeReported(watcher));
  fs::create_directory(root_ + "/staging");
  WriteInPlace(root_ + "/staging/config.yaml", "a: 4\n");
  Rename(root_ + "/staging", dir_);
  EXPECT_TRUE(ChangeReported(watcher));
  WriteInPlace(config_, "a: 5\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, DirectoryRenamedAsideAndReplacedIsReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);

  // Only IN_MOVE_SELF reaches the watch: no event names the file.
  const std::string aside = root_ + "/conf.old";
  Rename(dir_, aside);
  fs::create_directory(dir_);
  WriteInPlace(config_, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, ..*)"});
  EXPECT_FALSE(FdReadableNow(watcher.fd())) << "events left pending";

  EventWitness aside_witness(aside);
  WriteInPlace(aside + "/config.yaml", "a: 0\n");
  ASSERT_TRUE(aside_witness.Saw("config.yaml", IN_CLOSE_WRITE));
  EXPECT_FALSE(FdReadableNow(watcher.fd())) << "the moved-away directory is still watched";
  WriteInPlace(config_, "a: 3\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, MissingDirectoriesAreAwaitedComponentByComponent) {
  const std::string deep_config = root_ + "/a/b/config.yaml";
  FileWatcher watcher(deep_config);
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{root_ + " (awaiting a)"});
  EXPECT_FALSE(watcher.HandleEvents());

  EventWitness witness(root_);
  fs::create_directory(root_ + "/a");
  ASSERT_TRUE(witness.Saw("a", IN_CREATE));
  EXPECT_TRUE(DeliveredButNotReported(watcher)) << "no directory of the file yet";
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{root_ + "/a (awaiting b)"});

  fs::create_directory(root_ + "/a/b");
  EXPECT_TRUE(ChangeReported(watcher)) << "the file's directory exists";
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{root_ + "/a/b (config.yaml, ..*)"});
  WriteInPlace(deep_config, "a: 1\n");
  EXPECT_TRUE(ChangeReported(watcher));

  // Several levels appearing at once (mkdir -p) and the file written before
  // the watcher had a chance to look.
  fs::remove_all(root_ + "/a");
  EXPECT_TRUE(ChangeReported(watcher));
  fs::create_directories(root_ + "/a/b");
  WriteInPlace(deep_config, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(deep_config), "a: 2\n");
  WriteInPlace(deep_config, "a: 3\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, DanglingSymlinkTargetDirectoryIsAwaited) {
  MakeSymlink("../later/config.yaml", config_);
  FileWatcher watcher(config_);
  EXPECT_EQ(watcher.WatchedPaths(),
            (std::vector<std::string>{root_ + " (awaiting later)", dir_ + " (config.yaml, ..*)"}));

  fs::create_directory(root_ + "/later");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(WatchOf(watcher, root_ + "/later"), root_ + "/later (config.yaml)");
  WriteInPlace(root_ + "/later/config.yaml", "a: 1\n");
  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(ReadFile(config_), "a: 1\n");
}

TEST_F(FileWatcherTest, ChmodAndTouchAreReported) {
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(config_);

  ASSERT_EQ(chmod(config_.c_str(), 0600), 0);
  EXPECT_TRUE(ChangeReported(watcher));
  ASSERT_EQ(utimensat(AT_FDCWD, config_.c_str(), nullptr, 0), 0);
  EXPECT_TRUE(ChangeReported(watcher));
}

TEST_F(FileWatcherTest, QueueOverflowRearmsEveryWatch) {
  long max_queued = 0;
  std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> max_queued;
  if (max_queued <= 0 || max_queued > (1 << 20)) {
    GTEST_SKIP() << "max_queued_events is " << max_queued << ": too many events to overflow quickly";
  }
  WriteInPlace(config_, "a: 1\n");
  const std::string flood = dir_ + "/flood.bin";  // an unrelated name: only the overflow may report
  WriteInPlace(flood, "");
  FileWatcher watcher(config_);
  EventWitness witness(dir_, IN_ATTRIB | IN_CLOSE_WRITE);

  // Alternating events, so that the kernel cannot merge them with the previous one.
  for (long i = 0; i < max_queued / 2 + 64; ++i) {
    ASSERT_EQ(chmod(flood.c_str(), (i % 2) ? 0600 : 0644), 0);
    int fd = open(flood.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  // While the queue is full, replace the directory: its events (IN_IGNORED
  // included) are lost, so only a full re-arm finds the new one.
  fs::remove_all(dir_);
  fs::create_directory(dir_);
  WriteInPlace(config_, "a: 2\n");
  if (!witness.DrainAndCheckOverflow()) GTEST_SKIP() << "the queue did not overflow";

  EXPECT_TRUE(ChangeReported(watcher));
  EXPECT_EQ(watcher.WatchedPaths(), std::vector<std::string>{dir_ + " (config.yaml, ..*)"});
  WriteInPlace(config_, "a: 3\n");
  EXPECT_TRUE(ChangeReported(watcher)) << "the new directory was not watched after the overflow";
}

}  // namespace

namespace {

// A directory source: its YAML names are content, other names are not, and a
// file's own symlink chain (the kubelet's) is followed as for a file source.
TEST_F(FileWatcherTest, DirectorySourceReportsYamlFilesAppearingChangingAndVanishing) {
  WriteInPlace(dir_ + "/10-a.yaml", "a: 1\n");
  FileWatcher watcher(std::vector<std::string>{dir_});
  EXPECT_EQ(WatchOf(watcher, dir_), dir_ + " (*.yaml, *.yml, ..*)");
  EXPECT_EQ(WatchOf(watcher, root_), root_ + " (conf, ..*)");

  WriteInPlace(dir_ + "/20-b.yml", "b: 1\n");
  EXPECT_TRUE(ChangeReported(watcher));
  WriteInPlace(dir_ + "/10-a.yaml", "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  ASSERT_EQ(unlink((dir_ + "/20-b.yml").c_str()), 0);
  EXPECT_TRUE(ChangeReported(watcher));

  EventWitness witness(dir_);
  WriteInPlace(dir_ + "/notes.txt", "x\n");
  WriteInPlace(dir_ + "/.hidden.yaml", "x\n");
  ASSERT_TRUE(witness.Saw(".hidden.yaml", IN_CLOSE_WRITE));
  EXPECT_TRUE(DeliveredButNotReported(watcher));
}

TEST_F(FileWatcherTest, SeveralSourcesShareOneWatcherAndAnInPlaceWriteBehindAKubeletLinkIsSeen) {
  // DIR/key.yaml -> ..data/key.yaml, ..data -> ..2026_01_01/
  const std::string secret = root_ + "/secret";
  fs::create_directories(secret + "/..2026_01_01");
  WriteInPlace(secret + "/..2026_01_01/key.yaml", "k: 1\n");
  MakeSymlink("..2026_01_01", secret + "/..data");
  MakeSymlink("..data/key.yaml", secret + "/key.yaml");
  WriteInPlace(config_, "a: 1\n");
  FileWatcher watcher(std::vector<std::string>{config_, secret});
  EXPECT_EQ(WatchOf(watcher, dir_), dir_ + " (config.yaml, ..*)");
  EXPECT_EQ(WatchOf(watcher, secret + "/..2026_01_01"), secret + "/..2026_01_01 (key.yaml)");

  WriteInPlace(secret + "/..2026_01_01/key.yaml", "k: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
  WriteInPlace(config_, "a: 2\n");
  EXPECT_TRUE(ChangeReported(watcher));
}

}  // namespace
