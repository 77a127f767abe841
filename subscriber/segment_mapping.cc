// segment_mapping.cc - opening a segment: resolve its name, open it without
// letting whatever sits at the name act on us, judge who could have written
// it, verify its header, and map it read-only.
//
// Boost.Interprocess maps (mapped_region, read_only: PROT_READ, MAP_SHARED).
// It does not open: file_mapping and shared_memory_object open with
// open(name, O_RDONLY) / shm_open(name, O_RDONLY), without O_NONBLOCK (a
// FIFO at the name would block the open forever) and without O_NOCTTY, and
// they expose no fstat of their descriptor, so the trust rules could only
// be checked on a path, which another process can swap between the check
// and the open. So the descriptor is ours, the checks run on it, and
// mapped_region maps that very descriptor through FdMappable.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "confcast/confcast.h"
#include "confcast/defaults.hpp"
#include "confcast/layout.hpp"
#include "confcast/segment_mapping.hpp"
#include "confcast/segment_trust.hpp"
#include "confcast/snapshot_format.hpp"
#include "confcast/word_access.hpp"
#include "segment_bytes.hpp"

namespace confcast {
namespace {

namespace bip = boost::interprocess;

// What mapped_region's constructor asks of a MemoryMappable: the handle to
// map. Boost's own mappables would open the file themselves (see the top).
struct FdMappable {
  int fd;
  bip::mapping_handle_t get_mapping_handle() const noexcept {
    return bip::ipcdetail::mapping_handle_from_file_handle(fd);
  }
};

// A segment mapped from a file, and which file that was, so that Wait()
// can tell when the name has moved on to another segment.
class FileBytes final : public SegmentMapping::Bytes {
 public:
  FileBytes(bip::mapped_region region, std::string location, std::string file, const struct stat& st) noexcept
      : region_(std::move(region)), location_(std::move(location)), file_(std::move(file)), dev_(st.st_dev),
        ino_(st.st_ino), owner_(st.st_uid) {}
  const uint8_t* data() const noexcept override { return static_cast<const uint8_t*>(region_.get_address()); }
  uint64_t size() const noexcept override { return region_.get_size(); }
  // A name that is gone for now is not a move: the publisher may be about to create it.
  bool NameMoved() const noexcept override {
    struct stat st;
    if (stat(location_.c_str(), &st) != 0) return false;
    return st.st_ino != ino_ || st.st_dev != dev_;
  }
  const std::string& File() const noexcept override { return file_; }
  uid_t Owner() const noexcept override { return owner_; }

 private:
  bip::mapped_region region_;
  std::string location_;
  std::string file_;
  dev_t dev_;
  ino_t ino_;
  uid_t owner_;
};

// The file a location stands for: itself, or for /proc/self/fd/N (how the
// Python package opens the very file it checked) the file that link names;
// "" when that file has no name any more.
std::string FileOf(const std::string& location) {
  static constexpr const char kProcFd[] = "/proc/self/fd/";
  if (location.compare(0, sizeof(kProcFd) - 1, kProcFd) != 0) return location;
  char buf[PATH_MAX];
  const ssize_t n = readlink(location.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0 || buf[0] != '/') return "";
  std::string file(buf, static_cast<size_t>(n));
  static constexpr const char kDeleted[] = " (deleted)";
  if (file.size() > sizeof(kDeleted) - 1 && file.compare(file.size() - (sizeof(kDeleted) - 1), std::string::npos, kDeleted) == 0) return "";
  return file;
}

int ErrnoStatus(int err) noexcept {
  switch (err) {
    case ENOENT: return CONFCAST_ERR_NO_SEGMENT;
    case EACCES: case EPERM: return CONFCAST_ERR_PERMISSION;
    case ENAMETOOLONG: case EINVAL: return CONFCAST_ERR_INVALID;
    default: return CONFCAST_ERR_SYSTEM;
  }
}

struct Geometry {
  uint64_t size, capacity, stride;
};

// Checks the header of a segment whose file has file_size bytes. Every
// word through an atomic load, as layout.hpp requires of readers: the file
// may be anyone's, written while we look.
int VerifyHeader(const layout::SegmentHeader* h, uint64_t file_size, Geometry* g) noexcept {
  const uint64_t magic = detail::LoadAcquire(&h->magic);
  if (magic == 0) return CONFCAST_ERR_NO_SEGMENT;  // the publisher has not finished creating it
  if (magic != layout::kMagic) return CONFCAST_ERR_CORRUPT;
  if (detail::LoadRelaxed(&h->layout_version) != layout::kLayoutVersion ||
      detail::LoadRelaxed(&h->layout_signature) != layout::Signature()) {
    return CONFCAST_ERR_INCOMPATIBLE;
  }
  g->size = detail::LoadRelaxed(&h->segment_size);
  g->capacity = detail::LoadRelaxed(&h->slot_capacity);
  g->stride = detail::LoadRelaxed(&h->slot_stride);
  if (detail::LoadRelaxed(&h->slot_count) != layout::kSlotCount ||
      detail::LoadRelaxed(&h->slot_header_size) != sizeof(layout::SlotHeader) ||
      g->capacity < layout::kMinSlotCapacity || g->capacity > layout::kMaxSlotCapacity || g->capacity % 8 != 0 ||
      g->stride != layout::SlotStride(g->capacity) || g->size != layout::SegmentSize(g->capacity) ||
      g->size > file_size) {
    return CONFCAST_ERR_CORRUPT;
  }
  return CONFCAST_OK;
}

// Judges, verifies and maps the open descriptor fd of `location`.
int MapVerified(int fd, const std::string& location, SegmentMapping* out, std::string* why) {
  struct stat st;
  if (fstat(fd, &st) != 0) return CONFCAST_ERR_SYSTEM;
  if (!S_ISREG(st.st_mode)) return CONFCAST_ERR_CORRUPT;
  // Before reading a byte: who could have written it (segment_trust.hpp).
  // On the descriptor, not the name: it is this very file that gets mapped.
  bool owner_variable_valid = true;
  const std::optional<uid_t> extra_owner = trust::TrustedOwnerFromEnv(&owner_variable_valid);
  if (!owner_variable_valid) {
    if (why) *why = location + ": $" + trust::kOwnerVariable + " must be a numeric uid";
    return CONFCAST_ERR_INVALID;
  }
  if (std::string refusal = trust::ReaderRefusal(st, geteuid(), extra_owner); !refusal.empty()) {
    if (why) *why = location + ": bad ownership or modes: " + refusal;
    return CONFCAST_ERR_PERMISSION;
  }
  if (st.st_size == 0) return CONFCAST_ERR_NO_SEGMENT;  // created, not yet sized: publisher starting
  if (static_cast<uint64_t>(st.st_size) < layout::kHeaderSize) return CONFCAST_ERR_CORRUPT;
  // The header first, alone: its sizes say how much to map, and they are
  // only believed after they are checked against the file.
  Geometry g{};
  {
    bip::mapped_region head(FdMappable{fd}, bip::read_only, 0, layout::kHeaderSize);
    const int rc = VerifyHeader(static_cast<const layout::SegmentHeader*>(head.get_address()),
                                static_cast<uint64_t>(st.st_size), &g);
    if (rc != CONFCAST_OK) return rc;
  }
  bip::mapped_region whole(FdMappable{fd}, bip::read_only, 0, g.size);
  std::unique_ptr<SegmentMapping::Bytes> bytes(
      new FileBytes(std::move(whole), location, FileOf(location), st));
  return SegmentMapping::Adopt(std::move(bytes), out);
}

}  // namespace

SegmentMapping::SegmentMapping() noexcept = default;
SegmentMapping::SegmentMapping(SegmentMapping&& other) noexcept { *this = std::move(other); }
SegmentMapping& SegmentMapping::operator=(SegmentMapping&& other) noexcept {
  if (this != &other) {
    bytes_ = std::move(other.bytes_);
    base_ = std::exchange(other.base_, nullptr);
    for (uint32_t i = 0; i < layout::kSlotCount; ++i) slots_[i] = std::exchange(other.slots_[i], nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    last_entry_index_ = std::exchange(other.last_entry_index_, 0);
    newest_read_ = std::exchange(other.newest_read_, nullptr);
  }
  return *this;
}
SegmentMapping::~SegmentMapping() = default;

std::string SegmentMapping::ResolveName(std::string_view segment) { return ResolveSegmentName(segment); }

int SegmentMapping::Open(std::string_view segment, SegmentMapping* out, std::string* why) noexcept {
  try {
    std::string name = ResolveName(segment), location;  // the shm_open name (or ""), and the file it stands for
    if (name.find('/') == std::string::npos) {
      if (name.empty() || name.size() > NAME_MAX - 1 || name == "." || name == "..") return CONFCAST_ERR_INVALID;
      location = "/dev/shm/" + name;  // where glibc's shm_open keeps it
      name = "/" + name;
    } else if (name[0] == '/') {
      location = std::move(name);
      name.clear();
    } else {
      return CONFCAST_ERR_INVALID;
    }
    // O_NONBLOCK, O_NOCTTY: whatever someone put at the name (a FIFO, a
    // terminal) must neither hang nor adopt us before fstat refuses it.
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    const int fd = name.empty() ? ::open(location.c_str(), flags) : shm_open(name.c_str(), flags, 0);
    if (fd < 0) return ErrnoStatus(errno);
    int rc;
    try {
      rc = MapVerified(fd, location, out, why);
    } catch (const bip::interprocess_exception& e) {
      errno = e.get_native_error();
      rc = CONFCAST_ERR_SYSTEM;
    }
    const int saved = errno;
    ::close(fd);  // the mapping keeps the file; the descriptor is no longer needed
    errno = saved;
    return rc;
  } catch (...) {
    return CONFCAST_ERR_SYSTEM;
  }
}

int SegmentMapping::Adopt(std::unique_ptr<Bytes> bytes, SegmentMapping* out) noexcept {
  if (!bytes || bytes->size() < layout::kHeaderSize) return CONFCAST_ERR_CORRUPT;
  const uint8_t* base = bytes->data();
  Geometry g{};
  if (int rc = VerifyHeader(reinterpret_cast<const layout::SegmentHeader*>(base), bytes->size(), &g);
      rc != CONFCAST_OK) {
    return rc;
  }
  out->bytes_ = std::move(bytes);
  out->base_ = base;
  for (uint32_t i = 0; i < layout::kSlotCount; ++i) {
    out->slots_[i] = reinterpret_cast<const layout::SlotHeader*>(base + layout::kHeaderSize + i * g.stride);
  }
  out->capacity_ = g.capacity;
  out->last_entry_index_ = g.capacity / 8 - snapshot::kEntryWords;
  return CONFCAST_OK;
}

bool SegmentMapping::NameMovedToAnotherSegment() const noexcept { return bytes_ && bytes_->NameMoved(); }

std::string SegmentMapping::file() const {
  return bytes_ ? bytes_->File() : std::string();
}
uid_t SegmentMapping::owner() const noexcept { return bytes_ ? bytes_->Owner() : 0; }

}  // namespace confcast
