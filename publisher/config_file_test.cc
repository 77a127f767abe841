// Tests of ReadConfigFile on real files: regular files and symlinks read and
// hashed, and every kind of file that must be refused (FIFO, directory,
// dangling symlink, unreadable, too large, growing) refused promptly.
#include "config_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "config_test_support.hpp"

namespace confcast::publisher {
namespace {

using test_support::TempDir;
using testing_support::ErrorOf;
using testing_support::IsError;

FileBytes ReadOk(const std::string& path, uint64_t max_bytes = 1 << 20) {
  auto result = ReadConfigFile(path, max_bytes);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return FileBytes{};
  }
  return std::get<FileBytes>(std::move(result));
}

TEST(ConfigFile, Sha256OfKnownStrings) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(ToHex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(ConfigFile, ReadsARegularFileAndHashesIt) {
  TempDir dir("config");
  const std::string path = dir.Write("config.yaml", "abc");
  const FileBytes file = ReadOk(path);
  EXPECT_EQ(file.bytes, "abc");
  EXPECT_EQ(file.sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(file.sha256, Sha256("abc"));

  const FileBytes empty = ReadOk(dir.Write("empty.yaml", ""));
  EXPECT_EQ(empty.bytes, "");
  EXPECT_EQ(empty.sha256_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ConfigFile, FollowsTheKubeletSymlinkChain) {
  // config.yaml -> ..data/config.yaml, ..data -> ..2024_01_01_00_00_00.1/
  TempDir dir("config");
  std::filesystem::create_directory(dir.path() / "..2024_01_01_00_00_00.1");
  dir.Write("..2024_01_01_00_00_00.1/config.yaml", "llm:\n  model: a\n");
  std::filesystem::create_directory_symlink("..2024_01_01_00_00_00.1", dir.path() / "..data");
  std::filesystem::create_symlink("..data/config.yaml", dir.path() / "config.yaml");
  EXPECT_EQ(ReadOk((dir.path() / "config.yaml").string()).bytes, "llm:\n  model: a\n");
}

TEST(ConfigFile, AFifoIsRefusedWithoutBlocking) {
  TempDir dir("config");
  const std::string path = (dir.path() / "config.yaml").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  // No writer ever opens the FIFO: a blocking open or read would hang here.
  auto pending = std::async(std::launch::async, [&] { return ReadConfigFile(path, 1 << 20); });
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "ReadConfigFile blocked on a FIFO";
  const ConfigError error = ErrorOf(pending.get());
  EXPECT_TRUE(IsError(error, Reason::kIo, 0, 0, "", "is a FIFO (named pipe), not a regular file"));
  EXPECT_EQ(error.file, path);
}

// Whether anything opened the file at path while fn ran (inotify's IN_OPEN
// fires for every open of that inode, and never for O_PATH).
template <class Fn>
bool OpenedWhile(const std::string& path, Fn&& fn) {
  const int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0 || inotify_add_watch(in, path.c_str(), IN_OPEN) < 0) {
    ADD_FAILURE() << "inotify on " << path;
    return true;
  }
  fn();
  alignas(inotify_event) char buf[4096];
  const bool opened = ::read(in, buf, sizeof buf) > 0;
  ::close(in);
  return opened;
}

// A FIFO or a device is refused by its type before it is ever opened:
// opening one can do things of its own (block, rewind a tape, take a
// terminal), whatever flags the open carries.
TEST(ConfigFile, AFifoIsNeverOpened) {
  TempDir dir("config");
  const std::string path = (dir.path() / "config.yaml").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_FALSE(OpenedWhile(path, [&] { EXPECT_EQ(ErrorOf(ReadConfigFile(path, 1 << 20)).reason, Reason::kIo); }));
}

TEST(ConfigFile, ADeviceIsNeverOpened) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to make a device node";
  TempDir dir("config");
  const std::string path = (dir.path() / "config.yaml").string();
  ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);  // a /dev/null of our own
  // Followed through a symlink too, as the kubelet's ..data links are.
  const std::string link = (dir.path() / "link.yaml").string();
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  for (const std::string& p : {path, link}) {
    EXPECT_FALSE(OpenedWhile(path, [&] {
      EXPECT_TRUE(IsError(ErrorOf(ReadConfigFile(p, 1 << 20)), Reason::kIo, 0, 0, "",
                          "is a character device, not a regular file"));
    })) << p;
  }
}

TEST(ConfigFile, ADirectoryIsRefused) {
  TempDir dir("config");
  EXPECT_TRUE(IsError(ErrorOf(ReadConfigFile(dir.path().string(), 1 << 20)), Reason::kIo, 0, 0, "",
                      "is a directory, not a regular file"));
}

TEST(ConfigFile, AMissingFileOrDanglingSymlinkIsRefused) {
  TempDir dir("config");
  EXPECT_TRUE(IsError(ErrorOf(ReadConfigFile((dir.path() / "absent.yaml").string(), 1 << 20)), Reason::kIo, 0, 0, "",
                      "cannot open the file: No such file or directory"));
  std::filesystem::create_symlink("gone.yaml", dir.path() / "config.yaml");
  const ConfigError error = ErrorOf(ReadConfigFile((dir.path() / "config.yaml").string(), 1 << 20));
  EXPECT_TRUE(IsError(error, Reason::kIo, 0, 0, "", "a symlink whose target does not exist"));
  EXPECT_EQ(error.ToString(), (dir.path() / "config.yaml").string() +
                                  ": cannot open the file: No such file or directory (a symlink whose target does "
                                  "not exist)");
}

TEST(ConfigFile, AnUnreadableFileIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read a mode-000 file";
  TempDir dir("config");
  const std::string path = dir.Write("config.yaml", "a: 1\n");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  EXPECT_TRUE(IsError(ErrorOf(ReadConfigFile(path, 1 << 20)), Reason::kIo, 0, 0, "", "Permission denied"));
}

TEST(ConfigFile, AFileAboveTheLimitIsRefusedUnread) {
  TempDir dir("config");
  const std::string at_limit = dir.Write("at.yaml", std::string(100, 'a'));
  EXPECT_EQ(ReadOk(at_limit, 100).bytes.size(), 100u);
  const std::string above = dir.Write("above.yaml", std::string(101, 'a'));
  const ConfigError error = ErrorOf(ReadConfigFile(above, 100));
  EXPECT_TRUE(IsError(error, Reason::kTooLarge, 0, 0, "",
                      "the file is 101 bytes, above the limit of 100 bytes (--max-config-bytes)"));
}

TEST(ConfigFile, ReadingStopsAtTheLimitWhenTheSizeLies) {
  // /proc files report st_size 0 but have content: the read loop itself must
  // stop one byte past the limit, as it would for a file growing under us.
  const ConfigError error = ErrorOf(ReadConfigFile("/proc/self/status", 16));
  EXPECT_TRUE(IsError(error, Reason::kTooLarge, 0, 0, "", "more than 16 bytes"));
  EXPECT_GT(ReadOk("/proc/self/status").bytes.size(), 16u);
}

}  // namespace
}  // namespace confcast::publisher
