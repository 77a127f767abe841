// confcast/layout.hpp - the shared-memory segment: every byte the publisher
// writes and the subscribers read, in one place.
//
// Both sides include this header; nothing else describes the segment. A build
// that changes anything here must bump kLayoutVersion (the layout signature,
// folded from every size and offset below, catches a forgotten bump).
//
// Threading and memory-ordering contract
// --------------------------------------
// * Exactly one writer: the publisher holding an exclusive flock(2) on the
//   segment. Readers map the segment PROT_READ and never write a byte.
// * Every shared word is accessed with __atomic builtins (never plain loads),
//   so a reader racing the writer is not a data race in the C++ memory model.
// * Snapshots live in kSlotCount slots (a "latch", cf. Linux seqcount_latch).
//   The writer only ever writes a slot that is NOT active:
//       slot.seq  := odd        (relaxed store, then release fence)
//       slot bytes := new data  (relaxed stores)
//       slot.seq  := even       (release store)
//       header.active_slot := slot   (release store)
//       header.version     := v      (release store), then futex wake
//   A reader (Boehm, "Can seqlocks get along with programming language memory
//   models?", 2012):
//       i  = active_slot (acquire); s1 = slot[i].seq (acquire); s1 odd -> retry
//       copy what it needs with relaxed loads
//       acquire fence;  s2 = slot[i].seq (relaxed);  s1 != s2 -> retry
//   Because the active slot is never written in place, a writer that dies at
//   any instruction leaves the active slot complete: readers never wait for
//   the writer and never spin on a dead one. Under ThreadSanitizer (which
//   does not model standalone fences) the relaxed loads become acquire loads.
// * Stats (counters, last error) use a two-copy latch of their own with one
//   sequence word, for the same reason.
// * All integers are little-endian (the segment never leaves the host).
//
// Segment layout (offsets in bytes)
// ---------------------------------
//
//   0      +--------------------------------------------------------------+
//          | SegmentHeader                                    4096 bytes |
//          |   0    magic            u64  "CONFCAST" (written last)      |
//          |   8    layout_version   u32                                 |
//          |   12   layout_signature u32  sizes+offsets folded          |
//          |   16   segment_size     u64  whole mapping                  |
//          |   24   slot_capacity    u64  snapshot bytes per slot        |
//          |   32   slot_count       u32                                 |
//          |   36   slot_header_size u32                                 |
//          |   40   slot_stride      u64                                 |
//          |   48   created_unix_ns  i64                                 |
//          |   64   active_slot      u64  ---- reader-hot cache line --  |
//          |   72   version          u64                                 |
//          |   80   change_futex     u32  bumped + FUTEX_WAKE per publish|
//          |   128  publisher_pid    i32  ---- liveness line ----------  |
//          |   136  heartbeat_ns     i64  CLOCK_REALTIME, every second   |
//          |   144  retired          u32  1: a newer segment replaced it |
//          |   152  heartbeat_mono   i64  CLOCK_MONOTONIC, same beat      |
//          |   192  stats_seq        u64  ---- stats latch ------------  |
//          |   200  stats[2]         Stats (2 x 384 bytes)               |
//   4096   +--------------------------------------------------------------+
//          | Slot 0: SlotHeader (64 bytes)                                |
//          |   0  seq u64 | 8 version u64 | 16 published_ns i64 |        |
//          |   24 data_size u64 | 32 sha256[32]                          |
//          | Slot 0: snapshot bytes (slot_capacity, see snapshot_format)  |
//          +--------------------------------------------------------------+
//          | Slot 1: same                                                 |
//          +--------------------------------------------------------------+
//
// The worker ledger (beside the segment, never inside it)
// -------------------------------------------------------
// The segment stays read-only for workers. Each reading process instead owns
// one small file in the ledger directory SEGMENT_FILE.confcast-ledger/
// (/dev/shm/NAME.confcast-ledger/ for a shared-memory name, PATH.confcast-
// ledger/ for an absolute path), which the publisher creates with the sticky
// bit and write access for exactly those who may read the segment. The
// owning process maps its entry read-write and is its only writer (atomics,
// several threads); it holds an exclusive flock(2) on it while it lives, so
// the lock dies with the process. The publisher and confcastctl read entries
// with pread(2) as untrusted bytes (any field may be anything).
//
//   0      +--------------------------------------------------------------+
//          | LedgerEntry                                       256 bytes |
//          |   0    magic            u64  "CCLEDGER" (written last)      |
//          |   8    layout_version   u32  kLedgerLayoutVersion           |
//          |   12   entry_size       u32  256                            |
//          |   16   pid              i32  in the worker's pid namespace  |
//          |   20   hold_slots       u32  kHoldSlots                     |
//          |   24   start_time       u64  /proc/PID/stat field 22        |
//          |   32   pid_namespace    u64  inode of /proc/self/ns/pid     |
//          |   64   newest_read      u64  ---- written on a new version  |
//          |   72   overflow         u64  Hold word: holds beyond slots  |
//          |   128  holds[16]        u64  Hold words                     |
//   256    +--------------------------------------------------------------+
//
// A Hold word packs (version << 16) | count: a version held `count` times;
// 0 is a free slot. Packing both into one word lets a hold and a release be
// one compare-and-swap, and a reader never sees a count without its version.
// The overflow word (holds of more distinct versions than slots) keeps the
// OLDEST version it ever took while its count is above 0: it may say older
// than the truth, never newer, which is the safe side for a rollout gate.
//
#ifndef CONFCAST_LAYOUT_HPP_
#define CONFCAST_LAYOUT_HPP_

#include <cstddef>
#include <cstdint>

#include "confcast/snapshot_format.hpp"

namespace confcast::layout {

inline constexpr uint64_t kMagic = 0x54534143464E4F43ull;  // "CONFCAST" read little-endian
inline constexpr uint32_t kLayoutVersion = 2;  // 2: heartbeat_mono_ns
inline constexpr uint32_t kSlotCount = 2;  // a latch needs two; the writer never touches the active one
inline constexpr uint32_t kHeaderSize = 4096;
inline constexpr uint32_t kLastErrorBytes = 256;  // matches confcast_info.last_error
inline constexpr uint32_t kReasonCount = 4;       // io, too_large, parse, validate
inline constexpr uint64_t kMaxSlotCapacity = 128ull << 20;  // offsets/8 fit the 24 bits of a key cache
inline constexpr uint64_t kMinSlotCapacity = 64;            // a snapshot header and one entry fit
static_assert(kMinSlotCapacity >= sizeof(snapshot::SnapshotHeader) + sizeof(snapshot::Entry),
              "the smallest slot holds the root entry");

enum Reason : uint32_t { kReasonIo = 0, kReasonTooLarge = 1, kReasonParse = 2, kReasonValidate = 3 };

// Counters and the last error, written by the publisher as one unit.
struct Stats {
  uint64_t reload_total;                   // successful publishes, the first one included
  uint64_t reload_errors_total;            // rejected reload attempts (each distinct bad content once)
  int64_t last_reload_unix_ns;             // CLOCK_REALTIME of the last successful publish, 0 = never
  int64_t last_error_unix_ns;              // CLOCK_REALTIME of the last rejection, 0 = never
  uint64_t errors_by_reason[kReasonCount]; // indexed by Reason
  uint32_t last_error_len;                 // bytes used in last_error, <= kLastErrorBytes - 1
  uint32_t reserved0;                      // zero
  char last_error[kLastErrorBytes];        // "PATH:LINE:COL: reason: message", NUL-padded
  uint64_t reserved[7];                    // zero; room to grow
};
static_assert(sizeof(Stats) == 384, "Stats is part of the shared layout");
static_assert(sizeof(Stats) % 8 == 0, "Stats is copied as 64-bit words");

struct SegmentHeader {
  // -- identity: written once at creation, magic last (release) --
  uint64_t magic;             // kMagic once the header is initialised; 0 while being created
  uint32_t layout_version;    // kLayoutVersion of the build that created it
  uint32_t layout_signature;  // Signature() of that build; readers refuse any other
  uint64_t segment_size;      // bytes of the whole segment (header + slots)
  uint64_t slot_capacity;     // bytes of snapshot data per slot (the --capacity), multiple of 8
  uint32_t slot_count;        // kSlotCount
  uint32_t slot_header_size;  // sizeof(SlotHeader)
  uint64_t slot_stride;       // bytes from one slot header to the next
  uint64_t created_unix_ns;   // when the segment was created (not reset by a restart)
  // -- reader-hot line --
  alignas(64) uint64_t active_slot;  // index of the slot readers use; only changed after that slot is complete
  uint64_t version;                  // version in the active slot, 0 = nothing published yet
  uint32_t change_futex;             // incremented after every publish; waiters FUTEX_WAIT on it
  uint32_t reserved_hot;             // zero
  // -- liveness line: written by the live publisher --
  alignas(64) int32_t publisher_pid;  // pid of the publisher that last held the segment
  uint32_t reserved_pid;              // zero
  int64_t heartbeat_unix_ns;          // CLOCK_REALTIME, refreshed every second while a publisher runs; for display
  uint32_t retired;                   // 1: a publisher replaced this segment with an incompatible one; reopen
  uint32_t reserved_live;             // zero
  int64_t heartbeat_mono_ns;          // CLOCK_MONOTONIC of the same beat: ages are measured on it (no wall-clock step moves it)
  // -- stats latch: stats[stats_seq & 1] is stable while stats_seq is unchanged --
  alignas(64) uint64_t stats_seq;  // incremented before writing each copy (Linux seqcount_latch)
  Stats stats[2];                  // the two copies
};

struct SlotHeader {
  uint64_t seq;                // odd while the publisher writes this slot, even when complete
  uint64_t version;            // version of the snapshot in this slot
  int64_t published_unix_ns;   // CLOCK_REALTIME of the publish
  uint64_t data_size;          // bytes of snapshot data, <= slot_capacity
  uint8_t sha256[32];          // SHA-256 of the config file's bytes
};
static_assert(sizeof(SlotHeader) == 64, "SlotHeader is part of the shared layout");

static_assert(offsetof(SegmentHeader, active_slot) == 64, "hot line starts at 64");
static_assert(offsetof(SegmentHeader, version) == 72, "Python reads the version word at offset 72");
static_assert(offsetof(SegmentHeader, change_futex) == 80, "futex word");
static_assert(offsetof(SegmentHeader, publisher_pid) == 128, "liveness line");
static_assert(offsetof(SegmentHeader, heartbeat_unix_ns) == 136, "heartbeat");
static_assert(offsetof(SegmentHeader, retired) == 144, "retired flag");
static_assert(offsetof(SegmentHeader, heartbeat_mono_ns) == 152, "Python reads the monotonic heartbeat at offset 152");
static_assert(offsetof(SegmentHeader, stats_seq) == 192, "stats latch");
static_assert(sizeof(SegmentHeader) <= kHeaderSize, "header fits its page");
static_assert(offsetof(SegmentHeader, change_futex) % 4 == 0, "futex words are 4-aligned");

inline constexpr uint64_t kVersionOffset = offsetof(SegmentHeader, version);

// FNV-1a over every size and offset above and the snapshot format's: two
// builds agree on the signature only if they agree on the layout.
constexpr uint32_t Fold(uint32_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= static_cast<uint32_t>((v >> (8 * i)) & 0xff);
    h *= 16777619u;
  }
  return h;
}
constexpr uint32_t Signature() {
  uint32_t h = 2166136261u;
  const uint64_t parts[] = {
      kLayoutVersion, kSlotCount, kHeaderSize, kLastErrorBytes, kReasonCount, sizeof(Stats),
      sizeof(SegmentHeader), offsetof(SegmentHeader, active_slot), offsetof(SegmentHeader, version),
      offsetof(SegmentHeader, change_futex), offsetof(SegmentHeader, publisher_pid),
      offsetof(SegmentHeader, heartbeat_unix_ns), offsetof(SegmentHeader, retired),
      offsetof(SegmentHeader, heartbeat_mono_ns),
      offsetof(SegmentHeader, stats_seq), offsetof(SegmentHeader, stats), sizeof(SlotHeader),
      offsetof(SlotHeader, seq), offsetof(SlotHeader, version), offsetof(SlotHeader, data_size),
      offsetof(SlotHeader, sha256), offsetof(Stats, last_error), offsetof(Stats, errors_by_reason),
      snapshot::kFormatVersion, sizeof(snapshot::SnapshotHeader), sizeof(snapshot::Entry)};
  for (uint64_t p : parts) h = Fold(h, p);
  return h;
}

constexpr uint64_t SlotStride(uint64_t slot_capacity) {
  return (sizeof(SlotHeader) + slot_capacity + 63) & ~uint64_t{63};
}
constexpr uint64_t SegmentSize(uint64_t slot_capacity) {
  return kHeaderSize + kSlotCount * SlotStride(slot_capacity);
}

// -- the worker ledger (drawn at the top of this file) ----------------------

inline constexpr uint64_t kLedgerMagic = 0x52454744454C4343ull;  // "CCLEDGER" read little-endian
inline constexpr uint32_t kLedgerLayoutVersion = 1;
inline constexpr uint32_t kHoldSlots = 16;
inline constexpr uint32_t kHoldCountBits = 16;
inline constexpr uint64_t kHoldCountMax = (uint64_t{1} << kHoldCountBits) - 1;
inline constexpr uint64_t kHoldVersionMax = (uint64_t{1} << (64 - kHoldCountBits)) - 1;  // 2^48 - 1
inline constexpr const char* kLedgerSuffix = ".confcast-ledger";
inline constexpr const char* kLedgerEntryPrefix = "w-";  // every other name in the directory is ignored

constexpr uint64_t PackHold(uint64_t version, uint64_t count) { return (version << kHoldCountBits) | count; }
constexpr uint64_t HoldVersion(uint64_t word) { return word >> kHoldCountBits; }
constexpr uint64_t HoldCount(uint64_t word) { return word & kHoldCountMax; }

struct LedgerEntry {
  uint64_t magic;           // kLedgerMagic once the rest of the header is written
  uint32_t layout_version;  // kLedgerLayoutVersion
  uint32_t entry_size;      // sizeof(LedgerEntry)
  int32_t pid;              // the owner's pid, as its own pid namespace numbers it
  uint32_t hold_slots;      // kHoldSlots
  uint64_t start_time;      // clock ticks after boot (/proc/PID/stat field 22): a reused pid has another
  uint64_t pid_namespace;   // inode of the owner's pid namespace: pid and start time mean something only there
  uint64_t reserved_id[3];  // zero
  alignas(64) uint64_t newest_read;  // the newest version this process has read (0: none yet)
  uint64_t overflow;                 // a Hold word for holds that found no slot (see above)
  uint64_t reserved_read[6];         // zero
  alignas(64) uint64_t holds[kHoldSlots];  // Hold words
};
static_assert(sizeof(LedgerEntry) == 256, "LedgerEntry is part of the shared layout");
static_assert(offsetof(LedgerEntry, pid) == 16, "ledger pid");
static_assert(offsetof(LedgerEntry, start_time) == 24, "ledger start time");
static_assert(offsetof(LedgerEntry, pid_namespace) == 32, "ledger pid namespace");
static_assert(offsetof(LedgerEntry, newest_read) == 64, "ledger newest read");
static_assert(offsetof(LedgerEntry, overflow) == 72, "ledger overflow word");
static_assert(offsetof(LedgerEntry, holds) == 128, "ledger holds");
static_assert(kHoldSlots * 8 + 128 == sizeof(LedgerEntry), "the holds end the entry");

}  // namespace confcast::layout

#endif  // CONFCAST_LAYOUT_HPP_
