// segment_verification_test.cc - what a reader refuses: a segment of another
// layout (CONFCAST_ERR_INCOMPATIBLE), a wrong magic, inconsistent sizes, a
// corrupt active slot index or a stuck sequence (CONFCAST_ERR_CORRUPT), a
// zero-length file; and random bytes in the active slot, which no getter may
// crash on or read past. File segments in a tmpfs directory, patched byte
// by byte.
//
// Threading: single-threaded.
//
// The segment is published in this process by the publisher's own
// SegmentWriter and snapshot builder (tests/support/in_process_segment.hpp),
// so each test controls exactly what is published and when.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "../tests/support/c_api.hpp"
#include "../tests/support/configs.hpp"
#include "../tests/support/in_process_segment.hpp"
#include "../tests/support/names.hpp"
#include "../tests/support/scratch.hpp"
#include "../tests/support/wait.hpp"
#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"

namespace confcast {
namespace {

using namespace test_support;  // NOLINT: the support library is this file's vocabulary
using nlohmann::json;

// A valid file segment in a tmpfs directory, written by a publisher that
// then exited (the file stays; the directory goes at the end).
class FileSegment {
 public:
  explicit FileSegment(uint64_t capacity = 16 << 10) : path_(dir_ / "segment") {
    auto writer = OpenSegmentWriter(path_, capacity);
    const std::vector<uint64_t> words = SnapshotWords(HolmesConfig());
    writer->Publish(words.data(), words.size(), Sha256(HolmesConfig().dump()), publisher::RealtimeNs());
  }
  const std::string& path() const { return path_; }
  template <class T>
  void Patch(size_t offset, T value) {
    const int fd = ::open(path_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &value, sizeof(value), static_cast<off_t>(offset)), static_cast<ssize_t>(sizeof(value)));
    close(fd);
  }
  void Truncate(off_t size) { ASSERT_EQ(::truncate(path_.c_str(), size), 0); }

 private:
  TempDir dir_{"sub-file", kTmpfs};
  std::string path_;
};

TEST(SegmentVerification, ValidFileSegmentOpens) {
  FileSegment file;
  Handle h = OpenC(file.path());
  ASSERT_TRUE(h);
  EXPECT_EQ(CString(h.get(), "llm.model"), "gpt-4o");
}

TEST(SegmentVerification, WrongMagicIsCorrupt) {
  FileSegment file;
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, magic), 0x4B4E554A4B4E554Aull);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_CORRUPT);
}

TEST(SegmentVerification, ZeroMagicIsAPublisherStillCreatingIt) {
  FileSegment file;
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, magic), 0);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_NO_SEGMENT);
}

TEST(SegmentVerification, OtherLayoutVersionIsIncompatible) {
  FileSegment file;
  file.Patch<uint32_t>(offsetof(layout::SegmentHeader, layout_version), layout::kLayoutVersion + 1);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_INCOMPATIBLE);
  try {
    Subscriber sub(file.path());
    ADD_FAILURE() << "must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_INCOMPATIBLE);
  }
}

TEST(SegmentVerification, WrongLayoutSignatureIsIncompatible) {
  FileSegment file;
  file.Patch<uint32_t>(offsetof(layout::SegmentHeader, layout_signature), layout::Signature() ^ 0x10);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_INCOMPATIBLE);
}

TEST(SegmentVerification, InconsistentSizesAreCorrupt) {
  using H = layout::SegmentHeader;
  const uint64_t capacity = 16 << 10;
  struct Case {
    const char* what;
    std::function<void(FileSegment&)> damage;
  };
  const Case cases[] = {
      {"segment_size + 64", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, segment_size), layout::SegmentSize(capacity) + 64); }},
      {"segment_size - 64", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, segment_size), layout::SegmentSize(capacity) - 64); }},
      {"segment_size huge", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, segment_size), ~uint64_t{0}); }},
      {"slot_capacity 0", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, slot_capacity), 0); }},
      {"slot_capacity odd", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, slot_capacity), capacity + 4); }},
      {"slot_capacity larger", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, slot_capacity), capacity * 2); }},
      {"slot_capacity huge", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, slot_capacity), uint64_t{1} << 62); }},
      {"slot_count 3", [&](FileSegment& f) { f.Patch<uint32_t>(offsetof(H, slot_count), 3); }},
      {"slot_count 0", [&](FileSegment& f) { f.Patch<uint32_t>(offsetof(H, slot_count), 0); }},
      {"slot_header_size", [&](FileSegment& f) { f.Patch<uint32_t>(offsetof(H, slot_header_size), 32); }},
      {"slot_stride", [&](FileSegment& f) { f.Patch<uint64_t>(offsetof(H, slot_stride), layout::SlotStride(capacity) + 64); }},
      {"file shorter than segment_size", [&](FileSegment& f) { f.Truncate(static_cast<off_t>(layout::SegmentSize(capacity) - 4096)); }},
      {"file shorter than the header", [&](FileSegment& f) { f.Truncate(100); }},
  };
  for (const Case& c : cases) {
    FileSegment file(capacity);
    c.damage(file);
    EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_CORRUPT) << c.what;
  }
}

TEST(SegmentVerification, ZeroLengthFileIsNoSegment) {
  TempDir dir("sub", kTmpfs);
  const std::string path = dir / "empty";
  std::ofstream(path).close();
  EXPECT_EQ(OpenStatus(path), CONFCAST_ERR_NO_SEGMENT);
}

TEST(SegmentVerification, CorruptActiveSlotIndexOrStuckSequence) {
  FileSegment file;
  Handle h = OpenC(file.path());
  ASSERT_TRUE(h);
  // A wild active_slot index.
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, active_slot), 7);
  int64_t i;
  char buf[64];
  size_t len;
  confcast_info info;
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_ERR_CORRUPT);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.model", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_CORRUPT);
  EXPECT_EQ(confcast_snapshot_json(h.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_CORRUPT);
  EXPECT_EQ(confcast_info_get(h.get(), &info), CONFCAST_ERR_CORRUPT);
  Subscriber sub(file.path());
  Snapshot snap;
  EXPECT_EQ(sub.TryPin(&snap), CONFCAST_ERR_CORRUPT);
  Key key("llm.max_retries");
  EXPECT_EQ(sub.Get(key, &i), CONFCAST_ERR_CORRUPT);

  // The active slot left odd forever (no correct writer does that): readers
  // give up with CORRUPT after a bounded number of attempts, never hang.
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, active_slot), 0);
  for (uint64_t slot = 0; slot < layout::kSlotCount; ++slot) {
    file.Patch<uint64_t>(layout::kHeaderSize + slot * layout::SlotStride(16 << 10) + offsetof(layout::SlotHeader, seq), 1);
  }
  const auto start = Clock::now();
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_ERR_CORRUPT);
  EXPECT_EQ(sub.Get(key, &i), CONFCAST_ERR_CORRUPT);
  EXPECT_EQ(sub.TryPin(&snap), CONFCAST_ERR_CORRUPT);
  EXPECT_LT(Clock::now() - start, milliseconds(10000));
}

// Random bytes in the active slot's data (header valid, seq even, version 1):
// no getter may crash, overrun a buffer or read outside the slot. The active
// slot is the last one and its data ends exactly at the end of the mapping
// (capacity + 64 is a multiple of the page size), so a read past the slot faults.
TEST(SegmentVerification, GarbageInTheSlotNeverCrashes) {
  constexpr uint64_t kCapacity = 4 * 4096 - sizeof(layout::SlotHeader);
  static_assert(layout::SlotStride(kCapacity) == 4 * 4096);
  FileSegment file(kCapacity);
  const int fd = ::open(file.path().c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const uint64_t size = layout::SegmentSize(kCapacity);
  void* rw = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(rw, MAP_FAILED);
  struct Unmap {
    void* p;
    uint64_t n;
    ~Unmap() { munmap(p, n); }
  } unmap{rw, size};
  auto* base = static_cast<uint8_t*>(rw);
  auto* header = reinterpret_cast<layout::SegmentHeader*>(base);
  const uint64_t last = layout::kSlotCount - 1;
  auto* slot = reinterpret_cast<layout::SlotHeader*>(base + layout::kHeaderSize + last * layout::SlotStride(kCapacity));
  uint8_t* data = reinterpret_cast<uint8_t*>(slot) + sizeof(layout::SlotHeader);
  ASSERT_EQ(data + kCapacity, base + size);

  // A valid snapshot to mutate, so damage also reaches past the header checks.
  auto built = snapshot::BuildSnapshot(HolmesConfig());
  const auto valid = std::get<snapshot::BuiltSnapshot>(built).words;
  ASSERT_LE(valid.size() * 8, kCapacity);
  const uint32_t valid_entries = std::get<snapshot::BuiltSnapshot>(built).entry_count;
  // Entry 0 is the root: where the entries begin, whatever the header looks like.
  uint32_t entries_off = 0;
  {
    snapshot::View<snapshot::PrivateMemory> view(reinterpret_cast<const uint8_t*>(valid.data()), valid.size() * 8);
    ASSERT_TRUE(view.LoadHeader());
    snapshot::Found root;
    ASSERT_EQ(view.Find("", 0, snapshot::PathHash("", 0), &root), snapshot::LookupStatus::kFound);
    entries_off = root.entry_off;
  }

  Handle h = OpenC(file.path());
  ASSERT_TRUE(h);
  Subscriber sub(file.path());
  const std::vector<std::string> paths = {"",          "llm",       "llm.model",    "llm.max_retries", "llm.temperature",
                                          "toolsets",  "toolsets.kubernetes/core.enabled", "a.list.0", "a.list.1",
                                          "text.empty", "numbers.big", "nope",        "a.b.c.d.e.f.g.h.i"};
  std::vector<std::unique_ptr<Key>> keys;  // warm caches carry over from one filling to the next
  for (const auto& p : paths) keys.push_back(std::make_unique<Key>(p));

  std::mt19937_64& rng = Rng();
  const uint64_t seed = rng();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 r(seed);
  constexpr int kFillings = 5000;
  int unexpected = 0;
  auto allowed = [&](int rc, bool may_succeed) {
    const bool ok = rc == CONFCAST_ERR_CORRUPT || rc == CONFCAST_ERR_NOT_FOUND || rc == CONFCAST_ERR_TYPE ||
                    (may_succeed && (rc == CONFCAST_OK || rc == CONFCAST_ERR_TRUNCATED));
    if (!ok && ++unexpected < 10) ADD_FAILURE() << "status " << rc << " (" << confcast_strerror(rc) << ")";
  };
  uint64_t found_something = 0;

  for (int filling = 0; filling < kFillings; ++filling) {
    const int strategy = filling % 3;
    auto* words = reinterpret_cast<uint64_t*>(data);
    if (strategy == 0) {
      // Pure noise.
      for (uint64_t w = 0; w < kCapacity / 8; ++w) words[w] = r();
    } else if (strategy == 1) {
      // A valid snapshot with a few random bytes changed.
      std::memcpy(data, valid.data(), valid.size() * 8);
      for (uint64_t w = valid.size(); w < kCapacity / 8; ++w) words[w] = r();
      const int flips = 1 + static_cast<int>(r() % 16);
      for (int f = 0; f < flips; ++f) data[r() % (valid.size() * 8)] = static_cast<uint8_t>(r());
    } else {
      // The valid snapshot's header (and half the time its hash table) over
      // noise, with entries that carry the hash of a queried path, so lookups
      // get past the bucket and hash checks into the entry's own fields.
      for (uint64_t w = 0; w < kCapacity / 8; ++w) words[w] = r();
      std::memcpy(data, valid.data(), r() % 2 ? entries_off : sizeof(snapshot::SnapshotHeader));
      if (r() % 2) {
        for (uint32_t e = 0; e < valid_entries; ++e) {
          if (r() % 2) continue;
          const std::string& p = paths[r() % paths.size()];
          const uint64_t hash = snapshot::PathHash(p.data(), p.size());
          std::memcpy(data + entries_off + e * sizeof(snapshot::Entry), &hash, 8);
        }
      }
    }
    slot->data_size = (r() % 4 == 0) ? r() : (r() % (kCapacity + 1)) & ~uint64_t{7};
    slot->version = 1;
    slot->seq = 2 * (1 + filling);
    header->active_slot = last;
    header->version = 1;
    if (filling % 7 == 0) {
      // Noise in the stats too (its sequence word stays as it is).
      auto* stats = reinterpret_cast<uint64_t*>(header->stats);
      for (size_t w = 0; w < sizeof(header->stats) / 8; ++w) stats[w] = r();
    }
    const bool may_succeed = strategy != 0;

    char small[8];
    std::vector<char> big(kCapacity + 64, 'G');
    for (size_t p = 0; p < paths.size(); ++p) {
      const char* path = paths[p].c_str();
      int64_t i;
      double d;
      int b;
      bool bb;
      uint64_t version = 0;
      int rc = confcast_get_int(h.get(), path, &i, &version);
      allowed(rc, may_succeed);
      if (rc == CONFCAST_OK) ++found_something;
      allowed(confcast_get_double(h.get(), path, &d, nullptr), may_succeed);
      allowed(confcast_get_bool(h.get(), path, &b, nullptr), may_succeed);
      allowed(sub.Get(*keys[p], &i), may_succeed);
      allowed(sub.Get(*keys[p], &d), may_succeed);
      allowed(sub.Get(*keys[p], &bb), may_succeed);
      size_t len = 0;
      big.assign(big.size(), 'G');
      rc = confcast_get_string(h.get(), path, big.data(), kCapacity, &len, nullptr);
      allowed(rc, may_succeed);
      if (rc == CONFCAST_OK) {
        EXPECT_LE(len, kCapacity);
      }
      EXPECT_EQ(big[kCapacity], 'G') << "wrote past cap";
      allowed(confcast_get_string(h.get(), path, small, sizeof(small), &len, nullptr), may_succeed);
      rc = confcast_get_json(h.get(), path, big.data(), kCapacity, &len, nullptr);
      allowed(rc, may_succeed);
      if (rc == CONFCAST_OK || rc == CONFCAST_ERR_TRUNCATED) {
        EXPECT_LE(len, kCapacity);
      }
      EXPECT_EQ(big[kCapacity], 'G') << "wrote past cap";
      allowed(confcast_get_json(h.get(), path, nullptr, 0, &len, nullptr), may_succeed);
    }
    size_t len = 0;
    big.assign(big.size(), 'G');
    const int rc = confcast_snapshot_json(h.get(), big.data(), kCapacity, &len, nullptr);
    allowed(rc, may_succeed);
    EXPECT_EQ(big[kCapacity], 'G');

    Snapshot snap;
    const int pin = sub.TryPin(&snap);
    allowed(pin, may_succeed);
    if (pin == CONFCAST_OK) {
      for (const auto& p : paths) {
        int64_t i;
        std::string_view sv;
        allowed(snap.Get(p, &i), true);
        for (int which = 0; which < 2; ++which) {
          const int src = which == 0 ? snap.Get(p, &sv) : snap.GetJson(p, &sv);
          allowed(src, true);
          if (src == CONFCAST_OK) {
            EXPECT_LE(sv.size(), kCapacity);
          }
        }
        (void)snap.TypeOf(p);
      }
    }
    confcast_info info;
    EXPECT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
    EXPECT_LT(std::strlen(info.last_error), sizeof(info.last_error));
    EXPECT_EQ(confcast_version(h.get()), 1u);
  }
  EXPECT_EQ(unexpected, 0);
  // The damage reached past the header checks: lightly mutated snapshots still answer.
  EXPECT_GT(found_something, uint64_t{kFillings / 10});
  RecordProperty("successful_int_reads_on_damaged_snapshots", static_cast<int>(found_something));
}

}  // namespace
}  // namespace confcast
