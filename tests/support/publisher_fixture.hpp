// tests/support/publisher_fixture.hpp - the gtest side of driving a real
// confcast-publisher: a fixture that owns a scratch directory with
// config.yaml (and a log beside it) and a segment name, and starts that pair
// until a first version is published, so that a test body holds only what
// is its own.
//
// Needs CONFCAST_SOURCE_DIR, CONFCAST_PUBLISHER_BIN and CONFCAST_CTL_BIN
// (tests/CMakeLists.txt defines them for the test binary).
//
// Threading: gtest's: the fixture and the helpers run on the test's thread.
#ifndef CONFCAST_TESTS_SUPPORT_PUBLISHER_FIXTURE_HPP_
#define CONFCAST_TESTS_SUPPORT_PUBLISHER_FIXTURE_HPP_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "child_process.hpp"
#include "confcast/subscriber.hpp"
#include "names.hpp"
#include "publisher.hpp"
#include "scratch.hpp"
#include "segment_guard.hpp"

namespace confcast::test_support {

// How long something that must happen may take (generous: a loaded 2-core CI
// box); a passing run never waits this long.
inline constexpr milliseconds kEventTimeout{10000};

// A file of tests/data/process in the source tree.
inline std::string DataFile(std::string_view name) {
  return std::string(CONFCAST_SOURCE_DIR) + "/tests/data/process/" + std::string(name);
}

// Starts a publisher with `options` and opens the segment once version >= 1.
// Use as: ASSERT_NO_FATAL_FAILURE(StartAndOpen(...)).
inline void StartAndOpen(const PublisherOptions& options, std::optional<ChildProcess>* publisher,
                         std::optional<Subscriber>* sub) {
  publisher->emplace(StartPublisher(options));
  *sub = OpenWhenPublished(options.segment, kEventTimeout);
  ASSERT_TRUE(sub->has_value()) << "no version published; " << (*publisher)->Describe();
}

// The first publisher's flags unless a test gives its own: a capacity the
// replacement tests can tell from the one they restart with.
inline std::vector<std::string> FirstPublisherFlags() { return {"--capacity", "65536"}; }

// A publisher with FirstPublisherFlags() (or `flags`) on `config`, its output
// appended to `log`, once it has published: the process, a reader of the
// segment and the version it holds. On failure (reported) the reader is null.
struct FirstPublisher {
  ChildProcess process;
  std::optional<Subscriber> reader;
  uint64_t version = 0;
};
inline FirstPublisher StartFirstPublisher(const std::string& config, const std::string& segment,
                                          const std::string& log, milliseconds timeout,
                                          std::vector<std::string> flags = FirstPublisherFlags()) {
  FirstPublisher first;
  first.process = ChildProcess::Spawn(PublisherArgs(config, segment, std::move(flags)), {.output_path = log});
  first.reader = OpenWhenReady(segment, timeout);
  if (!first.reader || first.reader->Wait(0, static_cast<int>(timeout.count()), &first.version) != CONFCAST_OK) {
    ADD_FAILURE() << "the first publisher never published\n" << ReadFile(log);
    first.reader.reset();
  }
  return first;
}

// Stops it (SIGTERM); false (reported) unless it exits 0 within `timeout`.
inline bool StopCleanly(ChildProcess& process, milliseconds timeout) {
  process.Signal(SIGTERM);
  if (!process.WaitExit(timeout) || process.exit_code() != 0) {
    ADD_FAILURE() << "the publisher did not stop cleanly";
    return false;
  }
  return true;
}

// A segment name, a directory with config.yaml in it, and the publisher's
// options for that pair. Everything is removed in the destructors: the
// publisher started here is killed (pub_ and sub_ are declared last, so they
// go first) before the segment, its lock and its ledger are removed.
class PublisherTest : public ::testing::Test {
 protected:
  PublisherOptions Options() const {
    PublisherOptions o;
    o.config = config_;
    o.segment = segment_.name();
    return o;
  }

  // Writes `content` as config.yaml, starts a publisher with `options` into
  // pub_ and opens sub_ once version >= 1 is published.
  // Use as: ASSERT_NO_FATAL_FAILURE(PublishFirst(...)).
  void PublishFirst(std::string_view content, const PublisherOptions& options) {
    WriteInPlace(config_, content);
    StartAndOpen(options, &pub_, &sub_);
  }
  void PublishFirst(std::string_view content) { PublishFirst(content, Options()); }

  // For a test that prepares the config itself (a link to it, another path):
  // PublishFirst without writing config.yaml.
  void StartAndOpenReader(const PublisherOptions& options) { StartAndOpen(options, &pub_, &sub_); }

  // Writes `content` as config.yaml and starts StartFirstPublisher on this
  // fixture's config, segment and log (for tests that read the publisher's
  // output from a file, and stop or replace it themselves).
  FirstPublisher StartFirst(std::string_view content, milliseconds timeout,
                            std::vector<std::string> flags = FirstPublisherFlags()) {
    WriteViaRename(config_, content);
    return StartFirstPublisher(config_, segment_.name(), log_, timeout, std::move(flags));
  }

  TempDir dir_{"proc"};
  SegmentGuard segment_{UniqueName("proc")};
  std::string config_ = dir_ / "config.yaml";
  std::string log_ = dir_ / "publisher.log";  // what StartFirst's publisher prints
  std::optional<ChildProcess> pub_;           // what PublishFirst started
  std::optional<Subscriber> sub_;             // a reader of segment_ once PublishFirst returned
};

}  // namespace confcast::test_support

#endif  // CONFCAST_TESTS_SUPPORT_PUBLISHER_FIXTURE_HPP_
