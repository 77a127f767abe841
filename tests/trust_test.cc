// trust_test.cc - only the publisher's user can change what workers read.
//
// Real publishers and readers as real other users, on the shared /dev/shm:
// another user squats the segment's name (an empty file, or a well-formed
// copy of a real segment) or its lock, holds an flock through a read-only
// descriptor across a publisher SIGKILL, or offers readers a segment anyone
// can write. CI runs as root: the attacker runs as `nobody`, the non-root
// publisher as `daemon`. As any other user the tests that need two users skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "confcast/confcast.h"
#include "confcast/subscriber.hpp"
#include "support/child_process.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"
#include "support/wait.hpp"

namespace {

using namespace confcast::test_support;
using confcast::Subscriber;

constexpr milliseconds kTimeout{15000};

std::string Config(const std::string& model) { return "llm:\n  model: " + model + "\n"; }

// Runs fn in a child process as `user`; returns its exit code (or -1).
int RunAs(const User& user, const std::function<int()>& fn) {
  ChildProcess child = ChildProcess::Fork(fn, "a child as uid " + std::to_string(user.uid), user);
  child.WaitExit(kTimeout);
  return child.exit_code();
}

// Creates /dev/shm/NAME as `user` with exactly these bytes and mode.
void Squat(const User& user, const std::string& name, const std::string& bytes, mode_t mode) {
  ASSERT_EQ(RunAs(user,
                  [&] {
                    const int fd = ::open(("/dev/shm/" + name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
                    if (fd < 0) return 1;
                    if (fchmod(fd, mode) != 0) return 2;
                    if (!bytes.empty() && write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
                      return 3;
                    }
                    close(fd);
                    return 0;
                  }),
            0);
}

struct stat StatOf(const std::string& path) {
  struct stat st {};
  stat(path.c_str(), &st);
  return st;
}

// The bytes of a real, published segment (to squat with a well-formed copy).
std::string RealSegmentBytes(const TempDir& dir, const std::string& model) {
  SegmentGuard real(UniqueName("trust-real"));
  const std::string config = dir / "real.yaml";
  WriteViaRename(config, Config(model));
  auto pub = ChildProcess::Spawn(PublisherArgs(config, real.name()), {.output_path = dir / "real.log"});
  auto sub = OpenWhenReady(real.name(), kTimeout);
  if (!sub || sub->Wait(0, static_cast<int>(kTimeout.count())) != CONFCAST_OK) return "";
  pub.Signal(SIGTERM);
  pub.WaitExit(kTimeout);
  return ReadFile("/dev/shm/" + real.name());
}

class Squatting : public ::testing::Test {
 protected:
  void SetUp() override {
    attacker_ = UserIfRoot("nobody");
    service_ = UserIfRoot("daemon");
    if (!attacker_ || !service_) GTEST_SKIP() << "needs root, to run the attacker and the service as other users";
    WriteViaRename(config_, Config("from-the-publisher"));
  }
  // Starts a publisher on segment_ (as `as`, or as this process) and waits for its exit.
  ChildProcess RunPublisher(std::optional<User> as, const std::string& log_name) {
    auto pub =
        ChildProcess::Spawn(PublisherArgs(config_, segment_.name()), {.output_path = dir_ / log_name, .as_user = as});
    EXPECT_TRUE(pub.WaitExit(kTimeout)) << "the publisher neither refused nor exited";
    return pub;
  }
  TempDir dir_{"trust"};
  const std::string config_ = dir_ / "config.yaml";
  SegmentGuard segment_{UniqueName("trust")};
  std::optional<User> attacker_, service_;
};

TEST_F(Squatting, AnEmptyFileAtTheNameIsRefusedByARootPublisher) {
  Squat(*attacker_, segment_.name(), "", 0666);
  auto pub = RunPublisher(std::nullopt, "pub.log");
  EXPECT_EQ(pub.exit_code(), 1);
  const std::string log = ReadFile(dir_ / "pub.log");
  EXPECT_NE(log.find("owned by uid " + std::to_string(attacker_->uid) + " (nobody), mode 0666"), std::string::npos)
      << log;
  const struct stat st = StatOf("/dev/shm/" + segment_.name());
  EXPECT_EQ(st.st_size, 0) << "the publisher initialised another user's file";
  EXPECT_EQ(st.st_uid, attacker_->uid);
}

TEST_F(Squatting, AWellFormedCopyIsRefusedByRootAndByAServiceUser) {
  const std::string copy = RealSegmentBytes(dir_, "from-the-squatter");
  ASSERT_FALSE(copy.empty());
  Squat(*attacker_, segment_.name(), copy, 0666);
  for (const std::optional<User>& as : {std::optional<User>(), service_}) {
    SCOPED_TRACE(as ? "publisher as daemon" : "publisher as root");
    auto pub = RunPublisher(as, as ? "daemon.log" : "root.log");
    EXPECT_EQ(pub.exit_code(), 1);
    const std::string log = ReadFile(dir_ / (as ? "daemon.log" : "root.log"));
    EXPECT_NE(log.find("refusing to use the segment /dev/shm/" + segment_.name()), std::string::npos) << log;
    EXPECT_NE(log.find("(nobody), mode 0666"), std::string::npos) << log;
    EXPECT_EQ(ReadFile("/dev/shm/" + segment_.name()), copy) << "the publisher wrote into the squatted file";
  }
  // A worker that starts first does not read the squatter's config either.
  EXPECT_EQ(RunAs(*service_,
                  [&] {
                    confcast_subscriber* sub = nullptr;
                    return confcast_open(segment_.name().c_str(), &sub) == CONFCAST_ERR_PERMISSION ? 0 : 1;
                  }),
            0);
}

TEST_F(Squatting, ASquattedLockIsRefusedWithItsOwnerAndMode) {
  Squat(*attacker_, segment_.name() + ".confcast-lock", "", 0666);
  for (const std::optional<User>& as : {std::optional<User>(), service_}) {
    SCOPED_TRACE(as ? "publisher as daemon" : "publisher as root");
    const std::string log_name = as ? "daemon.log" : "root.log";
    auto pub = RunPublisher(as, log_name);
    EXPECT_EQ(pub.exit_code(), 1);
    const std::string log = ReadFile(dir_ / log_name);
    EXPECT_NE(log.find("publisher lock file /dev/shm/" + segment_.name() + ".confcast-lock"), std::string::npos)
        << log;
    EXPECT_NE(log.find("(nobody), mode 0666"), std::string::npos) << log;
    EXPECT_NE(access(("/dev/shm/" + segment_.name()).c_str(), F_OK), 0) << "a segment was created anyway";
  }
}

// flock(2) works on a read-only descriptor: a worker holding one on the
// segment must not keep a restarted publisher out (it used to, naming the
// dead publisher's pid, for as long as the worker liked).
TEST_F(Squatting, AReadOnlyFlockHolderCannotKeepARestartedPublisherOut) {
  for (const std::optional<User>& as : {std::optional<User>(), service_}) {
    SCOPED_TRACE(as ? "publisher as daemon" : "publisher as root");
    SegmentGuard segment(UniqueName("trust-flock"));
    WriteViaRename(config_, Config("before-restart"));
    if (as) setenv("CONFCAST_SEGMENT_OWNER", std::to_string(as->uid).c_str(), 1);
    auto first = ChildProcess::Spawn(PublisherArgs(config_, segment.name(), {"--segment-mode", "0644"}),
                                     {.output_path = dir_ / "first.log", .as_user = as});
    auto sub = OpenWhenReady(segment.name(), kTimeout);
    ASSERT_TRUE(sub) << ReadFile(dir_ / "first.log");
    ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);

    // The holder: `nobody`, reading the segment, holding every lock it can
    // get on the segment and the lock file, until we kill it.
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    ChildProcess holder = ChildProcess::Fork(
        [&] {
          const int fd = ::open(("/dev/shm/" + segment.name()).c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) return 121;
          const int lock_fd = ::open(("/dev/shm/" + segment.name() + ".confcast-lock").c_str(), O_RDONLY | O_CLOEXEC);
          const char state = lock_fd >= 0 ? 'L' : 'S';  // L: it could open the lock file too (a failure)
          if (write(ready[1], &state, 1) != 1) return 122;
          pause();
          return 0;
        },
        "the flock holder", *attacker_);
    close(ready[1]);
    char state = 0;
    ASSERT_EQ(read(ready[0], &state, 1), 1) << "the holder could not open and flock the segment";
    close(ready[0]);
    EXPECT_EQ(state, 'S') << "a user who can only read the segment could open the publisher lock file";

    first.Signal(SIGKILL);
    ASSERT_TRUE(first.WaitExit(kTimeout));
    const uint64_t before = sub->version();
    WriteViaRename(config_, Config("after-restart"));
    auto second = ChildProcess::Spawn(PublisherArgs(config_, segment.name(), {"--segment-mode", "0644"}),
                                      {.output_path = dir_ / "second.log", .as_user = as});
    EXPECT_EQ(sub->Wait(before, static_cast<int>(kTimeout.count())), CONFCAST_OK) << ReadFile(dir_ / "second.log");
    EXPECT_EQ(sub->GetString("llm.model"), "after-restart");
    EXPECT_TRUE(second.Running()) << ReadFile(dir_ / "second.log");
    holder.KillAndReap();
    second.Signal(SIGTERM);
    ASSERT_TRUE(second.WaitExit(kTimeout));
    unsetenv("CONFCAST_SEGMENT_OWNER");
  }
}

TEST(SegmentMode, AModeThatLetsOthersWriteIsRefused) {
  TempDir dir("trust-mode");
  const std::string config = dir / "config.yaml";
  WriteViaRename(config, Config("m"));
  for (const char* mode : {"0666", "0660", "0602", "0620", "4640"}) {
    SCOPED_TRACE(mode);
    SegmentGuard segment(UniqueName("trust-mode"));
    auto pub = ChildProcess::Spawn(PublisherArgs(config, segment.name(), {"--segment-mode", mode}),
                                   {.output_path = dir / "pub.log"});
    ASSERT_TRUE(pub.WaitExit(kTimeout));
    EXPECT_EQ(pub.exit_code(), 1);
    EXPECT_NE(ReadFile(dir / "pub.log").find(std::string("--segment-mode ") + mode + " is refused"),
              std::string::npos);
    EXPECT_NE(access(("/dev/shm/" + segment.name()).c_str(), F_OK), 0) << "a segment was created anyway";
  }
}

// Readers check who could have written the segment before they read a byte.
class ReaderTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("CONFCAST_SEGMENT_OWNER");
    WriteViaRename(config_, Config("published"));
    pub_ = ChildProcess::Spawn(PublisherArgs(config_, segment_.name(), {"--segment-mode", "0644"}),
                               {.output_path = dir_ / "pub.log"});
    auto sub = OpenWhenReady(segment_.name(), kTimeout);
    ASSERT_TRUE(sub) << ReadFile(dir_ / "pub.log");
    ASSERT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count())), CONFCAST_OK);
    pub_.Signal(SIGTERM);
    ASSERT_TRUE(pub_.WaitExit(kTimeout));
  }
  void TearDown() override { unsetenv("CONFCAST_SEGMENT_OWNER"); }
  std::string File() const { return "/dev/shm/" + segment_.name(); }
  // The status confcast_open gives, and the C++ message.
  int OpenStatus(std::string* message = nullptr) const {
    confcast_subscriber* sub = nullptr;
    const int rc = confcast_open(segment_.name().c_str(), &sub);
    confcast_close(sub);
    if (message) {
      try {
        Subscriber s(segment_.name());
      } catch (const confcast::Error& e) {
        *message = e.what();
      }
    }
    return rc;
  }
  int CtlExit() const {
    const ProcessResult get = RunCtl(segment_.name(), {"get", "llm.model"}, kTimeout);
    return get.status.exited ? get.status.code : -1;
  }
  TempDir dir_{"trust-reader"};
  const std::string config_ = dir_ / "config.yaml";
  SegmentGuard segment_{UniqueName("trust-reader")};
  ChildProcess pub_;
};

TEST_F(ReaderTrust, ASegmentOthersCanWriteIsRefusedEvenFromATrustedOwner) {
  ASSERT_EQ(OpenStatus(), CONFCAST_OK);
  for (mode_t mode : {0666, 0664, 0646}) {
    ASSERT_EQ(chmod(File().c_str(), mode), 0);
    std::string message;
    EXPECT_EQ(OpenStatus(&message), CONFCAST_ERR_PERMISSION);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(message.find(std::string("mode ") + octal), std::string::npos) << message;
    EXPECT_NE(message.find(File()), std::string::npos) << message;
    EXPECT_EQ(CtlExit(), 5) << ReadFile(dir_ / "ctl.log");
  }
}

TEST_F(ReaderTrust, AForeignOwnerIsRefusedUnlessNamedInTheEnvironment) {
  const std::optional<User> nobody = UserIfRoot("nobody");
  const std::optional<User> daemon = UserIfRoot("daemon");
  if (!nobody || !daemon) GTEST_SKIP() << "needs root, to own the segment as another user";
  ASSERT_EQ(chown(File().c_str(), nobody->uid, nobody->gid), 0);
  std::string message;
  // Root trusts only root and itself: a segment of nobody's is refused.
  EXPECT_EQ(OpenStatus(&message), CONFCAST_ERR_PERMISSION);
  EXPECT_NE(message.find("owned by uid " + std::to_string(nobody->uid) + " (nobody), mode 0644"), std::string::npos)
      << message;
  EXPECT_NE(message.find("CONFCAST_SEGMENT_OWNER"), std::string::npos) << message;
  EXPECT_EQ(CtlExit(), 5);
  // So does a worker of a third user.
  EXPECT_EQ(RunAs(*daemon,
                  [&] {
                    confcast_subscriber* sub = nullptr;
                    return confcast_open(segment_.name().c_str(), &sub) == CONFCAST_ERR_PERMISSION ? 0 : 1;
                  }),
            0);
  // Naming the publisher's uid accepts it, for root and for the worker.
  setenv("CONFCAST_SEGMENT_OWNER", std::to_string(nobody->uid).c_str(), 1);
  EXPECT_EQ(OpenStatus(), CONFCAST_OK);
  EXPECT_EQ(CtlExit(), 0) << ReadFile(dir_ / "ctl.log");
  EXPECT_EQ(RunAs(*daemon,
                  [&] {
                    confcast_subscriber* sub = nullptr;
                    if (confcast_open(segment_.name().c_str(), &sub) != CONFCAST_OK) return 1;
                    char buf[64];
                    size_t len = 0;
                    const int rc = confcast_get_string(sub, "llm.model", buf, sizeof buf, &len, nullptr);
                    confcast_close(sub);
                    return rc == CONFCAST_OK && std::string(buf, len) == "published" ? 0 : 2;
                  }),
            0);
  // But never a segment that others can write, whoever owns it.
  ASSERT_EQ(chmod(File().c_str(), 0666), 0);
  EXPECT_EQ(OpenStatus(), CONFCAST_ERR_PERMISSION);
  // A value that is not a uid is an error, not a guess.
  ASSERT_EQ(chmod(File().c_str(), 0644), 0);
  setenv("CONFCAST_SEGMENT_OWNER", "nobody", 1);
  EXPECT_EQ(OpenStatus(&message), CONFCAST_ERR_INVALID);
  EXPECT_NE(message.find("must be a numeric uid"), std::string::npos) << message;
}

TEST_F(ReaderTrust, AFifoAtTheNameIsRefusedWithoutHanging) {
  ASSERT_EQ(unlink(File().c_str()), 0);
  ASSERT_EQ(mkfifo(File().c_str(), 0644), 0);
  // Opening a FIFO for reading blocks until a writer comes, unless O_NONBLOCK.
  EXPECT_EQ(OpenStatus(), CONFCAST_ERR_CORRUPT);
}

}  // namespace
