// subscriber_test_access.hpp - tests' door into confcast::Subscriber's
// private reads: the C-string path reads that libconfcast's confcast_get_*
// run (so in-process tests and fuzzers reach them without a C handle), and
// AttachUnowned, which reads the publisher's own mapping (the TSan test).
//
// Threading: as the Subscriber calls it forwards to.
#ifndef CONFCAST_TESTS_SUBSCRIBER_TEST_ACCESS_HPP_
#define CONFCAST_TESTS_SUBSCRIBER_TEST_ACCESS_HPP_

#include <cstddef>
#include <cstdint>

#include "confcast/subscriber.hpp"

namespace confcast {

struct SubscriberTestAccess {
  template <class T>
  static int GetCPath(const Subscriber& sub, const char* path, T* out, uint64_t* version = nullptr) {
    return sub.GetCPath(path, out, version);
  }
  static int GetStringCPath(const Subscriber& sub, const char* path, char* buf, size_t cap, size_t* len) {
    return sub.GetStringCPath(path, buf, cap, len, nullptr);
  }
  static int GetJsonCPath(const Subscriber& sub, const char* path, char* buf, size_t cap, size_t* len) {
    return sub.GetJsonCPath(path, buf, cap, len, nullptr);
  }
  static int AttachUnowned(const uint8_t* base, uint64_t size, Subscriber* out) {
    return Subscriber::AttachUnowned(base, size, out);
  }
  static Subscriber Unopened() { return Subscriber(Subscriber::Unopened{}); }
};

}  // namespace confcast

#endif  // CONFCAST_TESTS_SUBSCRIBER_TEST_ACCESS_HPP_
