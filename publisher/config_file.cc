#include "config_file.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace confcast::publisher {
namespace {

ConfigError IoError(const std::string& path, std::string message) {
  return ConfigError{Reason::kIo, path, 0, 0, "", std::move(message)};
}

ConfigError TooLarge(const std::string& path, uint64_t seen, bool at_least, uint64_t max_bytes) {
  return ConfigError{Reason::kTooLarge, path, 0, 0, "",
                     "the file is " + std::string(at_least ? "more than " : "") + std::to_string(seen) +
                         " bytes, above the limit of " + std::to_string(max_bytes) +
                         " bytes (--max-config-bytes); it was not parsed"};
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string OpenFailure(const std::string& path, int error) {
  std::string message = "cannot open the file: ";
  message += std::strerror(error);
  if (error == ENOENT) {
    struct stat link_stat {};
    if (::lstat(path.c_str(), &link_stat) == 0 && S_ISLNK(link_stat.st_mode)) {
      message += " (a symlink whose target does not exist)";
    }
  }
  return message;
}


// Opens path for reading only if it is a regular file, without ever opening
// anything else: opening a device can have effects of its own (a tape
// rewinds, a terminal becomes our controlling one), and a FIFO would block.
// O_PATH resolves the name (symlinks included: the kubelet's ..data) without
// opening the file; once fstat says it is regular, /proc/self/fd reopens that
// very inode for reading, so no rename in between can slip another file in.
std::variant<int, ConfigError> OpenRegularFile(const std::string& path, struct stat* file_stat) {
  int path_fd;
  do {
    path_fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  } while (path_fd < 0 && errno == EINTR);
  if (path_fd < 0) return IoError(path, OpenFailure(path, errno));
  Fd located(path_fd);
  if (::fstat(located.get(), file_stat) != 0) {
    return IoError(path, std::string("cannot stat the file: ") + std::strerror(errno));
  }
  if (!S_ISREG(file_stat->st_mode)) {
    return IoError(path, std::string("is ") + FileKind(file_stat->st_mode) + ", not a regular file");
  }
  constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  const std::string self = "/proc/self/fd/" + std::to_string(located.get());
  int fd;
  do {
    fd = ::open(self.c_str(), kReadFlags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ENOENT) {
    // No /proc: open by name, and make sure it is the file we checked.
    do {
      fd = ::open(path.c_str(), kReadFlags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return IoError(path, OpenFailure(path, errno));
    struct stat opened {};
    if (::fstat(fd, &opened) != 0 || opened.st_dev != file_stat->st_dev || opened.st_ino != file_stat->st_ino) {
      ::close(fd);
      return IoError(path, "the file was replaced while it was being opened; it will be read again");
    }
  }
  if (fd < 0) return IoError(path, OpenFailure(path, errno));
  return fd;
}

}  // namespace

std::array<unsigned char, 32> Sha256(std::string_view bytes) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    // Only a broken OpenSSL installation gets here; hashing is not optional.
    throw std::runtime_error("OpenSSL EVP_Digest(SHA-256) failed");
  }
  return digest;
}

std::string ToHex(const std::array<unsigned char, 32>& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (unsigned char byte : digest) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0xf];
  }
  return hex;
}

std::variant<FileBytes, ConfigError> ReadConfigFile(const std::string& path, uint64_t max_bytes) {
  struct stat file_stat {};
  auto opened = OpenRegularFile(path, &file_stat);
  if (auto* error = std::get_if<ConfigError>(&opened)) return std::move(*error);
  Fd fd(std::get<int>(opened));

  const auto size = static_cast<uint64_t>(file_stat.st_size);
  if (size > max_bytes) return TooLarge(path, size, false, max_bytes);

  // Read up to one byte past the limit: the file may have grown since fstat.
  const uint64_t read_limit = max_bytes == UINT64_MAX ? max_bytes : max_bytes + 1;
  FileBytes result;
  result.bytes.resize(static_cast<size_t>(std::min<uint64_t>(size, max_bytes) + 1));
  size_t filled = 0;
  while (filled < read_limit) {
    if (filled == result.bytes.size()) {
      result.bytes.resize(static_cast<size_t>(std::min<uint64_t>(read_limit, filled * 2 + 4096)));
    }
    const ssize_t got = ::read(fd.get(), result.bytes.data() + filled, result.bytes.size() - filled);
    if (got < 0) {
      if (errno == EINTR) continue;
      return IoError(path, std::string("cannot read the file: ") + std::strerror(errno));
    }
    if (got == 0) break;
    filled += static_cast<size_t>(got);
  }
  if (filled > max_bytes) return TooLarge(path, max_bytes, true, max_bytes);
  result.bytes.resize(filled);
  result.sha256 = Sha256(result.bytes);
  result.sha256_hex = ToHex(result.sha256);
  return result;
}

}  // namespace confcast::publisher
