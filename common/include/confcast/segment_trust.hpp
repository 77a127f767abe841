// confcast/segment_trust.hpp - who may have written a segment, and how to say
// so when the answer is "someone who should not have".
//
// The segment decides what every worker does (which endpoint it sends its
// prompts and API key to), and /dev/shm is shared by every local user. So
// nothing is trusted for being at a name: the publisher only writes a file
// it owns and nobody else can write, and a reader only maps a file that
// nobody but a trusted owner can have written. The rules are OpenSSH's
// StrictModes applied to a shared-memory segment.
//
// Threading: pure functions of a struct stat; TrustedOwnerFromEnv() reads the
// environment (call it at open, not on a hot path).
#ifndef CONFCAST_SEGMENT_TRUST_HPP_
#define CONFCAST_SEGMENT_TRUST_HPP_

#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace confcast::trust {

// Names the variable that lets readers accept one more owner: a worker that
// runs as another user than the publisher sets it to the publisher's uid.
inline constexpr const char* kOwnerVariable = "CONFCAST_SEGMENT_OWNER";

// Bits that let someone other than the owner write the file.
inline constexpr mode_t kForeignWriteBits = S_IWGRP | S_IWOTH;

// "uid 65534 (nobody)", or "uid 1234" when the user database has no name.
inline std::string DescribeUid(uid_t uid) {
  std::string out = "uid " + std::to_string(uid);
  char buf[1024];
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr && found->pw_name != nullptr) {
    out += " (";
    out += found->pw_name;
    out += ")";
  }
  return out;
}

// "owned by uid 65534 (nobody), mode 0666"
inline std::string DescribeOwnerAndMode(const struct stat& st) {
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "owned by " + DescribeUid(st.st_uid) + ", mode " + mode;
}

// The uid in $CONFCAST_SEGMENT_OWNER: nullopt when unset or empty; *valid is
// false when it is set to something that is not a plain decimal uid (the
// caller refuses to guess what was meant).
inline std::optional<uid_t> TrustedOwnerFromEnv(bool* valid) {
  *valid = true;
  const char* text = std::getenv(kOwnerVariable);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || *text < '0' || *text > '9' || value >= static_cast<uid_t>(-1)) {
    *valid = false;
    return std::nullopt;
  }
  return static_cast<uid_t>(value);
}

// Why a reader must not map this file, or "" when it may. Trusted owners are
// root, the reader's effective user and $CONFCAST_SEGMENT_OWNER; nobody but
// the owner may be able to write.
inline std::string ReaderRefusal(const struct stat& st, uid_t reader_euid, std::optional<uid_t> extra_owner) {
  const bool owner_trusted = st.st_uid == 0 || st.st_uid == reader_euid || (extra_owner && st.st_uid == *extra_owner);
  if (owner_trusted && (st.st_mode & kForeignWriteBits) == 0) return "";
  std::string why = DescribeOwnerAndMode(st) + "; ";
  if ((st.st_mode & kForeignWriteBits) != 0) {
    why += "group or other users can write it, so anyone could change what workers read";
  } else {
    why += "readers accept a segment owned by root, by " + DescribeUid(reader_euid) + " (this process's user)";
    if (extra_owner) why += " or by " + DescribeUid(*extra_owner) + " ($" + kOwnerVariable + ")";
    why += "; set $" + std::string(kOwnerVariable) + " to the publisher's uid if it runs as another user";
  }
  return why;
}

// Why the publisher must not write into (or lock through) this file, or ""
// when it may: it must be a regular file of the publisher's own user that
// nobody else can write. `no_foreign_access` also forbids group/other read
// (the lock file: whoever can open it can hold its lock).
inline std::string PublisherRefusal(const struct stat& st, uid_t publisher_euid, bool no_foreign_access) {
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  const mode_t forbidden = no_foreign_access ? mode_t{S_IRWXG | S_IRWXO} : kForeignWriteBits;
  if (st.st_uid == publisher_euid && (st.st_mode & forbidden) == 0) return "";
  std::string why = DescribeOwnerAndMode(st) + "; ";
  if (st.st_uid != publisher_euid) {
    why += "the publisher (" + DescribeUid(publisher_euid) + ") only uses a file it owns";
  } else if (no_foreign_access) {
    why += "only its owner may be able to open it";
  } else {
    why += "group or other users can write it";
  }
  return why;
}

}  // namespace confcast::trust

#endif  // CONFCAST_SEGMENT_TRUST_HPP_
