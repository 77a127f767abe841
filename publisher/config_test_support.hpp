// config_test_support.hpp - what the config/schema unit tests share beyond
// the test-support library (tests/support/: scratch directories, file
// writes): the test-data location, and one assertion that checks every part
// of a ConfigError at once.
//
// Threading: test-only, single-threaded use.
#ifndef CONFCAST_PUBLISHER_CONFIG_TEST_SUPPORT_HPP_
#define CONFCAST_PUBLISHER_CONFIG_TEST_SUPPORT_HPP_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

#include "../tests/support/scratch.hpp"
#include "config_error.hpp"

namespace confcast::publisher::testing_support {

// tests/data/configs in the source tree (this header lives in publisher/).
inline std::filesystem::path ConfigDataDir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "tests" / "data" / "configs";
}

// Checks reason, position, path and that the message contains `fragment`.
inline ::testing::AssertionResult IsError(const ConfigError& error, Reason reason, int line, int column,
                                          const std::string& path, const std::string& fragment) {
  if (error.reason == reason && error.line == line && error.column == column && error.path == path &&
      error.message.find(fragment) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "got " << ReasonName(error.reason) << " at " << error.line << ":"
                                       << error.column << " path \"" << error.path << "\": " << error.message
                                       << "\n  expected " << ReasonName(reason) << " at " << line << ":" << column
                                       << " path \"" << path << "\" containing \"" << fragment << "\"";
}

// The error of a result that must have failed (a default-constructed one,
// after a test failure, when it did not).
template <typename T>
ConfigError ErrorOf(const std::variant<T, ConfigError>& result) {
  if (const auto* error = std::get_if<ConfigError>(&result)) return *error;
  ADD_FAILURE() << "expected an error, got success";
  return ConfigError{};
}

}  // namespace confcast::publisher::testing_support

#endif  // CONFCAST_PUBLISHER_CONFIG_TEST_SUPPORT_HPP_
