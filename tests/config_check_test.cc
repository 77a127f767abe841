// config_check_test.cc - `confcast-publisher --check`: a valid file exits 0
// with its SHA-256; an invalid one (YAML, schema, an unterminated quoted
// string, a missing file) exits 1 with the position; and it touches no
// segment (an existing one of another capacity stays byte for byte, a
// missing one is not created).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "support/child_process.hpp"
#include "support/configs.hpp"
#include "support/digest.hpp"
#include "support/names.hpp"
#include "support/publisher.hpp"
#include "support/publisher_fixture.hpp"
#include "support/scratch.hpp"
#include "support/segment_guard.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary

const milliseconds kTimeout(15000);

// PublisherTest for its segment name, and its scratch directory where a test
// needs a publisher.
class ConfigCheck : public PublisherTest {
 protected:
  // confcast-publisher --check on a data file, with a segment name that must
  // stay untouched.
  ProcessResult Check(const std::string& file) {
    return RunToCompletion({PublisherBinary(), "--check", "--config", file, "--segment", segment_.name(),
                            "--metrics-address", "none"});
  }
};

TEST_F(ConfigCheck, ValidFileExitsZero) {
  const std::string file = DataFile("check_valid.yaml");
  const ProcessResult r = Check(file);
  EXPECT_TRUE(r.status.ExitedWith(0)) << r.Describe();
  EXPECT_NE(r.out.find(file + ": valid"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find(Sha256Hex(ReadFile(file))), std::string::npos) << r.Describe();
  EXPECT_FALSE(segment_.Exists()) << "--check touches no segment";
}

TEST_F(ConfigCheck, InvalidYamlExitsOneWithPosition) {
  const std::string file = DataFile("check_invalid_yaml.yaml");
  const ProcessResult r = Check(file);
  EXPECT_TRUE(r.status.ExitedWith(1)) << r.Describe();
  // The mistake is on line 5 (see the file's comment).
  EXPECT_TRUE(std::regex_search(r.out, std::regex(file + ":5:[0-9]+: "))) << r.Describe();
  EXPECT_FALSE(segment_.Exists()) << "--check touches no segment";
}

TEST_F(ConfigCheck, SchemaViolationExitsOneWithPositionAndPath) {
  const std::string file = DataFile("check_schema_violation.yaml");
  const ProcessResult r = Check(file);
  EXPECT_TRUE(r.status.ExitedWith(1)) << r.Describe();
  EXPECT_NE(r.out.find(file + ":5:20: llm.timeout_seconds: "), std::string::npos) << r.Describe();
  EXPECT_FALSE(segment_.Exists()) << "--check touches no segment";
}

TEST_F(ConfigCheck, MissingFileExitsOne) {
  const std::string file = DataFile("no_such_file.yaml");
  const ProcessResult r = Check(file);
  EXPECT_TRUE(r.status.ExitedWith(1)) << r.Describe();
  EXPECT_NE(r.out.find(file), std::string::npos) << r.Describe();
  EXPECT_FALSE(segment_.Exists());
}

// yaml-cpp 0.7 accepts a double-quoted scalar that is never closed when a
// line break follows it, folding the rest of the file into the string
// (llm.model = "gpt-4o provider: openai "). A config cut short inside a quoted
// string is exactly the truncated write that must be rejected; the YAML layer
// checks that every quoted scalar has its closing quote. The position is
// where the string starts.
TEST_F(ConfigCheck, UnterminatedQuotedScalarIsInvalid) {
  const std::string file = DataFile("check_unterminated_quote.yaml");
  const ProcessResult r = Check(file);
  EXPECT_TRUE(r.status.ExitedWith(1)) << r.Describe();
  EXPECT_NE(r.out.find(file + ":3:10: llm.model: YAML syntax error: the double-quoted string that starts here is "
                              "never closed"),
            std::string::npos)
      << r.Describe();
  EXPECT_FALSE(segment_.Exists()) << "--check touches no segment";
}

TEST_F(ConfigCheck, CheckTouchesNoSegment) {
  SegmentGuard absent(UniqueName("check-absent"));
  FirstPublisher first = StartFirst(NumberedConfig(2), kTimeout);
  ASSERT_TRUE(first.reader);
  ASSERT_TRUE(StopCleanly(first.process, kTimeout));  // no heartbeat from here on: the bytes hold still
  const std::string before = ReadFile("/dev/shm/" + segment_.name());
  for (const bool valid : {true, false}) {
    if (!valid) WriteViaRename(config_, "llm: [\n");
    for (const std::string& name : {segment_.name(), absent.name()}) {
      auto check =
          ChildProcess::Spawn(PublisherArgs(config_, name, {"--capacity", "131072", "--check"}), {.output_path = log_});
      ASSERT_TRUE(check.WaitExit(kTimeout));
      EXPECT_EQ(check.exit_code(), valid ? 0 : 1) << ReadFile(log_);
    }
  }
  EXPECT_TRUE(ReadFile("/dev/shm/" + segment_.name()) == before) << "--check wrote into the segment";
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + absent.name())) << "--check created a segment";
  EXPECT_TRUE(ReplacementTemporaries(segment_.name()).empty());
}

}  // namespace
}  // namespace confcast
