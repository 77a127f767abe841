// c_api.cc - libconfcast: the C ABI of confcast.h, a client of the public
// C++ API (subscriber.hpp). Only the confcast_* functions are exported
// (-fvisibility=hidden plus a version script), and every entry point is
// noexcept: no C++ exception can cross into a C or ctypes caller.
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "confcast/confcast.h"
#include "confcast/subscriber.hpp"

struct confcast_subscriber {
  confcast::Subscriber sub;
};

struct confcast_key {
  confcast::Key key;
};

namespace {

// A C path as a string_view: its bytes up to the NUL and not one beyond
// (strlen, not strnlen: glibc's strlen is the faster of the two by about a
// nanosecond on a 15-byte path, a tenth of a by-path read; a path longer
// than the format allows is answered NOT_FOUND by the reader).
std::string_view CPath(const char* path) noexcept {
  return std::string_view(path, std::strlen(path));
}

}  // namespace

extern "C" {

int confcast_open(const char* segment, confcast_subscriber** out) {
  if (out == nullptr) return CONFCAST_ERR_INVALID;
  *out = nullptr;
  confcast::Subscriber sub{confcast::SegmentMapping()};
  const int rc = confcast::Subscriber::Open(segment ? std::string_view(segment) : std::string_view(), &sub);
  if (rc != CONFCAST_OK) return rc;
  *out = new (std::nothrow) confcast_subscriber{std::move(sub)};
  return *out ? CONFCAST_OK : CONFCAST_ERR_SYSTEM;
}

void confcast_close(confcast_subscriber* sub) { delete sub; }

uint64_t confcast_version(const confcast_subscriber* sub) { return sub ? sub->sub.version() : 0; }

int confcast_get_int(confcast_subscriber* sub, const char* path, int64_t* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  return sub->sub.Get(CPath(path), out, version);
}

int confcast_get_double(confcast_subscriber* sub, const char* path, double* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  return sub->sub.Get(CPath(path), out, version);
}

int confcast_get_bool(confcast_subscriber* sub, const char* path, int* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  bool value = false;
  const int rc = sub->sub.Get(CPath(path), &value, version);
  if (rc == CONFCAST_OK) *out = value ? 1 : 0;
  return rc;
}

int confcast_get_string(confcast_subscriber* sub, const char* path, char* buf, size_t cap, size_t* len,
                        uint64_t* version) {
  if (!sub || !path || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return sub->sub.GetString(CPath(path), buf, cap, len, version);
}

int confcast_get_json(confcast_subscriber* sub, const char* path, char* buf, size_t cap, size_t* len,
                      uint64_t* version) {
  if (!sub || !path || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return sub->sub.GetJson(CPath(path), buf, cap, len, version);
}

int confcast_is_secret(confcast_subscriber* sub, const char* path) {
  if (!sub || !path) return CONFCAST_ERR_INVALID;
  return sub->sub.IsSecret(CPath(path));
}

int confcast_snapshot_json(confcast_subscriber* sub, char* buf, size_t cap, size_t* len, uint64_t* version) {
  if (!sub || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return sub->sub.SnapshotJson(buf, cap, len, version);
}

int confcast_wait(confcast_subscriber* sub, uint64_t after_version, int timeout_ms, uint64_t* version) {
  if (!sub) return CONFCAST_ERR_INVALID;
  return sub->sub.Wait(after_version, timeout_ms, version);
}

int confcast_info_get(confcast_subscriber* sub, confcast_info* out) {
  if (!sub || !out) return CONFCAST_ERR_INVALID;
  return sub->sub.Info(out);
}

const char* confcast_strerror(int status) { return confcast::StatusMessage(status); }

int confcast_hold(confcast_subscriber* sub, uint64_t version) {
  if (!sub) return CONFCAST_ERR_INVALID;
  return sub->sub.Hold(version);
}

int confcast_release(confcast_subscriber* sub, uint64_t version) {
  if (!sub) return CONFCAST_ERR_INVALID;
  return sub->sub.Release(version);
}

int confcast_key_new(const char* path, confcast_key** out) {
  if (out == nullptr) return CONFCAST_ERR_INVALID;
  *out = nullptr;
  if (path == nullptr) return CONFCAST_ERR_INVALID;
  try {
    *out = new confcast_key{confcast::Key(std::string(path))};
  } catch (...) {
    return CONFCAST_ERR_SYSTEM;
  }
  return CONFCAST_OK;
}

void confcast_key_free(confcast_key* key) { delete key; }

int confcast_get_int_key(confcast_subscriber* sub, const confcast_key* key, int64_t* out, uint64_t* version) {
  if (!sub || !key || !out) return CONFCAST_ERR_INVALID;
  return sub->sub.Get(key->key, out, version);
}

int confcast_get_double_key(confcast_subscriber* sub, const confcast_key* key, double* out, uint64_t* version) {
  if (!sub || !key || !out) return CONFCAST_ERR_INVALID;
  return sub->sub.Get(key->key, out, version);
}

int confcast_get_bool_key(confcast_subscriber* sub, const confcast_key* key, int* out, uint64_t* version) {
  if (!sub || !key || !out) return CONFCAST_ERR_INVALID;
  bool value = false;
  const int rc = sub->sub.Get(key->key, &value, version);
  if (rc == CONFCAST_OK) *out = value ? 1 : 0;
  return rc;
}

int confcast_get_string_key(confcast_subscriber* sub, const confcast_key* key, char* buf, size_t cap, size_t* len,
                            uint64_t* version) {
  if (!sub || !key || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return sub->sub.GetString(key->key, buf, cap, len, version);
}

}  // extern "C"
