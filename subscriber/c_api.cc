// c_api.cc - libconfcast: the C ABI of confcast.h over the header-only C++
// subscriber. Only the confcast_* functions are exported (-fvisibility=hidden
// plus a version script), and every entry point is noexcept: no C++ exception
// can cross into a C or ctypes caller.
#include <cstring>
#include <new>

#include "confcast/confcast.h"
#include "confcast/subscriber.hpp"

struct confcast_subscriber {
  confcast::Subscriber sub;
};


namespace confcast {
struct SubscriberAccess {
  static confcast_subscriber* New() noexcept { return new (std::nothrow) confcast_subscriber{Subscriber(Subscriber::Unopened{})}; }
  template <class T>
  static int Get(const confcast_subscriber* s, const char* path, T* out, uint64_t* version) noexcept {
    return s->sub.GetCPath(path, out, version);
  }
  static int GetString(const confcast_subscriber* s, const char* path, char* buf, size_t cap, size_t* len,
                       uint64_t* version) noexcept {
    return s->sub.GetStringCPath(path, buf, cap, len, version);
  }
  static int GetJson(const confcast_subscriber* s, const char* path, char* buf, size_t cap, size_t* len,
                     uint64_t* version) noexcept {
    return s->sub.GetJsonCPath(path, buf, cap, len, version);
  }
};
}  // namespace confcast

extern "C" {

int confcast_open(const char* segment, confcast_subscriber** out) {
  if (out == nullptr) return CONFCAST_ERR_INVALID;
  *out = nullptr;
  confcast_subscriber* handle = confcast::SubscriberAccess::New();
  if (handle == nullptr) return CONFCAST_ERR_SYSTEM;
  const int rc = confcast::Subscriber::Open(segment ? std::string_view(segment) : std::string_view(), &handle->sub);
  if (rc != CONFCAST_OK) {
    delete handle;
    return rc;
  }
  *out = handle;
  return CONFCAST_OK;
}

void confcast_close(confcast_subscriber* sub) { delete sub; }

uint64_t confcast_version(const confcast_subscriber* sub) { return sub ? sub->sub.version() : 0; }

int confcast_get_int(confcast_subscriber* sub, const char* path, int64_t* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  return confcast::SubscriberAccess::Get(sub, path, out, version);
}

int confcast_get_double(confcast_subscriber* sub, const char* path, double* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  return confcast::SubscriberAccess::Get(sub, path, out, version);
}

int confcast_get_bool(confcast_subscriber* sub, const char* path, int* out, uint64_t* version) {
  if (!sub || !path || !out) return CONFCAST_ERR_INVALID;
  bool value = false;
  const int rc = confcast::SubscriberAccess::Get(sub, path, &value, version);
  if (rc == CONFCAST_OK) *out = value ? 1 : 0;
  return rc;
}

int confcast_get_string(confcast_subscriber* sub, const char* path, char* buf, size_t cap, size_t* len,
                        uint64_t* version) {
  if (!sub || !path || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return confcast::SubscriberAccess::GetString(sub, path, buf, cap, len, version);
}

int confcast_get_json(confcast_subscriber* sub, const char* path, char* buf, size_t cap, size_t* len,
                      uint64_t* version) {
  if (!sub || !path || !len || (cap > 0 && !buf)) return CONFCAST_ERR_INVALID;
  return confcast::SubscriberAccess::GetJson(sub, path, buf, cap, len, version);
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

}  // extern "C"
