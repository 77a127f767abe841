// secret_test.cc - which values are secret travels in the snapshot itself:
// every reader (C ABI, C++ Subscriber, a pinned Snapshot) can tell, without
// the schema, and still reads the value.
//
// Threading: single-threaded. The segment is published in this process by
// the publisher's own SegmentWriter and snapshot builder.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../tests/support/c_api.hpp"
#include "../tests/support/in_process_segment.hpp"
#include "confcast/confcast.h"
#include "confcast/subscriber.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using nlohmann::json;

const json kConfig = json::parse(R"({
  "llm": {"model": "gpt-4o", "api_key": "sk-test-0123456789"},
  "vault": {"token": "v-1", "nested": {"pin": 1234}, "list": ["a", {"b": true}]},
  "plain": {"list": [1, 2]}
})");
const std::vector<std::string> kSecretPaths = {"llm.api_key", "vault"};

TEST(SecretValues, TheCAbiTellsSecretPathsAndEverythingBelowThem) {
  PublishedSegment seg;
  seg.Publish(kConfig, publisher::RealtimeNs(), kSecretPaths);
  Handle sub = OpenC(seg.segment());
  for (const char* path : {"llm.api_key", "vault", "vault.token", "vault.nested", "vault.nested.pin", "vault.list.0",
                           "vault.list.1.b"}) {
    EXPECT_EQ(confcast_is_secret(sub.get(), path), 1) << path;
  }
  for (const char* path : {"", "llm", "llm.model", "plain", "plain.list.1"}) {
    EXPECT_EQ(confcast_is_secret(sub.get(), path), 0) << path;
  }
  EXPECT_EQ(confcast_is_secret(sub.get(), "llm.nope"), CONFCAST_ERR_NOT_FOUND);
  EXPECT_EQ(confcast_is_secret(sub.get(), nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_is_secret(nullptr, "llm.api_key"), CONFCAST_ERR_INVALID);

  // Readers still get the value.
  char buf[64];
  size_t len = 0;
  ASSERT_EQ(confcast_get_string(sub.get(), "llm.api_key", buf, sizeof(buf), &len, nullptr), CONFCAST_OK);
  EXPECT_EQ(std::string(buf, len), "sk-test-0123456789");
}

TEST(SecretValues, CppSubscriberAndPinnedSnapshotAgreeWithTheCAbi) {
  PublishedSegment seg;
  seg.Publish(kConfig, publisher::RealtimeNs(), kSecretPaths);
  Subscriber sub(seg.segment());
  uint64_t version = 0;
  EXPECT_EQ(sub.IsSecret("llm.api_key", &version), 1);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(sub.IsSecret("llm.model"), 0);
  EXPECT_EQ(sub.IsSecret("vault.nested.pin"), 1);
  EXPECT_EQ(sub.IsSecret("missing"), CONFCAST_ERR_NOT_FOUND);
  EXPECT_EQ(sub.GetString("llm.api_key"), "sk-test-0123456789");

  const Snapshot snap = sub.Pin();
  // A newer version without secrets: the pinned copy keeps its own flags.
  seg.Publish(kConfig);
  EXPECT_EQ(sub.IsSecret("llm.api_key"), 0);
  EXPECT_EQ(snap.IsSecret("llm.api_key"), 1);
  EXPECT_EQ(snap.IsSecret("vault.list.1.b"), 1);
  EXPECT_EQ(snap.IsSecret("plain.list"), 0);
  EXPECT_EQ(snap.IsSecret("missing"), CONFCAST_ERR_NOT_FOUND);
}

TEST(SecretValues, ASnapshotWithoutSecretsHasNone) {
  PublishedSegment seg;
  seg.Publish(kConfig);
  Handle sub = OpenC(seg.segment());
  for (const char* path : {"llm.api_key", "vault", "vault.nested.pin"}) {
    EXPECT_EQ(confcast_is_secret(sub.get(), path), 0) << path;
  }
}

}  // namespace
}  // namespace confcast
