// segment_creation_test.cc - where and how confcast-publisher creates its
// segment: an absolute path in a tmpfs works as a POSIX shm name does;
// --segment-mode is exact whatever the umask (shm and file segments); no
// room on the tmpfs is a clear error at start that leaves nothing behind; a
// config that outgrows --capacity is rejected (too_large) and the old version
// kept; a reader's mapping is read-only; a process that is not the owner
// cannot publish into the segment.
//
// Threading: single-threaded; forked children only read (or try to write)
// and exit.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <variant>

#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"
#include "segment_writer.hpp"
#include "support/child_process.hpp"
#include "support/configs.hpp"
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

const milliseconds kTimeout(15000);

using SegmentPlacement = PublisherTest;

TEST_F(SegmentPlacement, AbsolutePathInATmpfsWorksTheSame) {
  SegmentGuard file_segment("/dev/shm/" + UniqueName("abs") + ".seg");
  WriteInPlace(config_, ModelConfig("on-tmpfs"));
  PublisherOptions o = Options();
  o.segment = file_segment.name();
  // Locals, not the fixture's pub_ and sub_: they must be gone before
  // file_segment removes what they use.
  std::optional<ChildProcess> pub;
  std::optional<Subscriber> sub;
  ASSERT_NO_FATAL_FAILURE(StartAndOpen(o, &pub, &sub));
  EXPECT_TRUE(file_segment.Exists());
  EXPECT_EQ(sub->GetString("llm.model"), "on-tmpfs");
  const uint64_t v = sub->version();
  WriteInPlace(config_, ModelConfig("still-on-tmpfs"));
  ASSERT_EQ(WaitForVersionAbove(*sub, v, kEventTimeout), v + 1) << pub->Describe();
  EXPECT_EQ(sub->GetString("llm.model"), "still-on-tmpfs");
  const ProcessResult get = RunCtl(file_segment.name(), {"get", "llm.model"});
  EXPECT_TRUE(get.status.ExitedWith(0)) << get.Describe();
  EXPECT_EQ(get.out, "still-on-tmpfs\n");
}

struct ModeCase {
  std::optional<std::string> flag;  // --segment-mode, nullopt: the default
  mode_t umask;
  mode_t expected;
};

class SegmentModeFlag : public PublisherTest, public ::testing::WithParamInterface<ModeCase> {};

TEST_P(SegmentModeFlag, ModeIsExactWhateverTheUmask) {
  PublisherOptions o = Options();
  if (GetParam().flag) o.extra_args = {"--segment-mode", *GetParam().flag};
  o.spawn.umask = GetParam().umask;
  ASSERT_NO_FATAL_FAILURE(PublishFirst(ModelConfig("mode"), o));
  struct stat st;
  ASSERT_EQ(stat(segment_.file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, GetParam().expected) << std::oct << (st.st_mode & 07777);
}

INSTANTIATE_TEST_SUITE_P(Modes, SegmentModeFlag,
                         ::testing::Values(ModeCase{"0600", 077, 0600}, ModeCase{"0600", 000, 0600},
                                           ModeCase{std::nullopt, 077, 0640}, ModeCase{"0644", 022, 0644}),
                         [](const ::testing::TestParamInfo<ModeCase>& p) {
                           char name[64];
                           std::snprintf(name, sizeof(name), "Mode%s_Umask%03o",
                                         p.param.flag ? p.param.flag->c_str() : "Default",
                                         static_cast<unsigned>(p.param.umask));
                           return std::string(name);
                         });

// A tmpfs of 1 MiB mounted for the test, unmounted at the end.
class SmallTmpfs {
 public:
  SmallTmpfs() : dir_("fault-tmpfs") {
    mounted_ = mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=1M,mode=0755") == 0;
    error_ = errno;
  }
  ~SmallTmpfs() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  int error() const { return error_; }
  std::string operator/(const std::string& name) const { return dir_ / name; }

 private:
  TempDir dir_;
  bool mounted_ = false;
  int error_ = 0;
};

using SegmentCapacity = PublisherTest;

TEST_F(SegmentCapacity, NoRoomForTheSegmentIsAClearErrorAtStart) {
  SmallTmpfs tmpfs;
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(tmpfs.error());
  WriteViaRename(config_, NumberedConfig(1));
  const std::string segment = tmpfs / "segment";
  auto pub = ChildProcess::Spawn(PublisherArgs(config_, segment, {"--capacity", std::to_string(4 << 20)}),
                                 {.output_path = log_});
  ASSERT_TRUE(pub.WaitExit(kTimeout));
  EXPECT_EQ(pub.exit_code(), 1);
  const std::string text = ReadFile(log_);
  EXPECT_NE(text.find("no room for segment " + segment), std::string::npos) << text;
  EXPECT_NE(text.find("No space left on device"), std::string::npos) << text;
  EXPECT_FALSE(std::filesystem::exists(segment)) << "a segment that does not fit must not be left behind";

  // The same tmpfs takes a segment that fits.
  auto fits = ChildProcess::Spawn(PublisherArgs(config_, segment, {"--capacity", "65536"}), {.output_path = log_});
  auto sub = OpenWhenReady(segment, kTimeout);
  ASSERT_TRUE(sub) << ReadFile(log_);
  uint64_t v = 0;
  EXPECT_EQ(sub->Wait(0, static_cast<int>(kTimeout.count()), &v), CONFCAST_OK);
  fits.Signal(SIGTERM);
  ASSERT_TRUE(fits.WaitExit(kTimeout));
}

TEST_F(SegmentCapacity, ConfigGrowingPastCapacityIsRejectedTooLargeAndTheOldVersionKept) {
  FirstPublisher first = StartFirst(NumberedConfig(5), kTimeout, {"--capacity", "4096", "--debounce-ms", "20"});
  ASSERT_TRUE(first.reader);
  auto& [pub, sub, v] = first;
  ASSERT_TRUE(WaitUntilWatching(pub.pid(), kTimeout));

  std::string big = NumberedConfig(6) + "toolsets:\n";
  for (int i = 0; i < 200; ++i) big += "  toolset-" + std::to_string(i) + ":\n    enabled: true\n";
  WriteViaRename(config_, big);
  uint64_t by_reason[layout::kReasonCount] = {};
  ASSERT_TRUE(WaitUntil(
      [&] { return sub->ErrorsByReason(by_reason) == CONFCAST_OK && by_reason[layout::kReasonTooLarge] == 1; },
      kTimeout))
      << ReadFile(log_);
  confcast_info info;
  ASSERT_EQ(sub->Info(&info), CONFCAST_OK);
  EXPECT_EQ(std::string(info.last_error).rfind(config_ + ": the validated config needs ", 0), 0u) << info.last_error;
  EXPECT_NE(std::string(info.last_error).find("more than the segment's --capacity of 4096"), std::string::npos)
      << info.last_error;
  EXPECT_EQ(info.reload_errors_total, 1u);
  EXPECT_EQ(sub->version(), v);
  EXPECT_EQ(sub->GetString("fault.s"), "n=5");
  EXPECT_TRUE(pub.Running());

  // A config that fits again is published.
  WriteViaRename(config_, NumberedConfig(8));
  ASSERT_EQ(sub->Wait(v, static_cast<int>(kTimeout.count())), CONFCAST_OK) << ReadFile(log_);
  EXPECT_EQ(sub->GetString("fault.s"), "n=8");
  pub.Signal(SIGTERM);
  ASSERT_TRUE(pub.WaitExit(kTimeout));
}

using SegmentPermissions = PublisherTest;

TEST_F(SegmentPermissions, SegmentModeIsHonouredWhateverTheUmask) {
  WriteViaRename(config_, NumberedConfig(1));
  struct Case {
    mode_t umask;
    mode_t mode;
    bool file_segment;
  };
  for (const Case c : {Case{0077, 0644, false}, Case{0, 0600, false}, Case{0027, 0604, false}, Case{0077, 0644, true},
                       Case{0, 0640, true}}) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(c.mode));
    SCOPED_TRACE(std::string("mode ") + octal + " umask " + std::to_string(c.umask) +
                 (c.file_segment ? " (file segment)" : " (shm)"));
    // A file segment is an absolute path in a tmpfs: /dev/shm is one.
    SegmentGuard shm(UniqueName("mode") + (c.file_segment ? ".file" : ""));
    const std::string on_disk = "/dev/shm/" + shm.name();
    const std::string segment = c.file_segment ? on_disk : shm.name();
    auto pub = ChildProcess::Spawn(PublisherArgs(config_, segment, {"--segment-mode", octal}),
                                   {.output_path = log_, .umask = c.umask});
    auto sub = OpenWhenReady(segment, kTimeout);
    ASSERT_TRUE(sub) << ReadFile(log_);
    struct stat st {};
    ASSERT_EQ(stat(on_disk.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, c.mode);
    pub.Signal(SIGTERM);
    ASSERT_TRUE(pub.WaitExit(kTimeout));
  }
}

// In the child: finds the reader's own mapping of the segment in /proc/self/maps.
uintptr_t MappingOf(const std::string& path, std::string* perms) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() > path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) {
      std::istringstream in(line);
      std::string range;
      in >> range >> *perms;
      return std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    }
  }
  return 0;
}

TEST_F(SegmentPermissions, AReadersMappingIsReadOnly) {
  FirstPublisher first = StartFirst(NumberedConfig(4), kTimeout, {});
  ASSERT_TRUE(first.reader);
  auto& [pub, sub, v] = first;

  // The child's exit code says how far it got: 77 = the write faulted.
  ChildProcess child = ChildProcess::Fork(
      [&] {
        Subscriber reader(segment_.name());
        std::string perms;
        auto* base = reinterpret_cast<volatile uint64_t*>(MappingOf("/dev/shm/" + segment_.name(), &perms));
        if (base == nullptr) return 2;
        if (perms != "r--s") return 3;
        // Even on purpose, a reader cannot make its mapping writable: the fd was O_RDONLY.
        if (mprotect(const_cast<uint64_t*>(base), 4096, PROT_READ | PROT_WRITE) == 0) return 4;
        if (errno != EACCES) return 5;
        struct sigaction sa {};
        sa.sa_handler = [](int) { _exit(77); };
        sigaction(SIGSEGV, &sa, nullptr);
        sigaction(SIGBUS, &sa, nullptr);
        base[9] = 0xdead;  // the header's version word
        return 6;
      },
      "a reader writing through its mapping");
  ASSERT_TRUE(child.WaitExit(kTimeout));
  EXPECT_TRUE(child.exit_status()->ExitedWith(77) || child.term_signal() == SIGSEGV) << child.Describe();
  EXPECT_EQ(sub->GetString("fault.s"), "n=4");
  pub.Signal(SIGTERM);
  ASSERT_TRUE(pub.WaitExit(kTimeout));
}

TEST_F(SegmentPermissions, AProcessThatIsNotTheOwnerCannotPublish) {
  const std::optional<User> nobody = NobodyIfRoot();
  if (!nobody) GTEST_SKIP() << "needs root, to run a second process as another user";
  FirstPublisher first = StartFirst(NumberedConfig(2), kTimeout, {"--segment-mode", "0640"});
  ASSERT_TRUE(first.reader);
  auto& [pub, sub, v] = first;
  const uint64_t version = sub->version();
  pub.Signal(SIGTERM);  // even with no publisher holding the lock
  ASSERT_TRUE(pub.WaitExit(kTimeout));

  // Exit code: 0 = refused with a permission error; others say what happened.
  const std::string message_file = dir_ / "child.txt";
  WriteViaRename(message_file, "", 0666);  // the child, as nobody, writes its message here
  ChildProcess child = ChildProcess::Fork(
      [&] {
        if (open(("/dev/shm/" + segment_.name()).c_str(), O_RDWR) >= 0) return 3;
        auto opened = confcast::publisher::SegmentWriter::Open({segment_.name(), 1 << 20, 0640});
        if (std::holds_alternative<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened)) return 4;
        const auto& failure = std::get<confcast::publisher::SegmentWriter::Failure>(opened);
        std::ofstream(message_file, std::ios::trunc) << failure.message;
        return failure.message.find("owned by uid 0 (root)") != std::string::npos ? 0 : 5;
      },
      "SegmentWriter::Open as nobody", nobody);
  ASSERT_TRUE(child.WaitExit(kTimeout));
  EXPECT_TRUE(child.exit_status()->ExitedWith(0)) << child.Describe() << ReadFile(message_file);
  // The lock file the root publisher left beside the segment stops it first.
  EXPECT_NE(ReadFile(message_file).find("/dev/shm/" + segment_.name() + ".confcast-lock"), std::string::npos)
      << ReadFile(message_file);
  // And the publisher binary run as nobody says so and exits 1.
  auto intruder = ChildProcess::Spawn(PublisherArgs(config_, segment_.name()),
                                      {.output_path = dir_ / "intruder.log", .as_user = nobody});
  ASSERT_TRUE(intruder.WaitExit(kTimeout));
  EXPECT_EQ(intruder.exit_code(), 1);
  EXPECT_NE(ReadFile(dir_ / "intruder.log").find("owned by uid 0 (root)"), std::string::npos)
      << ReadFile(dir_ / "intruder.log");
  EXPECT_EQ(sub->version(), version);
  EXPECT_EQ(sub->GetString("fault.s"), "n=2");
}

}  // namespace
}  // namespace confcast
