// config_file.hpp - reads the watched config file (or a --schema file) safely
// and hashes it.
//
// "Safely" means the read can never hang or balloon: the file is opened
// non-blocking (a FIFO dropped at the config path must not block the reload
// loop), anything but a regular file is refused, and at most max_bytes + 1
// bytes are read even if the file grows while we read it. Symlinks are
// followed, because the kubelet's ConfigMap layout is a chain of them.
//
// Threading: no shared state; safe to call from any thread.
#ifndef CONFCAST_PUBLISHER_CONFIG_FILE_HPP_
#define CONFCAST_PUBLISHER_CONFIG_FILE_HPP_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "config_error.hpp"

namespace confcast::publisher {

struct FileBytes {
  std::string bytes;
  std::array<unsigned char, 32> sha256;
  std::string sha256_hex;  // 64 lower-case hex digits
};

// Errors: kIo (cannot open, not a regular file, read error) or kTooLarge
// (st_size > max_bytes, detected without reading; or the file grew past
// max_bytes during the read). line/column are 0 for both.
std::variant<FileBytes, ConfigError> ReadConfigFile(const std::string& path, uint64_t max_bytes);

// SHA-256 of any bytes (OpenSSL EVP), and its lower-case hex form.
std::array<unsigned char, 32> Sha256(std::string_view bytes);
std::string ToHex(const std::array<unsigned char, 32>& digest);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_FILE_HPP_
