// tests/support/names.hpp - names no other test run uses, and the per-thread
// random source behind them.
//
// Tests of one binary run in parallel under ctest (one process per test) and
// share /dev/shm and /tmp, so every segment, directory and temporary file a
// test makes needs a name that cannot collide and that a person can trace
// back to a test when a crashed run leaves it behind.
//
// Threading: every function may be called from any thread; the generator is
// per thread (a writer thread in a test draws temporary names while the main
// thread draws delays).
#ifndef CONFCAST_TESTS_SUPPORT_NAMES_HPP_
#define CONFCAST_TESTS_SUPPORT_NAMES_HPP_

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace confcast::test_support {

// Seeded per thread from the OS and the clock: two threads (or two forked
// children) never walk the same sequence.
inline std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return rng;
}

inline std::string RandomHex(int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += kHex[Rng()() & 15];
  return s;
}

// "confcast-test-<tag>-<pid>-<8 hex>": the pid separates parallel ctest
// processes, the random part separates names drawn within one, and the prefix
// makes leftovers of a crashed run easy to find in /dev/shm.
inline std::string UniqueName(std::string_view tag) {
  return "confcast-test-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" + RandomHex(8);
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_NAMES_HPP_
