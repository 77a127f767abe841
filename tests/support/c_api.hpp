// tests/support/c_api.hpp - the C ABI (confcast.h) as tests call it: handles
// and keys closed on scope exit, and the buffer getters returned as strings.
//
// The helpers that expect success (OpenC, CJson, CSnapshot) record a gtest
// failure naming the status and return an empty value, so the test goes on
// to report what else is wrong.
//
// Threading: as confcast.h (a handle may be shared by threads).
#ifndef CONFCAST_TESTS_SUPPORT_C_API_HPP_
#define CONFCAST_TESTS_SUPPORT_C_API_HPP_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "confcast/confcast.h"

namespace confcast::test_support {

struct CloseHandle {
  void operator()(confcast_subscriber* s) const { confcast_close(s); }
};
using Handle = std::unique_ptr<confcast_subscriber, CloseHandle>;

struct FreeKey {
  void operator()(confcast_key* k) const { confcast_key_free(k); }
};
using CKey = std::unique_ptr<confcast_key, FreeKey>;

inline Handle OpenC(const std::string& segment) {
  confcast_subscriber* raw = nullptr;
  const int rc = confcast_open(segment.c_str(), &raw);
  EXPECT_EQ(rc, CONFCAST_OK) << segment << ": " << confcast_strerror(rc);
  return Handle(raw);
}

inline CKey NewKey(const char* path) {
  confcast_key* raw = nullptr;
  EXPECT_EQ(confcast_key_new(path, &raw), CONFCAST_OK) << path;
  return CKey(raw);
}

// confcast_open's status; also checks that a failed open leaves *out NULL.
inline int OpenStatus(const std::string& segment) {
  confcast_subscriber* raw = reinterpret_cast<confcast_subscriber*>(0x1);  // must be reset to NULL
  const int rc = confcast_open(segment.c_str(), &raw);
  if (rc == CONFCAST_OK) {
    confcast_close(raw);
  } else {
    EXPECT_EQ(raw, nullptr) << "confcast_open must leave *out NULL on failure";
  }
  return rc;
}

inline std::string CString(confcast_subscriber* s, const char* path, int* rc_out = nullptr,
                           uint64_t* version = nullptr) {
  char buf[4096];
  size_t len = 0;
  const int rc = confcast_get_string(s, path, buf, sizeof(buf), &len, version);
  if (rc_out) *rc_out = rc;
  return rc == CONFCAST_OK ? std::string(buf, len) : std::string();
}

inline std::string CJson(confcast_subscriber* s, const char* path, uint64_t* version = nullptr) {
  std::string buf(1 << 16, '\0');
  size_t len = 0;
  const int rc = confcast_get_json(s, path, buf.data(), buf.size(), &len, version);
  EXPECT_EQ(rc, CONFCAST_OK) << path << ": " << confcast_strerror(rc);
  return rc == CONFCAST_OK ? buf.substr(0, len) : std::string();
}

inline std::string CSnapshot(confcast_subscriber* s, uint64_t* version = nullptr) {
  std::string buf(1 << 16, '\0');
  size_t len = 0;
  const int rc = confcast_snapshot_json(s, buf.data(), buf.size(), &len, version);
  EXPECT_EQ(rc, CONFCAST_OK) << confcast_strerror(rc);
  return rc == CONFCAST_OK ? buf.substr(0, len) : std::string();
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_C_API_HPP_
