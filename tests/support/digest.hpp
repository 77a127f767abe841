// tests/support/digest.hpp - SHA-256 as the segment and confcastctl show it,
// so a test can compare what was published with the bytes it wrote.
//
// Threading: stateless; call from any thread.
#ifndef CONFCAST_TESTS_SUPPORT_DIGEST_HPP_
#define CONFCAST_TESTS_SUPPORT_DIGEST_HPP_

#include <openssl/evp.h>

#include <array>
#include <string>
#include <string_view>

namespace confcast::test_support {

inline std::array<unsigned char, 32> Sha256(std::string_view bytes) {
  std::array<unsigned char, 32> digest{};
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &n, EVP_sha256(), nullptr);
  return digest;
}

// Lower-case hex, as confcast_info.sha256_hex and `confcastctl status` print it.
inline std::string Hex(const std::array<unsigned char, 32>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

inline std::string Sha256Hex(std::string_view bytes) { return Hex(Sha256(bytes)); }

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_DIGEST_HPP_
