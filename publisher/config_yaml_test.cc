// Tests of ParseYamlDocument: YAML 1.2 core-schema typing, positions, and
// every document-level rejection (empty, several documents, top level not a
// map, depth, duplicate and non-scalar keys, text problems, alias bombs).
#include "config_yaml.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>

#include "config_test_support.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher {
namespace {

using test_support::ReadFile;
using testing_support::ConfigDataDir;
using testing_support::ErrorOf;
using testing_support::IsError;

YamlDocument ParseOk(std::string_view text) {
  auto result = ParseYamlDocument(text, "t.yaml");
  if (const auto* error = std::get_if<ConfigError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->ToString();
    return YamlDocument{};
  }
  return std::get<YamlDocument>(std::move(result));
}

ConfigError ParseFails(std::string_view text, const YamlLimits& limits = {}) {
  return ErrorOf(ParseYamlDocument(text, "t.yaml", limits));
}

// The value of the top-level key `key`.
const YamlNode& Value(const YamlDocument& document, const std::string& key) {
  for (const YamlEntry& entry : document.root_node().entries) {
    if (entry.key == key) return document.node(entry.value);
  }
  static const YamlNode missing;
  ADD_FAILURE() << "no key " << key;
  return missing;
}

TEST(ConfigYaml, PlainScalarsResolveLikeTheCoreSchema) {
  const YamlDocument doc = ParseOk(
      "n1: null\nn2: Null\nn3: NULL\nn4: ~\nn5:\n"
      "b1: true\nb2: True\nb3: TRUE\nb4: false\nb5: FALSE\n"
      "s_yes: yes\ns_on: on\ns_tRue: tRue\n"
      "i1: 42\ni2: -7\ni3: +8\ni4: 0x1F\ni5: 0o17\ni6: 0123\n"
      "f1: 1.5\nf2: 1e3\nf3: -.5\nf4: .inf\nf5: -.Inf\nf6: .nan\nf7: 1.\nf8: 2E-2\nf9: 1e-999\n"
      "s1: 0x1G\ns2: 1_000\ns3: 12:30\ns4: 3 apples\n");
  for (const char* key : {"n1", "n2", "n3", "n4", "n5"}) EXPECT_EQ(Value(doc, key).kind, YamlKind::kNull) << key;
  EXPECT_EQ(Value(doc, "n5").text, "");
  EXPECT_EQ(Value(doc, "n4").text, "~");
  for (const char* key : {"b1", "b2", "b3"}) {
    EXPECT_EQ(Value(doc, key).kind, YamlKind::kBool) << key;
    EXPECT_TRUE(Value(doc, key).boolean) << key;
  }
  EXPECT_FALSE(Value(doc, "b4").boolean);
  EXPECT_EQ(Value(doc, "b5").kind, YamlKind::kBool);
  for (const char* key : {"s_yes", "s_on", "s_tRue", "s1", "s2", "s3", "s4"}) {
    EXPECT_EQ(Value(doc, key).kind, YamlKind::kString) << key;
  }
  EXPECT_EQ(Value(doc, "s_yes").text, "yes");
  const std::pair<const char*, int64_t> ints[] = {{"i1", 42}, {"i2", -7}, {"i3", 8}, {"i4", 31}, {"i5", 15}, {"i6", 123}};
  for (const auto& [key, expected] : ints) {
    EXPECT_EQ(Value(doc, key).kind, YamlKind::kInt) << key;
    EXPECT_EQ(Value(doc, key).integer, expected) << key;
  }
  EXPECT_EQ(Value(doc, "i4").text, "0x1F");  // the spelling stays for messages
  const std::pair<const char*, double> floats[] = {{"f1", 1.5}, {"f2", 1000.0}, {"f3", -0.5}, {"f7", 1.0},
                                                   {"f8", 0.02}, {"f9", 0.0}};
  for (const auto& [key, expected] : floats) {
    EXPECT_EQ(Value(doc, key).kind, YamlKind::kFloat) << key;
    EXPECT_DOUBLE_EQ(Value(doc, key).real, expected) << key;
  }
  EXPECT_TRUE(std::isinf(Value(doc, "f4").real) && Value(doc, "f4").real > 0);
  EXPECT_TRUE(std::isinf(Value(doc, "f5").real) && Value(doc, "f5").real < 0);
  EXPECT_TRUE(std::isnan(Value(doc, "f6").real));
}

TEST(ConfigYaml, QuotedAndBlockScalarsAreAlwaysStrings) {
  const YamlDocument doc = ParseOk("a: \"42\"\nb: 'true'\nc: \"null\"\nd: ''\ne: |\n  3\nf: >-\n  1.5\n");
  for (const char* key : {"a", "b", "c", "d", "e", "f"}) EXPECT_EQ(Value(doc, key).kind, YamlKind::kString) << key;
  EXPECT_EQ(Value(doc, "a").text, "42");
  EXPECT_EQ(Value(doc, "d").text, "");
  EXPECT_EQ(Value(doc, "e").text, "3\n");
  EXPECT_EQ(Value(doc, "f").text, "1.5");
}

TEST(ConfigYaml, ExplicitCoreTagsAreHonoured) {
  const YamlDocument doc = ParseOk("a: !!str 42\nb: !!float 3\nc: !!int 0x10\nd: !!bool true\ne: !!null ~\n"
                                   "f: !!str\ng: !!map {x: 1}\nh: !!seq [1]\ni: !!float 2.5\n");
  EXPECT_EQ(Value(doc, "a").kind, YamlKind::kString);
  EXPECT_EQ(Value(doc, "a").text, "42");
  EXPECT_EQ(Value(doc, "b").kind, YamlKind::kFloat);
  EXPECT_DOUBLE_EQ(Value(doc, "b").real, 3.0);
  EXPECT_EQ(Value(doc, "c").integer, 16);
  EXPECT_EQ(Value(doc, "d").kind, YamlKind::kBool);
  EXPECT_EQ(Value(doc, "e").kind, YamlKind::kNull);
  EXPECT_EQ(Value(doc, "f").kind, YamlKind::kString);
  EXPECT_EQ(Value(doc, "g").kind, YamlKind::kMap);
  EXPECT_EQ(Value(doc, "h").kind, YamlKind::kList);
  EXPECT_EQ(Value(doc, "i").kind, YamlKind::kFloat);
}

TEST(ConfigYaml, BadTagsAndOutOfRangeNumbersAreParseErrors) {
  EXPECT_TRUE(IsError(ParseFails("a: 1\nb: !!int abc\n"), Reason::kParse, 2, 4, "b", "is not an integer"));
  EXPECT_TRUE(IsError(ParseFails("a: !custom 3\n"), Reason::kParse, 1, 4, "a", "unsupported tag \"!custom\""));
  EXPECT_TRUE(IsError(ParseFails("a: !!set {x: 1}\n"), Reason::kParse, 1, 4, "a", "unsupported tag"));
  EXPECT_TRUE(IsError(ParseFails("a:\n  b: 9223372036854775808\n"), Reason::kParse, 2, 6, "a.b",
                      "integer 9223372036854775808 is out of range"));
  EXPECT_TRUE(IsError(ParseFails("a: [0x8000000000000000]\n"), Reason::kParse, 1, 5, "a.0", "out of range"));
  EXPECT_TRUE(IsError(ParseFails("a: 1e999\n"), Reason::kParse, 1, 4, "a", "number 1e999 is out of range"));
  // The extremes themselves fit.
  const YamlDocument doc = ParseOk("lo: -9223372036854775808\nhi: 9223372036854775807\n");
  EXPECT_EQ(Value(doc, "lo").integer, INT64_MIN);
  EXPECT_EQ(Value(doc, "hi").integer, INT64_MAX);
}

TEST(ConfigYaml, PositionsAreOneBasedAndCountCharacters) {
  const YamlDocument doc = ParseOk("# comment\nllm:\n  model: gpt\n\"é\": {ü: [1, 2]}\r\nlast: x\n");
  const YamlEntry& llm = doc.root_node().entries[0];
  EXPECT_EQ(llm.key_position.line, 2);
  EXPECT_EQ(llm.key_position.column, 1);
  const YamlEntry& model = doc.node(llm.value).entries[0];
  EXPECT_EQ(model.key_position.line, 3);
  EXPECT_EQ(model.key_position.column, 3);
  EXPECT_EQ(doc.node(model.value).position.line, 3);
  EXPECT_EQ(doc.node(model.value).position.column, 10);
  const YamlNode& accented = doc.node(doc.root_node().entries[1].value);
  const YamlNode& list = doc.node(accented.entries[0].value);
  EXPECT_EQ(accented.entries[0].key_position.column, 7);  // columns count characters, not bytes
  EXPECT_EQ(doc.node(list.items[1]).position.line, 4);
  EXPECT_EQ(doc.node(list.items[1]).position.column, 14);
  EXPECT_EQ(doc.root_node().entries[2].key_position.line, 5);  // CRLF is one line break
  // Keys keep file order.
  EXPECT_EQ(doc.root_node().entries[2].key, "last");
}

TEST(ConfigYaml, EmptyAndCommentOnlyFilesAreRejected) {
  EXPECT_TRUE(IsError(ParseFails(""), Reason::kParse, 0, 0, "", "the file is empty"));
  EXPECT_TRUE(IsError(ParseFails("# only a comment\n\n   \n# another\n"), Reason::kParse, 0, 0, "",
                      "only comments or whitespace"));
  EXPECT_TRUE(IsError(ParseFails("\n\n"), Reason::kParse, 0, 0, "", "only comments or whitespace"));
  EXPECT_TRUE(IsError(ParseFails("---\n"), Reason::kParse, 2, 1, "", "the document is empty"));
  EXPECT_TRUE(IsError(ParseFails("~\n"), Reason::kParse, 1, 1, "", "the document is empty"));
}

TEST(ConfigYaml, TopLevelMustBeAMap) {
  EXPECT_TRUE(IsError(ParseFails("- a\n- b\n"), Reason::kParse, 1, 1, "", "the top level is a list"));
  EXPECT_TRUE(IsError(ParseFails("  [1, 2]\n"), Reason::kParse, 1, 3, "", "the top level is a list"));
  EXPECT_TRUE(IsError(ParseFails("just text\n"), Reason::kParse, 1, 1, "", "the top level is a scalar, \"just text\""));
  EXPECT_TRUE(IsError(ParseFails("42\n"), Reason::kParse, 1, 1, "", "the top level is a scalar, 42"));
}

TEST(ConfigYaml, SeveralDocumentsAreRejectedAtTheSecondOne) {
  EXPECT_TRUE(IsError(ParseFails("a: 1\n---\nb: 2\n"), Reason::kParse, 2, 1, "", "a second YAML document"));
  EXPECT_TRUE(IsError(ParseFails("---\na: 1\n...\n---\na: 1\n"), Reason::kParse, 4, 1, "", "exactly one document"));
  // A trailing separator starts an (empty) second document: still rejected,
  // so a half-written "a: 1\n---\n" is never taken as complete.
  EXPECT_TRUE(IsError(ParseFails("a: 1\n---\n"), Reason::kParse, 2, 1, "", "a second YAML document"));
  // One document with explicit markers is fine.
  EXPECT_EQ(ParseOk("---\na: 1\n...\n").root_node().entries.size(), 1u);
  const auto from_file = ReadFile(ConfigDataDir() / "bad_two_documents.yaml");
  EXPECT_TRUE(IsError(ParseFails(from_file), Reason::kParse, 4, 1, "", "a second YAML document"));
}

TEST(ConfigYaml, DuplicateKeysAreRejectedAtTheSecondKey) {
  EXPECT_TRUE(IsError(ParseFails("a: 1\nb: 2\na: 3\n"), Reason::kParse, 3, 1, "a",
                      "duplicate key \"a\" (first defined at line 1, column 1)"));
  EXPECT_TRUE(IsError(ParseFails("llm:\n  model: x\n  provider: y\n  model: z\n"), Reason::kParse, 4, 3,
                      "llm.model", "duplicate key \"model\""));
  EXPECT_TRUE(IsError(ParseFails("m: {x: 1, y: 2, x: 3}\n"), Reason::kParse, 1, 17, "m.x", "duplicate key"));
  // Keys compare by text: 1 and "1" are the same key.
  EXPECT_TRUE(IsError(ParseFails("m:\n  1: a\n  \"1\": b\n"), Reason::kParse, 3, 3, "m.1", "duplicate key"));
  EXPECT_TRUE(IsError(ParseFails("&k a: 1\n*k : 2\n"), Reason::kParse, 2, 1, "a", "duplicate key"));
  // Equal keys in different maps are fine.
  ParseOk("a: {x: 1}\nb: {x: 1}\n");
  const auto from_file = ReadFile(ConfigDataDir() / "bad_duplicate_key.yaml");
  EXPECT_TRUE(IsError(ParseFails(from_file), Reason::kParse, 6, 3, "llm.max_retries", "duplicate key"));
}

TEST(ConfigYaml, MapKeysMustBeScalars) {
  EXPECT_TRUE(IsError(ParseFails("? [a, b]\n: 1\n"), Reason::kParse, 1, 3, "", "a map key must be a scalar, not a list"));
  EXPECT_TRUE(IsError(ParseFails("x:\n  ? {a: 1}\n  : 1\n"), Reason::kParse, 2, 5, "x", "not a map"));
  EXPECT_TRUE(IsError(ParseFails("a: &m {x: 1}\n*m : 2\n"), Reason::kParse, 2, 1, "",
                      "this alias refers to a collection"));
  EXPECT_TRUE(IsError(ParseFails(": 1\n"), Reason::kParse, 1, 1, "", "a map entry has no key"));
  // Scalar keys of any type become their text.
  const YamlDocument doc = ParseOk("1: a\ntrue: b\nnull: c\n~: d\n\"a.b c\": e\n");
  std::vector<std::string> keys;
  for (const YamlEntry& entry : doc.root_node().entries) keys.push_back(entry.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"1", "true", "null", "~", "a.b c"}));
}

// A path with a NUL in it could never be asked for through the C API, which
// takes NUL-terminated paths; in a value a NUL is fine (values have a length).
TEST(ConfigYaml, AKeyWithANulCharacterIsRejectedAtTheKey) {
  const std::string message = "a key cannot contain a NUL character";
  EXPECT_TRUE(IsError(ParseFails("a: 1\n\"b\\0c\": 2\n"), Reason::kParse, 2, 1, std::string("b\0c", 3), message));
  EXPECT_TRUE(IsError(ParseFails("llm:\n  \"\\x00\": x\n"), Reason::kParse, 2, 3, std::string("llm.\0", 5), message));
  EXPECT_TRUE(IsError(ParseFails("m: {\"k\\u0000\": 1}\n"), Reason::kParse, 1, 5, std::string("m.k\0", 4), message));
  EXPECT_TRUE(IsError(ParseFails("l:\n  - {ok: 1, \"\\0\": 2}\n"), Reason::kParse, 2, 13, std::string("l.0.\0", 5),
                      message));
  // Through an alias used as a key, at the alias.
  EXPECT_TRUE(IsError(ParseFails("a: &k \"x\\0\"\n*k : 1\n"), Reason::kParse, 2, 1, std::string("x\0", 2), message));
  // The one-line message shows the byte escaped.
  EXPECT_EQ(ParseFails("\"a\\0b\": 1\n").ToString(),
            "t.yaml:1:1: a\\x00b: a key cannot contain a NUL character (the escape \\0, \\x00 or \\u0000): "
            "no C caller could look up its path");
  // In values, and as the escaped text \0 in single quotes or plain keys, it is fine.
  const YamlDocument doc = ParseOk("v: \"a\\0b\"\nw: [\"\\x00\"]\n'x\\0': 1\ny\\0: 2\n");
  EXPECT_EQ(Value(doc, "v").text, std::string("a\0b", 3));
  EXPECT_EQ(doc.node(Value(doc, "w").items.at(0)).text, std::string("\0", 1));
  EXPECT_EQ(Value(doc, "x\\0").integer, 1);
  EXPECT_EQ(Value(doc, "y\\0").integer, 2);
}

std::string NestedFlowLists(int depth) { return "a: " + std::string(depth, '[') + std::string(depth, ']') + "\n"; }

// "a.0.0...": the path of the innermost list of NestedFlowLists.
std::string ListPath(int zeros) {
  std::string path = "a";
  for (int i = 0; i < zeros; ++i) path += ".0";
  return path;
}

std::string NestedBlockMaps(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  return text + std::string(static_cast<size_t>(depth), ' ') + "v\n";
}

TEST(ConfigYaml, NestingIsLimitedTo64Levels) {
  // The top-level map is level 1, so 63 lists below it make 64 levels.
  ParseOk(NestedFlowLists(63));
  EXPECT_TRUE(IsError(ParseFails(NestedFlowLists(64)), Reason::kParse, 1, 67, ListPath(63),
                      "nesting deeper than 64 levels"));
  ParseOk(NestedBlockMaps(63));  // k: (level 1) ... 63 maps, then a scalar
  const ConfigError deep_block = ParseFails(NestedBlockMaps(65));
  EXPECT_EQ(deep_block.reason, Reason::kParse);
  EXPECT_EQ(deep_block.line, 65);
  EXPECT_EQ(deep_block.column, 65);
  EXPECT_NE(deep_block.message.find("nesting deeper than 64 levels"), std::string::npos) << deep_block.message;
}

TEST(ConfigYaml, VeryDeepNestingFailsQuicklyWithoutCrashing) {
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(IsError(ParseFails(NestedFlowLists(10'000)), Reason::kParse, 1, 67, ListPath(63),
                      "nesting deeper than 64 levels"));
  // Unclosed: yaml-cpp sees a flow key there, which is still an error at a position.
  const ConfigError unclosed = ParseFails("a: " + std::string(10'000, '[') + "\n");
  EXPECT_EQ(unclosed.reason, Reason::kParse);
  EXPECT_EQ(unclosed.line, 1);
  EXPECT_GT(unclosed.column, 0);
  const ConfigError block = ParseFails(NestedBlockMaps(10'000));
  EXPECT_TRUE(IsError(block, Reason::kParse, 65, 65, block.path, "nesting deeper than 64 levels"));
  EXPECT_EQ(block.path.size(), 64u * 2 - 1);  // "k.k. ... .k", 64 segments
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

TEST(ConfigYaml, ALongOneLineListParsesInLinearTime) {
  // Positions on one long line once cost O(column) each (minutes for 1 MiB).
  std::string text = "a: [\xC3\xA9";  // one non-ASCII character up front: columns count characters
  constexpr int kItems = 300'000;
  for (int i = 1; i < kItems; ++i) text += ", 1";
  text += "]\n";
  const auto started = std::chrono::steady_clock::now();
  const YamlDocument doc = ParseOk(text);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  const YamlNode& list = Value(doc, "a");
  ASSERT_EQ(list.items.size(), static_cast<size_t>(kItems));
  EXPECT_EQ(doc.node(list.items.back()).position.line, 1);
  EXPECT_EQ(doc.node(list.items.back()).position.column, 5 + 3 * (kItems - 1));
}

TEST(ConfigYaml, TextProblemsAreReportedAtTheirByte) {
  EXPECT_TRUE(IsError(ParseFails("\xEF\xBB\xBF" "a: 1\n"), Reason::kParse, 1, 1, "", "save it as UTF-8 without BOM"));
  EXPECT_TRUE(IsError(ParseFails("a: 1\nb: caf\xC3\xA9 \xFF\n"), Reason::kParse, 2, 9, "", "invalid UTF-8 (byte 0xFF)"));
  EXPECT_TRUE(IsError(ParseFails("a: \xC3\n"), Reason::kParse, 1, 4, "", "invalid UTF-8"));          // truncated
  EXPECT_TRUE(IsError(ParseFails("a: \xC0\xAF\n"), Reason::kParse, 1, 4, "", "invalid UTF-8"));      // overlong
  EXPECT_TRUE(IsError(ParseFails("a: \xED\xA0\x80\n"), Reason::kParse, 1, 4, "", "invalid UTF-8"));  // surrogate
  EXPECT_TRUE(IsError(ParseFails(std::string("a: 1\n\n  b\0c", 11)), Reason::kParse, 3, 4, "", "NUL byte"));
  EXPECT_TRUE(IsError(ParseFails("a: \x01\x02\x03\n"), Reason::kParse, 1, 4, "", "character U+0001 is not allowed"));
  EXPECT_TRUE(IsError(ParseFails("a: \x7F\n"), Reason::kParse, 1, 4, "", "U+007F"));
  const auto binary = ReadFile(ConfigDataDir() / "bad_binary.bin");
  EXPECT_EQ(ParseFails(binary).reason, Reason::kParse);
  // Non-ASCII text and tabs in values are fine.
  EXPECT_EQ(Value(ParseOk("a: \"x\ty\"\nb: 日本語 ✓\n"), "b").text, "日本語 ✓");
}

// yaml-cpp 0.7 turns \N and \_ into the raw bytes 0x85 and 0xA0; a config
// using them is valid YAML and must get the characters in UTF-8.
TEST(ConfigYaml, NextLineAndNoBreakSpaceEscapesBecomeUtf8) {
  const YamlDocument doc = ParseOk(
      "a: \"a\\Nb\\_c\\Ld\\Pe\"\n"
      "b: \"\\N\\_\\N\"\n"
      "\"k\\N\\_\": 1\n"
      "c: [\"x\\_\"]\n"
      "d: {e: \"\\_y\\N\"}\n");
  EXPECT_EQ(Value(doc, "a").text, "a\xC2\x85" "b\xC2\xA0" "c\xE2\x80\xA8" "d\xE2\x80\xA9" "e");
  EXPECT_EQ(Value(doc, "b").text, "\xC2\x85\xC2\xA0\xC2\x85");
  EXPECT_EQ(Value(doc, "k\xC2\x85\xC2\xA0").kind, YamlKind::kInt);
  EXPECT_EQ(doc.node(Value(doc, "c").items.at(0)).text, "x\xC2\xA0");
  EXPECT_EQ(doc.node(Value(doc, "d").entries.at(0).value).text, "\xC2\xA0y\xC2\x85");
}

// Characters whose UTF-8 holds 0x85 or 0xA0 as a continuation byte (Å C3 85,
// à C3 A0, 𠂅 F0 A0 82 85), next to the escapes or not, stay as written.
TEST(ConfigYaml, LiteralUtf8IsUnchangedNextToTheEscapes) {
  const std::string literal = "\xC3\xA9 \xE2\x80\xA6 \xC3\x85 \xC3\xA0 \xF0\xA0\x82\x85 \xC2\x85 \xC2\xA0";
  const YamlDocument doc = ParseOk("a: \"" + literal + "\"\nb: " + literal + "\nc: '" + literal +
                                   "'\nd: \"\xC3\xA0\\N\xC3\x85\\_\xF0\xA0\x82\x85\"\n");
  EXPECT_EQ(Value(doc, "a").text, literal);
  EXPECT_EQ(Value(doc, "b").text, literal);
  EXPECT_EQ(Value(doc, "c").text, literal);
  EXPECT_EQ(Value(doc, "d").text, "\xC3\xA0\xC2\x85\xC3\x85\xC2\xA0\xF0\xA0\x82\x85");
  // Escapes are only escapes in double quotes.
  EXPECT_EQ(Value(ParseOk("a: 'x\\Ny'\n"), "a").text, "x\\Ny");
}

TEST(ConfigYaml, SyntaxErrorsCarryYamlCppPosition) {
  EXPECT_TRUE(IsError(ParseFails("a: [1, 2\nb: 3\n"), Reason::kParse, 2, 2, "a", "end of sequence flow not found"));
  EXPECT_TRUE(IsError(ParseFails("a: b: c\n"), Reason::kParse, 1, 5, "", "YAML syntax error"));
  EXPECT_TRUE(IsError(ParseFails("a: *nowhere\n"), Reason::kParse, 1, 4, "a",
                      "YAML syntax error: the referenced anchor is not defined"));
  EXPECT_TRUE(IsError(ParseFails("a:\n  - 1\n - 2\n"), Reason::kParse, 3, 2, "", "YAML syntax error"));
}

// yaml-cpp 0.7 takes everything up to the end of the file into a quoted
// scalar that is never closed, as long as a line break follows the quote.
TEST(ConfigYaml, AQuotedStringNeverClosedIsASyntaxErrorWhereItStarts) {
  EXPECT_TRUE(IsError(ParseFails("llm:\n  model: \"gpt-4o\n  provider: openai\n"), Reason::kParse, 2, 10,
                      "llm.model", "the double-quoted string that starts here is never closed"));
  EXPECT_TRUE(IsError(ParseFails("a: \"x\n"), Reason::kParse, 1, 4, "a", "no closing \" before the end of the file"));
  EXPECT_TRUE(IsError(ParseFails("a: \"x\r\n"), Reason::kParse, 1, 4, "a", "never closed"));
  EXPECT_TRUE(IsError(ParseFails("a: 'x\n  b: 1\n"), Reason::kParse, 1, 4, "a",
                      "the single-quoted string that starts here is never closed"));
  // A closing quote only escaped away: \" inside double quotes, '' inside single ones.
  EXPECT_TRUE(IsError(ParseFails("a: \"x\\\"\nb: 1\n"), Reason::kParse, 1, 4, "a", "never closed"));
  EXPECT_TRUE(IsError(ParseFails("a: \"x\\\\\\\"\nb: 1\n"), Reason::kParse, 1, 4, "a", "never closed"));
  EXPECT_TRUE(IsError(ParseFails("a: 'it''s\nb: 1\n"), Reason::kParse, 1, 4, "a", "never closed"));
  // Behind a tag, an anchor and a comment; as a key; in a list.
  EXPECT_TRUE(IsError(ParseFails("a: !!str &k # note\n  \"x\n"), Reason::kParse, 2, 3, "a", "never closed"));
  EXPECT_TRUE(IsError(ParseFails("m:\n  \"key: 1\n"), Reason::kParse, 2, 3, "m", "never closed"));
  EXPECT_TRUE(IsError(ParseFails("l:\n  - ok\n  - \"x\n"), Reason::kParse, 3, 5, "l.1", "never closed"));
  // A multi-byte character before the quote: the column counts characters.
  EXPECT_TRUE(IsError(ParseFails("\xC3\xA9: \"x\n"), Reason::kParse, 1, 4, "\xC3\xA9", "never closed"));
  const auto from_file =
      ReadFile(std::filesystem::path(ConfigDataDir()).parent_path() / "process" / "check_unterminated_quote.yaml");
  EXPECT_TRUE(IsError(ParseFails(from_file), Reason::kParse, 3, 10, "llm.model", "never closed"));
}

TEST(ConfigYaml, QuotesThatAreClosedOrNotQuotesAtAllStillParse) {
  const YamlDocument doc = ParseOk(
      "block: |\n  say \"hi\n  and 'bye\n"
      "folded: >-\n  \"open\n  \"\n"
      "escaped: \"a \\\"quoted\\\" word\"\n"
      "backslash_last: \"c:\\\\\"\n"
      "single: 'a \" inside'\n"
      "single_escape: 'it''s'\n"
      "hash: \"# not a comment\"\n"
      "hash_single: '# nor this'\n"
      "plain: it's a \"plain\" one # with a comment \"\n"
      "multi: \"first\n  second\n\n  third\"\n"
      "continued: \"one \\\n  two\"\n"
      "tagged: !!str &t \"x\"\n"
      "flow: [\"a\", 'b''c', {\"k\": \"v\"}]\n"
      "\"quoted key\": 1\n"
      "'single key': 2\n"
      "# a comment with a \" quote\n"
      "last: \"\"\n");
  EXPECT_EQ(Value(doc, "block").text, "say \"hi\nand 'bye\n");
  EXPECT_EQ(Value(doc, "folded").text, "\"open \"");
  EXPECT_EQ(Value(doc, "escaped").text, "a \"quoted\" word");
  EXPECT_EQ(Value(doc, "backslash_last").text, "c:\\");
  EXPECT_EQ(Value(doc, "single").text, "a \" inside");
  EXPECT_EQ(Value(doc, "single_escape").text, "it's");
  EXPECT_EQ(Value(doc, "hash").text, "# not a comment");
  EXPECT_EQ(Value(doc, "hash_single").text, "# nor this");
  EXPECT_EQ(Value(doc, "plain").text, "it's a \"plain\" one");
  EXPECT_EQ(Value(doc, "multi").text, "first second\nthird");
  EXPECT_EQ(Value(doc, "continued").text, "one two");
  EXPECT_EQ(Value(doc, "tagged").text, "x");
  EXPECT_EQ(Value(doc, "flow").items.size(), 3u);
  EXPECT_EQ(Value(doc, "quoted key").integer, 1);
  EXPECT_EQ(Value(doc, "single key").integer, 2);
  EXPECT_EQ(Value(doc, "last").text, "");
  // A quoted string that is the last thing in the file, with and without a line break.
  EXPECT_EQ(Value(ParseOk("a: \"x\""), "a").text, "x");
  EXPECT_EQ(Value(ParseOk("a: 'x'\n"), "a").text, "x");
  // Every config in the test data that is meant to load still does.
  for (const auto& entry : std::filesystem::directory_iterator(ConfigDataDir())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("bad_", 0) == 0 || entry.path().extension() != ".yaml") continue;
    const auto result = ParseYamlDocument(ReadFile(entry.path()), name);
    if (const auto* error = std::get_if<ConfigError>(&result)) {
      EXPECT_EQ(error->message.find("never closed"), std::string::npos) << error->ToString();
    }
  }
}

TEST(ConfigYaml, AliasesAreSharedNotCopied) {
  const YamlDocument doc = ParseOk("base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\nkey: &k name\n*k : 3\n");
  EXPECT_EQ(doc.root_node().entries[1].value, doc.root_node().entries[0].value);
  EXPECT_EQ(doc.root_node().entries[2].value, doc.root_node().entries[0].value);
  EXPECT_EQ(doc.root_node().entries[4].key, "name");
}

TEST(ConfigYaml, RecursiveAliasIsRejected) {
  EXPECT_TRUE(IsError(ParseFails("a: &x [1, *x]\n"), Reason::kParse, 1, 11, "a.1", "recursive alias"));
  EXPECT_TRUE(IsError(ParseFails("a: &x\n  b: *x\n"), Reason::kParse, 2, 6, "a.b", "recursive alias"));
}

TEST(ConfigYaml, AliasExpansionIsCapped) {
  const auto started = std::chrono::steady_clock::now();
  const auto laughs = ReadFile(ConfigDataDir() / "bad_billion_laughs.yaml");
  const ConfigError error = ParseFails(laughs);
  EXPECT_TRUE(IsError(error, Reason::kParse, error.line, error.column, error.path,
                      "alias expansion: the document expands to more than 1000000 values"));
  EXPECT_GT(error.line, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));

  YamlLimits small;
  small.max_nodes = 10;
  // root 1 + a 4 + b 1 + first *a 4 = 10; the second *a goes over.
  EXPECT_TRUE(IsError(ParseFails("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n", small), Reason::kParse, 2, 9, "b.1",
                      "alias expansion"));
  // Text through aliases counts too: one long string repeated.
  const std::string text = "s: &s " + std::string(1000, 'x') + "\nl: [" + [] {
    std::string list;
    for (int i = 0; i < 100; ++i) list += "*s, ";
    return list;
  }() + "]\n";
  YamlLimits few_bytes;
  few_bytes.max_expanded_bytes = 50'000;
  // 2 key bytes + 1000 + 1000 per alias: the 49th alias (l.48) passes 50000.
  EXPECT_TRUE(IsError(ParseFails(text, few_bytes), Reason::kParse, 2, 1 + 4 + 4 * 48, "l.48",
                      "expands to more than 50000 bytes of text"));
  ParseOk(text);  // well within the default limits
}

}  // namespace
}  // namespace confcast::publisher

namespace confcast::publisher {
namespace {

YamlLimits SnapshotLimits(uint64_t capacity, uint64_t path_bytes = 4096) {
  YamlLimits limits;
  limits.max_snapshot_bytes = capacity;
  limits.max_path_bytes = path_bytes;
  return limits;
}

TEST(ConfigYamlLimits, SnapshotBytesAtTheLimitPassAndOneLessIsTooLarge) {
  // Root and "a": 2 values, path bytes 1 ("a"), key and string bytes 2 ("a", "x").
  const uint64_t need = snapshot::MinimumSnapshotBytes(2, 1, 2);
  EXPECT_TRUE(std::holds_alternative<YamlDocument>(ParseYamlDocument("a: x\n", "t.yaml", SnapshotLimits(need))));
  const ConfigError error = ParseFails("a: x\n", SnapshotLimits(need - 1));
  EXPECT_EQ(error.reason, Reason::kTooLarge);
  EXPECT_EQ(error.line, 0);  // the position is in the message, as for every too-large rejection
  EXPECT_EQ(error.message.rfind("the validated config needs more than the segment's --capacity of " +
                                    std::to_string(need - 1) + " bytes of snapshot: it would exceed it at line 1",
                                0),
            0u)
      << error.message;
}

TEST(ConfigYamlLimits, PathBytesAtTheLimitPassAndOneMoreFails) {
  const std::string at_limit = "k: {" + std::string(9, 'x') + ": 1}\n";  // "k" + 9: 10 bytes without the dot
  EXPECT_TRUE(std::holds_alternative<YamlDocument>(ParseYamlDocument(at_limit, "t.yaml", SnapshotLimits(1 << 20, 10))));
  const ConfigError error = ParseFails("k: {" + std::string(10, 'x') + ": 1}\n", SnapshotLimits(1 << 20, 10));
  EXPECT_EQ(error.reason, Reason::kValidate);
  EXPECT_EQ(error.line, 1);
  EXPECT_EQ(error.path, "k." + std::string(10, 'x'));
  EXPECT_NE(error.message.find("longer than 10 bytes"), std::string::npos) << error.message;
}

TEST(ConfigYamlLimits, AliasesCountEveryExpandedPath) {
  // One anchored map with long keys, used by 200 aliases: 201 copies of 20
  // leaves under 2000 bytes of keys, about 8 MB of paths from 4 KB of file.
  std::string text = "t0: &a {" + std::string(1000, 'k') + ": {" + std::string(1000, 'j') + ": {";
  for (int i = 0; i < 20; ++i) text += (i ? ", x" : "x") + std::to_string(i) + ": 0";
  text += "}}}\n";
  for (int i = 1; i <= 200; ++i) text += "t" + std::to_string(i) + ": *a\n";
  ASSERT_TRUE(std::holds_alternative<YamlDocument>(ParseYamlDocument(text, "t.yaml")));  // no snapshot limits
  const ConfigError error = ParseFails(text, SnapshotLimits(1 << 20));
  EXPECT_EQ(error.reason, Reason::kTooLarge);
  EXPECT_NE(error.message.find("path t"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("aliases expanded"), std::string::npos) << error.message;
  // Under one alias, a path too long is found without expanding it.
  std::string deep = "a: &a {" + std::string(1000, 'k') + ": 1}\nb: ";  // 4 x 1000 bytes of keys, then the alias's
  for (char c : {'j', 'h', 'g', 'f'}) deep += "{" + std::string(1000, c) + ": ";
  deep += "*a}}}}\n";
  const ConfigError too_long = ParseFails(deep, SnapshotLimits(1 << 20));
  EXPECT_EQ(too_long.reason, Reason::kValidate);
  EXPECT_NE(too_long.message.find("of a value under this alias is longer than 4096 bytes"), std::string::npos)
      << too_long.message;
}

}  // namespace
}  // namespace confcast::publisher
