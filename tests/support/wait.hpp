// tests/support/wait.hpp - bounded polling, for states that raise no event.
//
// Prefer an event when there is one (Subscriber::Wait's futex, a pidfd, a
// pipe); poll only what has none (a file appearing, a counter in the
// segment's stats), and always against a deadline, so a broken build fails
// with a message instead of hanging the suite.
//
// Threading: stateless; call from any thread.
#ifndef CONFCAST_TESTS_SUPPORT_WAIT_HPP_
#define CONFCAST_TESTS_SUPPORT_WAIT_HPP_

#include <chrono>
#include <thread>

namespace confcast::test_support {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Polls `done` every `interval` until it returns true (-> true) or `timeout`
// passes (-> done() once more: a state reached while we slept still counts).
template <class Predicate>
bool WaitUntil(Predicate&& done, milliseconds timeout, milliseconds interval = milliseconds(2)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_WAIT_HPP_
