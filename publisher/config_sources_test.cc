// Tests of several config sources: directories listed the way the kubelet
// mounts them, the merge (maps recursive, everything else replaced), errors
// naming the file a value was written in, the content hash, and the limits
// holding for all files together.
#include "config_sources.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "config_file.hpp"
#include "config_merge.hpp"
#include "config_test_support.hpp"
#include "config_yaml.hpp"

namespace confcast::publisher {
namespace {

using test_support::TempDir;
using testing_support::ErrorOf;
using testing_support::IsError;

ConfigSources ReadOk(const std::vector<std::string>& paths, uint64_t max_bytes = 1 << 20) {
  auto result = ReadConfigSources(paths, max_bytes);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return ConfigSources{};
  }
  return std::get<ConfigSources>(std::move(result));
}

nlohmann::json ValidOk(const std::vector<SourceFile>& files, uint64_t capacity = 1 << 20) {
  auto result = ParseAndValidateSources(files, Schema::HolmesGpt(), false, capacity);
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return nullptr;
  }
  return std::get<ValidatedConfig>(result).config;
}

std::vector<std::string> Names(const ConfigSources& sources) {
  std::vector<std::string> names;
  for (const SourceFile& file : sources.files) names.push_back(file.name);
  return names;
}

// The kubelet's layout: DIR/KEY -> ..data/KEY, ..data -> ..TIMESTAMP/.
void KubeletDir(const TempDir& dir, const std::vector<std::pair<std::string, std::string>>& keys) {
  dir.MakeDir("..2026_01_01_00_00_00.1");
  for (const auto& [key, text] : keys) {
    dir.Write("..2026_01_01_00_00_00.1/" + key, text);
    std::filesystem::create_symlink("..data/" + key, dir.path() / key);
  }
  std::filesystem::create_symlink("..2026_01_01_00_00_00.1", dir.path() / "..data");
}

TEST(ConfigSources, ConfigFileNames) {
  EXPECT_TRUE(IsConfigFileName("config.yaml"));
  EXPECT_TRUE(IsConfigFileName("a.yml"));
  EXPECT_FALSE(IsConfigFileName(".hidden.yaml"));
  EXPECT_FALSE(IsConfigFileName("..data"));
  EXPECT_FALSE(IsConfigFileName(".yaml"));
  EXPECT_FALSE(IsConfigFileName("config.json"));
  EXPECT_FALSE(IsConfigFileName("config.yaml.bak"));
}

TEST(ConfigSources, SplitsConfigFileAtColons) {
  EXPECT_EQ(SplitConfigPaths("/a.yaml"), (std::vector<std::string>{"/a.yaml"}));
  EXPECT_EQ(SplitConfigPaths("/cm:/secret::/x.yml:"), (std::vector<std::string>{"/cm", "/secret", "/x.yml"}));
  EXPECT_TRUE(SplitConfigPaths("").empty());
}

TEST(ConfigSources, ADirectoryStandsForItsYamlFilesInByteOrderThroughItsOwnPath) {
  TempDir dir("sources");
  KubeletDir(dir, {{"20-b.yaml", "b: 1\n"}, {"10-a.yml", "a: 1\n"}, {"Z.yaml", "z: 1\n"}, {"notes.txt", "x"}});
  dir.Write(".hidden.yaml", "h: 1\n");
  dir.MakeDir("sub.yaml");
  const ConfigSources sources = ReadOk({dir.path().string()});
  const std::string d = dir.path().string();
  EXPECT_EQ(Names(sources), (std::vector<std::string>{d + "/10-a.yml", d + "/20-b.yaml", d + "/Z.yaml"}));
  EXPECT_EQ(sources.files[1].bytes, "b: 1\n");
  EXPECT_EQ(DescribeSources({d}), d + " (3 files)");
}

TEST(ConfigSources, HashOfOneFileIsItsSha256AndOfSeveralCoversNamesLengthsAndBytes) {
  TempDir dir("sources");
  const std::string a = dir.Write("a.yaml", "a: 1\n");
  const std::string b = dir.Write("b.yaml", "b: 2\n");
  EXPECT_EQ(ReadOk({a}).sha256, Sha256("a: 1\n"));

  auto be64 = [](uint64_t n) {
    std::string out;
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    return out;
  };
  const std::string expected = be64(a.size()) + a + be64(5) + "a: 1\n" + be64(b.size()) + b + be64(5) + "b: 2\n";
  const ConfigSources both = ReadOk({a, b});
  EXPECT_EQ(both.sha256, Sha256(expected));
  EXPECT_EQ(both.sha256_hex, ToHex(Sha256(expected)));
  // A directory with one file hashes like several sources: the name counts.
  TempDir only("sources");
  only.Write("a.yaml", "a: 1\n");
  const std::string through = only.path().string() + "/a.yaml";
  EXPECT_EQ(ReadOk({only.path().string()}).sha256,
            Sha256(be64(through.size()) + through + be64(5) + "a: 1\n"));
  // Rewriting the same bytes changes nothing; swapping the order does.
  dir.Write("a.yaml", "a: 1\n");
  EXPECT_EQ(ReadOk({a, b}).sha256, both.sha256);
  EXPECT_NE(ReadOk({b, a}).sha256, both.sha256);
}

TEST(ConfigSources, MissingSourceIsAnIoErrorAndNoFileAtAllIsToo) {
  TempDir dir("sources");
  const ConfigError missing = ErrorOf(ReadConfigSources({dir / "nope.yaml"}, 1 << 20));
  EXPECT_EQ(missing.reason, Reason::kIo);
  EXPECT_EQ(missing.file, dir / "nope.yaml");
  const std::string empty_dir = dir.MakeDir("empty");
  const ConfigError nothing = ErrorOf(ReadConfigSources({empty_dir}, 1 << 20));
  EXPECT_EQ(nothing.reason, Reason::kIo);
  EXPECT_NE(nothing.message.find("no config file"), std::string::npos) << nothing.message;
  // An empty directory beside a file adds nothing.
  const std::string file = dir.Write("a.yaml", "a: 1\n");
  EXPECT_EQ(Names(ReadOk({empty_dir, file})), (std::vector<std::string>{file}));
}

TEST(ConfigSources, MaxBytesHoldsForAllFilesTogether) {
  TempDir dir("sources");
  const std::string a = dir.Write("a.yaml", std::string(60, '#'));
  const std::string b = dir.Write("b.yaml", std::string(60, '#'));
  ReadOk({a}, 100);
  ReadOk({b}, 100);
  ReadOk({a, b}, 120);
  const ConfigError error = ErrorOf(ReadConfigSources({a, b}, 100));
  EXPECT_TRUE(IsError(error, Reason::kTooLarge, 0, 0, "", "more than 100 bytes in all")) << error.ToString();
  EXPECT_EQ(error.file, b);
  // One file keeps its own message.
  const ConfigError alone = ErrorOf(ReadConfigSources({a}, 50));
  EXPECT_TRUE(IsError(alone, Reason::kTooLarge, 0, 0, "", "the file is 60 bytes")) << alone.ToString();
}

TEST(ConfigMerge, MapsMergeRecursivelyEverythingElseIsReplaced) {
  const nlohmann::json config = ValidOk({
      {"/cm/10.yaml", "llm:\n  model: a\n  max_retries: 5\ntoolsets:\n  k8s:\n    enabled: true\n"
                      "extra:\n  list: [1, 2, 3]\n  scalar: 1\n  map: {x: 1}\n"},
      {"/secret/20.yaml", "llm:\n  model: b\nextra:\n  list: [9]\n  scalar: {now: map}\n  map: 7\n  new: 1\n"},
  });
  EXPECT_EQ(config["llm"]["model"], "b");
  EXPECT_EQ(config["llm"]["max_retries"], 5);
  EXPECT_EQ(config["toolsets"]["k8s"]["enabled"], true);
  EXPECT_EQ(config["extra"]["list"], nlohmann::json::array({9}));  // replaced, not concatenated
  EXPECT_EQ(config["extra"]["scalar"], nlohmann::json({{"now", "map"}}));
  EXPECT_EQ(config["extra"]["map"], 7);
  EXPECT_EQ(config["extra"]["new"], 1);
}

TEST(ConfigMerge, ASharedAliasedMapIsNotChangedByAMergeThroughOneOfItsUses) {
  const nlohmann::json config = ValidOk({
      {"/a.yaml", "base: &b {x: 1}\none: *b\ntwo: *b\n"},
      {"/b.yaml", "one: {y: 2}\n"},
  });
  EXPECT_EQ(config["one"], nlohmann::json({{"x", 1}, {"y", 2}}));
  EXPECT_EQ(config["two"], nlohmann::json({{"x", 1}}));
  EXPECT_EQ(config["base"], nlohmann::json({{"x", 1}}));
}

TEST(ConfigMerge, ErrorsNameTheFileLineAndColumnWhereTheValueWasWritten) {
  const std::vector<SourceFile> files = {
      {"/cm/10.yaml", "llm:\n  model: a\n  max_retries: 3\n"},
      {"/secret/20.yaml", "# override\nllm:\n  max_retries: 99\n"},
  };
  const ConfigError error = ErrorOf(ParseAndValidateSources(files, Schema::HolmesGpt(), false, 1 << 20));
  EXPECT_TRUE(IsError(error, Reason::kValidate, 3, 16, "llm.max_retries", "")) << error.ToString();
  EXPECT_EQ(error.file, "/secret/20.yaml");
  // And in the first file, when the bad value comes from there.
  const ConfigError first = ErrorOf(ParseAndValidateSources(
      {{"/a.yaml", "llm:\n  timeout_seconds: 0\n"}, {"/b.yaml", "llm:\n  model: x\n"}}, Schema::HolmesGpt(), false,
      1 << 20));
  EXPECT_TRUE(IsError(first, Reason::kValidate, 2, 20, "llm.timeout_seconds", "")) << first.ToString();
  EXPECT_EQ(first.file, "/a.yaml");
}

TEST(ConfigMerge, EachFileMustBeAMapOnItsOwn) {
  const ConfigError error = ErrorOf(
      ParseAndValidateSources({{"/a.yaml", "a: 1\n"}, {"/b.yaml", ""}}, Schema::HolmesGpt(), false, 1 << 20));
  EXPECT_TRUE(IsError(error, Reason::kParse, 0, 0, "", "the file is empty")) << error.ToString();
  EXPECT_EQ(error.file, "/b.yaml");
  const ConfigError list = ErrorOf(
      ParseAndValidateSources({{"/a.yaml", "- 1\n"}, {"/b.yaml", "a: 1\n"}}, Schema::HolmesGpt(), false, 1 << 20));
  EXPECT_EQ(list.file, "/a.yaml");
  EXPECT_EQ(list.reason, Reason::kParse);
}

TEST(ConfigMerge, SnapshotSizeIsCountedAcrossFiles) {
  // Each file alone fits the capacity; together they do not.
  std::string half = "extra:\n";
  for (int i = 0; i < 40; ++i) half += "  k" + std::to_string(i) + ": \"" + std::string(40, 'v') + "\"\n";
  std::string other = half;
  other.replace(other.find("extra"), 5, "other");
  const uint64_t capacity = 8192;
  ValidOk({{"/a.yaml", half}}, capacity);
  ValidOk({{"/b.yaml", other}}, capacity);
  const ConfigError error = ErrorOf(
      ParseAndValidateSources({{"/a.yaml", half}, {"/b.yaml", other}}, Schema::HolmesGpt(), false, capacity));
  EXPECT_EQ(error.reason, Reason::kTooLarge) << error.ToString();
  EXPECT_EQ(error.file, "/b.yaml");
}

TEST(ConfigMerge, MergedDocumentKeepsEachNodesSource) {
  auto parse = [](std::string_view text) { return std::get<YamlDocument>(ParseYamlDocument(text, "x")); };
  std::vector<YamlDocument> documents;
  documents.push_back(parse("a: 1\nm:\n  x: 1\n"));
  documents.push_back(parse("m:\n  y: 2\nb: 2\n"));
  const YamlDocument merged = MergeYamlDocuments(std::move(documents), {"/one", "/two"});
  ASSERT_EQ(merged.root_node().entries.size(), 3u);
  const YamlEntry& a = merged.root_node().entries[0];
  const YamlEntry& m = merged.root_node().entries[1];
  const YamlEntry& b = merged.root_node().entries[2];
  EXPECT_EQ(a.key, "a");
  EXPECT_EQ(merged.FileOf(a.key_position, "?"), "/one");
  EXPECT_EQ(m.key, "m");
  EXPECT_EQ(merged.FileOf(m.key_position, "?"), "/two");
  EXPECT_EQ(b.key, "b");
  EXPECT_EQ(merged.FileOf(merged.node(b.value).position, "?"), "/two");
  const YamlNode& inner = merged.node(m.value);
  ASSERT_EQ(inner.entries.size(), 2u);
  EXPECT_EQ(merged.FileOf(inner.entries[0].key_position, "?"), "/one");
  EXPECT_EQ(merged.FileOf(inner.entries[1].key_position, "?"), "/two");
}

}  // namespace
}  // namespace confcast::publisher
