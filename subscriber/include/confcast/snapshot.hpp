// confcast/snapshot.hpp - a pinned version: a private copy of one published
// snapshot, to read for the length of a request while the publisher moves on.
//
// Subscriber::Pin() copies the active slot's snapshot bytes once (inside one
// read section); after that every read here is plain memory with the same
// bounds-checked lookup as a live read (snapshot_format.hpp), so a pinned
// copy of a corrupt segment answers CONFCAST_ERR_CORRUPT, never reads out
// of bounds, and answers exactly what the live read of those bytes did.
//
// Threading: immutable. Copies share the bytes (reference counted); share
// and copy freely between threads. string_views point into the copy and
// stay valid while any copy of the Snapshot lives.
#ifndef CONFCAST_SNAPSHOT_HPP_
#define CONFCAST_SNAPSHOT_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "confcast/confcast.h"
#include "confcast/lookup.hpp"
#include "confcast/snapshot_format.hpp"
#include "confcast/status.hpp"

namespace confcast {

class Snapshot {
 public:
  Snapshot() = default;
  uint64_t version() const noexcept { return version_; }
  int64_t published_unix_ns() const noexcept { return published_unix_ns_; }
  std::string sha256_hex() const;
  bool empty() const noexcept { return version_ == 0; }

  int Get(std::string_view path, int64_t* out) const noexcept { return Typed(path, out); }
  int Get(std::string_view path, double* out) const noexcept { return Typed(path, out); }
  int Get(std::string_view path, bool* out) const noexcept { return Typed(path, out); }
  // A view into this snapshot's own copy: valid as long as the Snapshot lives.
  int Get(std::string_view path, std::string_view* out) const noexcept {
    snapshot::Found f;
    if (int rc = Find(path, &f); rc != CONFCAST_OK) return rc;
    if (f.type != snapshot::Type::kString) return CONFCAST_ERR_TYPE;
    uint64_t off;
    uint32_t n;
    if (!MakeView().StringSpan(f.value, &off, &n)) return CONFCAST_ERR_CORRUPT;
    *out = std::string_view(reinterpret_cast<const char*>(Bytes()) + off, n);
    return CONFCAST_OK;
  }
  // The JSON of the value or subtree at path ("" = the whole config).
  int GetJson(std::string_view path, std::string_view* out) const noexcept {
    snapshot::Found f;
    if (int rc = Find(path, &f); rc != CONFCAST_OK) return rc;
    uint64_t off;
    uint32_t n;
    if (!MakeView().JsonSpan(f.entry_off, &off, &n)) return CONFCAST_ERR_CORRUPT;
    *out = std::string_view(reinterpret_cast<const char*>(Bytes()) + off, n);
    return CONFCAST_OK;
  }
  // 1 when the value at path is a secret, 0 when not, else CONFCAST_ERR_*
  // (see Subscriber::IsSecret).
  int IsSecret(std::string_view path) const noexcept {
    snapshot::Found f;
    if (int rc = Find(path, &f); rc != CONFCAST_OK) return rc;
    return MakeView().SecretAt(f.entry_off) ? 1 : 0;
  }
  // Whether path exists, and its type.
  std::optional<snapshot::Type> TypeOf(std::string_view path) const noexcept {
    snapshot::Found f;
    if (Find(path, &f) != CONFCAST_OK) return std::nullopt;
    return f.type;
  }

  // Throwing conveniences.
  int64_t GetInt(std::string_view path) const { return Must<int64_t>(path); }
  double GetDouble(std::string_view path) const { return Must<double>(path); }
  bool GetBool(std::string_view path) const { return Must<bool>(path); }
  std::string_view GetString(std::string_view path) const { return Must<std::string_view>(path); }
  std::string_view Json() const {
    std::string_view out;
    if (int rc = GetJson("", &out); rc != CONFCAST_OK) throw Error(rc, "snapshot json");
    return out;
  }

 private:
  friend class Subscriber;  // Pin() fills it
  using View = snapshot::View<snapshot::PrivateMemory>;

  const uint8_t* Bytes() const noexcept { return reinterpret_cast<const uint8_t*>(words_.get()); }
  View MakeView() const noexcept { return View(Bytes(), n_words_ * 8); }
  // The entry of path; the header is re-read per lookup because a View is
  // a few words and the copy is private (no race to fear).
  int Find(std::string_view path, snapshot::Found* f) const noexcept {
    if (empty()) return CONFCAST_ERR_EMPTY;
    if (path.size() > snapshot::kMaxPathBytes) return CONFCAST_ERR_NOT_FOUND;
    View view = MakeView();
    if (!view.LoadHeader()) return CONFCAST_ERR_CORRUPT;
    switch (view.Find(path.data(), path.size(), snapshot::PathHash(path.data(), path.size()), f)) {
      case snapshot::LookupStatus::kFound: return CONFCAST_OK;
      case snapshot::LookupStatus::kNotFound: return CONFCAST_ERR_NOT_FOUND;
      default: return CONFCAST_ERR_CORRUPT;
    }
  }
  template <class T>
  int Typed(std::string_view path, T* out) const noexcept {
    snapshot::Found f;
    if (int rc = Find(path, &f); rc != CONFCAST_OK) return rc;
    return reader::Convert(f.type, f.value, out);
  }
  template <class T>
  T Must(std::string_view path) const {
    T v{};
    if (int rc = Get(path, &v); rc != CONFCAST_OK) throw Error(rc, std::string(path));
    return v;
  }

  uint64_t version_ = 0;
  int64_t published_unix_ns_ = 0;
  uint8_t sha256_[32] = {};
  std::shared_ptr<const uint64_t[]> words_;  // the slot's snapshot bytes, 8-aligned
  size_t n_words_ = 0;
};

}  // namespace confcast

#endif  // CONFCAST_SNAPSHOT_HPP_
