// fuzz_corpus_test.cc - runs the fuzz harnesses (tests/fuzz/fuzz_targets.hpp)
// over every committed fuzz input, so the seed corpora and every crash the
// fuzzers ever found (tests/fuzz/corpus/*/regress-*) are re-checked by the
// normal build and under ASan+UBSan, without clang or libFuzzer. Also one
// named case per fuzzer finding, stated through the public API.
//
// Single-threaded; the harnesses create one /dev/shm segment (removed at exit)
// and memfds.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const fs::path kSource = CONFCAST_SOURCE_DIR;

void Replay(int (*harness)(const uint8_t*, size_t), const std::vector<fs::path>& dirs, size_t at_least) {
  size_t replayed = 0;
  for (const fs::path& dir : dirs) {
    for (const fs::path& file : FilesIn(dir)) {
      SCOPED_TRACE(file.string());
      const std::string bytes = ReadAll(file);
      harness(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  EXPECT_GE(replayed, at_least);
  ::testing::Test::RecordProperty("inputs", static_cast<int>(replayed));
}

TEST(FuzzCorpus, ConfigHarnessAcceptsEveryCommittedInput) {
  Replay(confcast::fuzz::FuzzConfig,
         {kSource / "tests/fuzz/corpus/config", kSource / "tests/data/configs", kSource / "examples"}, 20);
}

TEST(FuzzCorpus, SchemaHarnessAcceptsEveryCommittedInput) {
  Replay(confcast::fuzz::FuzzSchema, {kSource / "tests/fuzz/corpus/schema", kSource / "tests/data/configs"}, 5);
}

TEST(FuzzCorpus, SegmentHarnessAcceptsEveryCommittedInput) {
  Replay(confcast::fuzz::FuzzSegment, {kSource / "tests/fuzz/corpus/segment"}, 1);
}

// Configs through the segment harness too (as raw bytes and shaped): any
// file is a hostile segment.
TEST(FuzzCorpus, SegmentHarnessAcceptsConfigsAsSegments) {
  Replay(confcast::fuzz::FuzzSegment, {kSource / "tests/fuzz/corpus/config"}, 20);
}

// Real snapshots of every good seed config, in every shape the segment
// fuzzer's seeds use (what make_segment_seeds writes).
TEST(FuzzCorpus, SegmentHarnessReadsRealSnapshots) {
  namespace cp = confcast::publisher;
  size_t built = 0;
  for (const fs::path& file : FilesIn(kSource / "tests/fuzz/corpus/config")) {
    auto result = cp::ParseAndValidate(ReadAll(file), file.string(), cp::Schema::HolmesGpt(), false);
    if (!std::holds_alternative<cp::ValidatedConfig>(result)) continue;
    auto snap = confcast::snapshot::BuildSnapshot(std::get<cp::ValidatedConfig>(result).config);
    if (!std::holds_alternative<confcast::snapshot::BuiltSnapshot>(snap)) continue;
    for (uint8_t flags : {0, 1, 8, 16, 32 | 64, 128}) {
      SCOPED_TRACE(file.string() + " flags " + std::to_string(flags));
      const auto input = confcast::fuzz::SegmentSeed(std::get<confcast::snapshot::BuiltSnapshot>(snap), 5, flags);
      confcast::fuzz::FuzzSegment(input.data(), input.size());
    }
    ++built;
  }
  EXPECT_GE(built, 5u);
}

// Fuzz finding (config_fuzzer, 2026-11-28): yaml-cpp decodes the YAML
// escapes \N and \_ (U+0085, U+00A0) to the raw bytes 0x85 and 0xA0, which
// are not UTF-8, and the snapshot builder threw on them (a bad config took
// the publisher down). Whatever the fix, the builder must not throw, and a
// value it publishes must be valid UTF-8. Input: corpus/config/regress-yaml-nel-escape-invalid-utf8.
TEST(FuzzRegression, LatinEscapesNeverThrowAndNeverPublishInvalidUtf8) {
  namespace cp = confcast::publisher;
  const std::pair<const char*, const char*> cases[] = {
      {"\\N", "\xC2\x85"}, {"\\_", "\xC2\xA0"}, {"\\L", "\xE2\x80\xA8"}, {"\\P", "\xE2\x80\xA9"}};
  for (const auto& [escape, utf8] : cases) {
    SCOPED_TRACE(escape);
    const std::string text = std::string("llm:\n  model: \"a") + escape + "\"\n";
    auto parsed = cp::ParseAndValidate(text, "regress.yaml", cp::Schema::HolmesGpt(), false);
    if (auto* error = std::get_if<cp::ConfigError>(&parsed)) {
      EXPECT_FALSE(error->message.empty());  // rejected cleanly: acceptable
      continue;
    }
    const nlohmann::json& config = std::get<cp::ValidatedConfig>(parsed).config;
    std::variant<confcast::snapshot::BuiltSnapshot, std::string> built;
    ASSERT_NO_THROW(built = confcast::snapshot::BuildSnapshot(config));
    if (std::holds_alternative<std::string>(built)) continue;  // rejected cleanly
    EXPECT_EQ(config["llm"]["model"].get<std::string>(), std::string("a") + utf8)
        << "a published value must be the escape's character in UTF-8";
  }
}

// Fuzz finding (segment_fuzzer, 2026-11-28): a slot whose data_size ends
// before a node's JSON span (only a corrupt segment does that) was judged
// against the slot's capacity by a live read, which returned those bytes,
// and against data_size by a pinned copy, which said CORRUPT. Both now judge
// the bytes the publisher said it wrote. Input:
// corpus/segment/regress-live-json-beyond-data-size.
TEST(FuzzRegression, LiveAndPinnedReadsJudgeTheSameBytes) {
  namespace cl = confcast::layout;
  const std::string name = "cc-regress-size-" + std::to_string(getpid());
  auto opened = confcast::publisher::SegmentWriter::Open({name, 64 << 10, 0600});
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened));
  auto& writer = std::get<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened);
  auto built = confcast::snapshot::BuildSnapshot({{"log_level", "INFO"}, {"pad", std::string(200, 'p')}});
  const auto& words = std::get<confcast::snapshot::BuiltSnapshot>(built).words;
  writer->Publish(words.data(), words.size(), {}, 1);
  // Cut the JSON text (the last region) off the declared size.
  auto* bytes = const_cast<uint8_t*>(writer->mapping());
  const auto* h = reinterpret_cast<const cl::SegmentHeader*>(bytes);
  auto* slot = reinterpret_cast<cl::SlotHeader*>(bytes + cl::kHeaderSize + h->active_slot * h->slot_stride);
  slot->data_size = (slot->data_size - 64) & ~uint64_t{7};
  confcast::Subscriber sub(name);
  char buf[512];
  size_t len = 0;
  const int live = sub.GetJson("log_level", buf, sizeof(buf), &len);
  confcast::Snapshot pinned;
  const int pin = sub.TryPin(&pinned);
  std::string_view pinned_json;
  const int from_pin = pin == CONFCAST_OK ? pinned.GetJson("log_level", &pinned_json) : pin;
  EXPECT_EQ(live, from_pin);
  EXPECT_EQ(live, CONFCAST_ERR_CORRUPT) << "a snapshot whose regions end past its declared size is corrupt";
  writer.reset();
  shm_unlink(("/" + name).c_str());
  shm_unlink(("/" + name + ".confcast-lock").c_str());  // the publisher lock beside it
}

}  // namespace
