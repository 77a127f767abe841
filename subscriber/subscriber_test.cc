// subscriber_test.cc - the subscriber side against a real segment: the C++
// API (subscriber.hpp) and the C ABI (confcast.h, linked from libconfcast.so),
// with the publisher's own SegmentWriter and snapshot builder publishing into
// /dev/shm in the same process. Covers every getter and status code exactly
// as confcast.h documents them, Key handles, Pin, Wait, Info, concurrent
// readers, the read-only mapping, and corrupt / foreign / garbage segments.
//
// Threading: each test owns its segment; the concurrency and Wait tests start
// their own threads and join them before returning. Forked children only read
// and exit through _exit (or die of the signal the test expects).
#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace confcast {
namespace {

using nlohmann::json;
using publisher::SegmentWriter;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Test support
// ---------------------------------------------------------------------------

std::mt19937_64& Rng() {
  static std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
  return rng;
}

std::string UniqueName(const std::string& what) {
  return "cc-sub-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(Rng()() % 1000000000);
}

std::array<unsigned char, 32> Sha256(const std::string& bytes) {
  std::array<unsigned char, 32> md{};
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md.data(), &n, EVP_sha256(), nullptr);
  return md;
}

std::string Hex(const std::array<unsigned char, 32>& bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

// A directory in a tmpfs (/dev/shm) for file segments, removed at the end.
class TmpfsDir {
 public:
  TmpfsDir() {
    std::string pattern = "/dev/shm/cc-sub-dir-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp in /dev/shm failed");
    path_ = pattern;
  }
  ~TmpfsDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TmpfsDir(const TmpfsDir&) = delete;
  TmpfsDir& operator=(const TmpfsDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A segment (POSIX shm name or absolute path) with an in-process publisher.
// Removes the segment when it goes away, also after a failed assertion.
class PublishedSegment {
 public:
  explicit PublishedSegment(std::string segment, uint64_t capacity = 64 << 10)
      : segment_(std::move(segment)), capacity_(capacity) {
    OpenWriter();
  }
  PublishedSegment() : PublishedSegment(UniqueName("seg")) {}
  ~PublishedSegment() {
    writer_.reset();
    if (segment_[0] == '/') {
      ::unlink(segment_.c_str());
      ::unlink((segment_ + ".confcast-lock").c_str());
    } else {
      shm_unlink(("/" + segment_).c_str());
      shm_unlink(("/" + segment_ + ".confcast-lock").c_str());  // the publisher lock beside it
    }
  }
  PublishedSegment(const PublishedSegment&) = delete;
  PublishedSegment& operator=(const PublishedSegment&) = delete;

  const std::string& segment() const { return segment_; }
  const char* c_str() const { return segment_.c_str(); }
  SegmentWriter& writer() { return *writer_; }

  // Publishes `config` as the next version and returns that version.
  uint64_t Publish(const json& config, int64_t now_unix_ns = publisher::RealtimeNs()) {
    auto built = snapshot::BuildSnapshot(config);
    if (auto* err = std::get_if<std::string>(&built)) throw std::runtime_error("BuildSnapshot: " + *err);
    const auto& words = std::get<snapshot::BuiltSnapshot>(built).words;
    if (words.size() * 8 > writer_->capacity()) throw std::runtime_error("config larger than the test capacity");
    return writer_->Publish(words.data(), words.size(), Sha256(config.dump()), now_unix_ns);
  }

  // A publisher that exits (the segment stays) and one that starts again.
  void CloseWriter() { writer_.reset(); }
  void OpenWriter(uint64_t capacity = 0) {
    if (capacity) capacity_ = capacity;
    auto opened = SegmentWriter::Open({segment_, capacity_, 0600});
    if (auto* failure = std::get_if<SegmentWriter::Failure>(&opened)) {
      throw std::runtime_error("SegmentWriter::Open: " + failure->message);
    }
    writer_ = std::move(std::get<std::unique_ptr<SegmentWriter>>(opened));
  }

 private:
  std::string segment_;
  uint64_t capacity_;
  std::unique_ptr<SegmentWriter> writer_;
};

struct CloseHandle {
  void operator()(confcast_subscriber* s) const { confcast_close(s); }
};
using Handle = std::unique_ptr<confcast_subscriber, CloseHandle>;

Handle OpenC(const std::string& segment) {
  confcast_subscriber* raw = nullptr;
  const int rc = confcast_open(segment.c_str(), &raw);
  EXPECT_EQ(rc, CONFCAST_OK) << segment << ": " << confcast_strerror(rc);
  return Handle(raw);
}

int OpenStatus(const std::string& segment) {
  confcast_subscriber* raw = reinterpret_cast<confcast_subscriber*>(0x1);  // must be reset to NULL
  const int rc = confcast_open(segment.c_str(), &raw);
  if (rc == CONFCAST_OK) {
    confcast_close(raw);
  } else {
    EXPECT_EQ(raw, nullptr) << "confcast_open must leave *out NULL on failure";
  }
  return rc;
}

std::string CString(confcast_subscriber* s, const char* path, int* rc_out = nullptr, uint64_t* version = nullptr) {
  char buf[4096];
  size_t len = 0;
  const int rc = confcast_get_string(s, path, buf, sizeof(buf), &len, version);
  if (rc_out) *rc_out = rc;
  return rc == CONFCAST_OK ? std::string(buf, len) : std::string();
}

std::string CJson(confcast_subscriber* s, const char* path, uint64_t* version = nullptr) {
  std::string buf(1 << 16, '\0');
  size_t len = 0;
  const int rc = confcast_get_json(s, path, buf.data(), buf.size(), &len, version);
  EXPECT_EQ(rc, CONFCAST_OK) << path << ": " << confcast_strerror(rc);
  return rc == CONFCAST_OK ? buf.substr(0, len) : std::string();
}

std::string CSnapshot(confcast_subscriber* s, uint64_t* version = nullptr) {
  std::string buf(1 << 16, '\0');
  size_t len = 0;
  const int rc = confcast_snapshot_json(s, buf.data(), buf.size(), &len, version);
  EXPECT_EQ(rc, CONFCAST_OK) << confcast_strerror(rc);
  return rc == CONFCAST_OK ? buf.substr(0, len) : std::string();
}

// A forked child running `body`; its exit status is awaited on a pidfd with a
// deadline, and it is killed and reaped if the test leaves early.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = fork();
    if (pid_ == 0) {
      int code = 100;
      try {
        code = body();
      } catch (...) {
        code = 101;
      }
      _exit(code);
    }
    if (pid_ < 0) throw std::runtime_error("fork failed");
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  }
  ~Child() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
    }
    if (pidfd_ >= 0) close(pidfd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The waitpid status, or nullopt if the child did not end in time.
  std::optional<int> Wait(milliseconds timeout) {
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    }
    if (waitpid(pid_, &status_, pidfd_ >= 0 ? 0 : WNOHANG) != pid_) return std::nullopt;
    reaped_ = true;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// The system call a thread is blocked in (x86-64 number), or -1 if it runs.
long BlockedSyscall(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  if (!(in >> first) || first == "running") return -1;
  try {
    return std::stol(first);
  } catch (...) {
    return -1;
  }
}

// Polls (there is no event for it) until thread `tid` sleeps in futex(2).
bool BlockedInFutex(pid_t tid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (BlockedSyscall(tid) == SYS_futex) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

pid_t CurrentTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

const json& HolmesConfig() {
  static const json config = json::parse(R"({
    "llm": {"model": "gpt-4o", "provider": "openai", "endpoint": null, "max_retries": 3,
            "timeout_seconds": 60, "temperature": 0.7},
    "toolsets": {"kubernetes/core": {"enabled": true},
                 "prometheus/metrics": {"enabled": false, "config": {"url": "http://p:9090"}}},
    "log_level": "INFO",
    "numbers": {"big": 9007199254740993, "min": -9223372036854775808, "max": 9223372036854775807,
                "neg_double": -2.5, "zero": 0},
    "text": {"hello": "hello", "empty": "", "unicode": "caf\u00e9 \u8a2d\u5b9a \ud83d\ude80"},
    "a": {"list": [10, "two", {"x": true}], "empty_list": [], "empty_map": {}}
  })");
  return config;
}

// ---------------------------------------------------------------------------
// Typed getters, C ABI and C++
// ---------------------------------------------------------------------------

TEST(Subscriber, CTypedGettersReturnValueAndVersion) {
  PublishedSegment seg;
  const uint64_t v = seg.Publish(HolmesConfig());
  ASSERT_EQ(v, 1u);
  Handle h = OpenC(seg.segment());
  ASSERT_TRUE(h);
  EXPECT_EQ(confcast_version(h.get()), 1u);

  int64_t i = 0;
  uint64_t version = 0;
  ASSERT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, &version), CONFCAST_OK);
  EXPECT_EQ(i, 3);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_int(h.get(), "numbers.min", &i, nullptr), CONFCAST_OK);  // version may be NULL
  EXPECT_EQ(i, std::numeric_limits<int64_t>::min());
  ASSERT_EQ(confcast_get_int(h.get(), "numbers.max", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, std::numeric_limits<int64_t>::max());
  ASSERT_EQ(confcast_get_int(h.get(), "a.list.0", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 10);

  double d = 0;
  version = 0;
  ASSERT_EQ(confcast_get_double(h.get(), "llm.temperature", &d, &version), CONFCAST_OK);
  EXPECT_EQ(d, 0.7);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_double(h.get(), "numbers.neg_double", &d, nullptr), CONFCAST_OK);
  EXPECT_EQ(d, -2.5);
  // An int reads as a double too.
  ASSERT_EQ(confcast_get_double(h.get(), "llm.timeout_seconds", &d, &version), CONFCAST_OK);
  EXPECT_EQ(d, 60.0);
  ASSERT_EQ(confcast_get_double(h.get(), "numbers.big", &d, nullptr), CONFCAST_OK);
  EXPECT_EQ(d, static_cast<double>(int64_t{9007199254740993}));

  int b = -1;
  version = 0;
  ASSERT_EQ(confcast_get_bool(h.get(), "toolsets.kubernetes/core.enabled", &b, &version), CONFCAST_OK);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(version, 1u);
  ASSERT_EQ(confcast_get_bool(h.get(), "toolsets.prometheus/metrics.enabled", &b, nullptr), CONFCAST_OK);
  EXPECT_EQ(b, 0);
  ASSERT_EQ(confcast_get_bool(h.get(), "a.list.2.x", &b, nullptr), CONFCAST_OK);
  EXPECT_EQ(b, 1);

  int rc = 0;
  version = 0;
  EXPECT_EQ(CString(h.get(), "llm.model", &rc, &version), "gpt-4o");
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(CString(h.get(), "text.empty", &rc), "");
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(CString(h.get(), "text.unicode", &rc), "caf\xC3\xA9 \xE8\xA8\xAD\xE5\xAE\x9A \xF0\x9F\x9A\x80");
  EXPECT_EQ(CString(h.get(), "a.list.1", &rc), "two");

  version = 0;
  EXPECT_EQ(CJson(h.get(), "toolsets", &version), HolmesConfig()["toolsets"].dump());
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(CJson(h.get(), "llm.endpoint"), "null");
  EXPECT_EQ(CJson(h.get(), "llm.model"), "\"gpt-4o\"");
  EXPECT_EQ(CJson(h.get(), "a.empty_list"), "[]");
  EXPECT_EQ(CJson(h.get(), "a.empty_map"), "{}");
  EXPECT_EQ(CJson(h.get(), ""), HolmesConfig().dump());

  version = 0;
  const std::string whole = CSnapshot(h.get(), &version);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(json::parse(whole), HolmesConfig());
  EXPECT_EQ(whole, HolmesConfig().dump());
}

TEST(Subscriber, CppGettersMatchTheCAbi) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Subscriber sub(seg.segment());
  EXPECT_EQ(sub.version(), 1u);
  EXPECT_EQ(sub.GetInt("llm.max_retries"), 3);
  EXPECT_EQ(sub.GetDouble("llm.temperature"), 0.7);
  EXPECT_EQ(sub.GetDouble("llm.timeout_seconds"), 60.0);
  EXPECT_TRUE(sub.GetBool("toolsets.kubernetes/core.enabled"));
  EXPECT_EQ(sub.GetString("llm.model"), "gpt-4o");
  EXPECT_EQ(sub.GetString("text.empty"), "");
  EXPECT_EQ(sub.GetJson("toolsets"), HolmesConfig()["toolsets"].dump());
  EXPECT_EQ(sub.GetJson(""), HolmesConfig().dump());
  // A long string outgrows GrowRead's first buffer.
  json big = HolmesConfig();
  big["text"]["long"] = std::string(5000, 'x');
  seg.Publish(big);
  EXPECT_EQ(sub.GetString("text.long"), std::string(5000, 'x'));

  int64_t i = 0;
  uint64_t version = 0;
  EXPECT_EQ(sub.Get("llm.max_retries", &i, &version), CONFCAST_OK);
  EXPECT_EQ(version, 2u);
  double d = 0;
  EXPECT_EQ(sub.Get("llm.max_retries", &d), CONFCAST_OK);
  EXPECT_EQ(d, 3.0);
  bool b = true;
  EXPECT_EQ(sub.Get("toolsets.prometheus/metrics.enabled", &b), CONFCAST_OK);
  EXPECT_FALSE(b);

  try {
    sub.GetInt("llm.model");
    ADD_FAILURE() << "GetInt on a string must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_TYPE);
    EXPECT_NE(std::string(e.what()).find("llm.model"), std::string::npos) << e.what();
  }
  try {
    sub.GetString("llm.nope");
    ADD_FAILURE() << "GetString on a missing path must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NOT_FOUND);
  }
}

TEST(Subscriber, TypeMismatchesAndMissingPaths) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Handle h = OpenC(seg.segment());
  int64_t i = 77;
  double d = 7.5;
  int b = 7;
  char buf[64] = "untouched";
  size_t len = 0;

  EXPECT_EQ(confcast_get_int(h.get(), "llm.model", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "llm.temperature", &i, nullptr), CONFCAST_ERR_TYPE);  // no silent truncation
  EXPECT_EQ(confcast_get_int(h.get(), "llm", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "a.list", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "llm.endpoint", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_int(h.get(), "toolsets.kubernetes/core.enabled", &i, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(i, 77) << "a failed getter leaves *out alone";
  EXPECT_EQ(confcast_get_double(h.get(), "llm.model", &d, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_double(h.get(), "toolsets.kubernetes/core.enabled", &d, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(d, 7.5);
  EXPECT_EQ(confcast_get_bool(h.get(), "llm.max_retries", &b, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_bool(h.get(), "llm.model", &b, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(b, 7);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.max_retries", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.endpoint", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_EQ(confcast_get_string(h.get(), "toolsets", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
  EXPECT_STREQ(buf, "untouched");

  for (const char* missing : {"llm.modell", "llm.model.x", "nope", "llm.", ".llm", "a.list.3", "a.list.-1",
                              "toolsets.kubernetes", "LLM.model", "llm..model"}) {
    uint64_t version = 0;
    EXPECT_EQ(confcast_get_int(h.get(), missing, &i, &version), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_double(h.get(), missing, &d, nullptr), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_bool(h.get(), missing, &b, nullptr), CONFCAST_ERR_NOT_FOUND) << missing;
    EXPECT_EQ(confcast_get_string(h.get(), missing, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_NOT_FOUND)
        << missing;
    EXPECT_EQ(confcast_get_json(h.get(), missing, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_NOT_FOUND)
        << missing;
  }
  // A path longer than any the format can hold is simply not there.
  const std::string huge(snapshot::kMaxPathBytes + 10, 'a');
  EXPECT_EQ(confcast_get_int(h.get(), huge.c_str(), &i, nullptr), CONFCAST_ERR_NOT_FOUND);
}

TEST(Subscriber, EmptySegmentGivesEmpty) {
  PublishedSegment seg;  // created, nothing published
  Handle h = OpenC(seg.segment());
  ASSERT_TRUE(h);
  EXPECT_EQ(confcast_version(h.get()), 0u);
  int64_t i;
  double d;
  int b;
  char buf[16];
  size_t len = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_double(h.get(), "llm.temperature", &d, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_bool(h.get(), "x", &b, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_string(h.get(), "llm.model", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_get_json(h.get(), "", buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  EXPECT_EQ(confcast_snapshot_json(h.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_EMPTY);
  uint64_t seen = 99;
  EXPECT_EQ(confcast_wait(h.get(), 0, 20, &seen), CONFCAST_ERR_TIMEOUT);
  EXPECT_EQ(seen, 0u);
  confcast_info info;
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.version, 0u);
  EXPECT_EQ(info.published_unix_ns, 0);
  EXPECT_STREQ(info.sha256_hex, "");

  Subscriber sub(seg.segment());
  Key key("llm.max_retries");
  EXPECT_EQ(sub.Get(key, &i), CONFCAST_ERR_EMPTY);
  Snapshot snap;
  EXPECT_EQ(sub.TryPin(&snap), CONFCAST_ERR_EMPTY);
  EXPECT_TRUE(snap.empty());
  EXPECT_EQ(snap.Get("llm.max_retries", &i), CONFCAST_ERR_EMPTY);
  try {
    sub.Pin();
    ADD_FAILURE() << "Pin of an empty segment must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_EMPTY);
  }
  // Once something is published, the same handles read it.
  seg.Publish(HolmesConfig());
  EXPECT_EQ(confcast_get_int(h.get(), "llm.max_retries", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(sub.GetInt(key), 3);
}

TEST(Subscriber, OpenErrors) {
  const std::string missing = UniqueName("missing");
  EXPECT_EQ(OpenStatus(missing), CONFCAST_ERR_NO_SEGMENT);
  EXPECT_EQ(OpenStatus("/dev/shm/" + missing), CONFCAST_ERR_NO_SEGMENT);
  EXPECT_EQ(OpenStatus("/nonexistent-dir-confcast/" + missing), CONFCAST_ERR_NO_SEGMENT);
  try {
    Subscriber sub(missing);
    ADD_FAILURE() << "opening a missing segment must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), CONFCAST_ERR_NO_SEGMENT);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // Bad names: a relative path, dot names, a name longer than NAME_MAX.
  EXPECT_EQ(OpenStatus("a/b"), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus("relative/dir/seg"), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus("."), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus(".."), CONFCAST_ERR_INVALID);
  EXPECT_EQ(OpenStatus(std::string(NAME_MAX + 5, 'n')), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_open("x", nullptr), CONFCAST_ERR_INVALID);
  // A directory is not a segment.
  TmpfsDir dir;
  fs::create_directory(dir / "d");
  EXPECT_EQ(OpenStatus(dir / "d"), CONFCAST_ERR_CORRUPT);
}

TEST(Subscriber, NullSegmentMeansEnvironment) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  const char* old = getenv("CONFCAST_SEGMENT");
  const std::string saved = old ? old : "";
  setenv("CONFCAST_SEGMENT", seg.c_str(), 1);
  confcast_subscriber* raw = nullptr;
  const int rc = confcast_open(nullptr, &raw);
  Handle h(raw);
  if (old) setenv("CONFCAST_SEGMENT", saved.c_str(), 1); else unsetenv("CONFCAST_SEGMENT");
  ASSERT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(CString(h.get(), "llm.model"), "gpt-4o");
  EXPECT_EQ(Subscriber::ResolveName({}), old ? saved : std::string("holmesgpt-config"));
}

TEST(Subscriber, InvalidArguments) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  Handle h = OpenC(seg.segment());
  confcast_subscriber* s = h.get();
  int64_t i;
  double d;
  int b;
  char buf[16];
  size_t len;
  uint64_t v;
  confcast_info info;

  EXPECT_EQ(confcast_get_int(nullptr, "llm.max_retries", &i, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int(s, nullptr, &i, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int(s, "llm.max_retries", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(nullptr, "llm.temperature", &d, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(s, nullptr, &d, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double(s, "llm.temperature", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(nullptr, "a.list.2.x", &b, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(s, nullptr, &b, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool(s, "a.list.2.x", nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(nullptr, "llm.model", buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, "llm.model", buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string(s, "llm.model", nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(nullptr, "llm", buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, "llm", buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_json(s, "llm", nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(nullptr, buf, sizeof(buf), &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(s, buf, sizeof(buf), nullptr, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_snapshot_json(s, nullptr, 5, &len, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_wait(nullptr, 0, 0, &v), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_info_get(nullptr, &info), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_info_get(s, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_version(nullptr), 0u);
  confcast_close(nullptr);  // ignored
}

// ---------------------------------------------------------------------------
// Buffer rules: *len is the length without the NUL; NUL-terminated when
// cap > *len; TRUNCATED when cap < *len, buf then holding cap-1 bytes + NUL.
// ---------------------------------------------------------------------------

using BufferGetter = std::function<int(char* buf, size_t cap, size_t* len)>;

void ExpectBufferRules(const BufferGetter& get, const std::string& value) {
  SCOPED_TRACE("value '" + value + "'");
  const size_t n = value.size();
  ASSERT_GE(n, 3u);
  std::vector<char> buf(n + 16, 'X');
  size_t len = 12345;

  // cap 0, buf NULL: only the length.
  EXPECT_EQ(get(nullptr, 0, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  // cap 0 with a buffer: nothing written.
  len = 0;
  EXPECT_EQ(get(buf.data(), 0, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[0], 'X');
  // cap 1: just the NUL.
  EXPECT_EQ(get(buf.data(), 1, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[0], '\0');
  EXPECT_EQ(buf[1], 'X');
  // cap 3: two bytes and a NUL.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), 3, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(len, n);
  EXPECT_EQ(std::string(buf.data(), 2), value.substr(0, 2));
  EXPECT_EQ(buf[2], '\0');
  EXPECT_EQ(buf[3], 'X');
  // cap len-1: still truncated.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n - 1, &len), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(std::string(buf.data(), n - 2), value.substr(0, n - 2));
  EXPECT_EQ(buf[n - 2], '\0');
  EXPECT_EQ(buf[n - 1], 'X');
  // cap == len: every byte fits, no room for the NUL, and none is written.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n, &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_EQ(std::string(buf.data(), n), value);
  EXPECT_EQ(buf[n], 'X') << "must not write past cap";
  // cap == len + 1: the value and its NUL.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), n + 1, &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_STREQ(buf.data(), value.c_str());
  EXPECT_EQ(buf[n + 1], 'X');
  // A roomy buffer: the NUL right after, nothing beyond touched.
  std::fill(buf.begin(), buf.end(), 'X');
  EXPECT_EQ(get(buf.data(), buf.size(), &len), CONFCAST_OK);
  EXPECT_EQ(len, n);
  EXPECT_EQ(buf[n], '\0');
  EXPECT_EQ(buf[n + 1], 'X');
}

TEST(Subscriber, TruncationRulesForStringsJsonAndSnapshot) {
  PublishedSegment seg;
  const json config = {{"s", "hello world, a value of some length"}, {"m", {{"k", "v"}, {"n", 1}}}, {"e", ""}};
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  confcast_subscriber* s = h.get();
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_string(s, "s", b, c, l, nullptr); },
                    config["s"].get<std::string>());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_json(s, "m", b, c, l, nullptr); },
                    config["m"].dump());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_get_json(s, "", b, c, l, nullptr); },
                    config.dump());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return confcast_snapshot_json(s, b, c, l, nullptr); },
                    config.dump());
  // The C++ raw-buffer getters follow the same rules.
  Subscriber sub(seg.segment());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return sub.GetString("s", b, c, l); },
                    config["s"].get<std::string>());
  ExpectBufferRules([&](char* b, size_t c, size_t* l) { return sub.SnapshotJson(b, c, l); }, config.dump());

  // An empty string fits any buffer, even cap 0 with no buffer at all.
  size_t len = 99;
  EXPECT_EQ(confcast_get_string(s, "e", nullptr, 0, &len, nullptr), CONFCAST_OK);
  EXPECT_EQ(len, 0u);
  char one[2] = {'X', 'X'};
  EXPECT_EQ(confcast_get_string(s, "e", one, 1, &len, nullptr), CONFCAST_OK);
  EXPECT_EQ(one[0], '\0');
  EXPECT_EQ(one[1], 'X');
  // A truncated read still reports the version it read.
  uint64_t version = 0;
  char small[4];
  EXPECT_EQ(confcast_get_string(s, "s", small, sizeof(small), &len, &version), CONFCAST_ERR_TRUNCATED);
  EXPECT_EQ(version, 1u);
}

// ---------------------------------------------------------------------------
// Key handles
// ---------------------------------------------------------------------------

TEST(Subscriber, KeyFollowsValueAcrossVersions) {
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Key n("group.n"), d("group.d"), flag("group.flag");
  for (int64_t i = 1; i <= 20; ++i) {
    json config = {{"group", {{"n", i * 10}, {"d", i + 0.25}, {"flag", i % 2 == 0}}}};
    // Shift the entries around so the cached place moves from version to version.
    for (int64_t k = 0; k < i % 5; ++k) config["filler_" + std::to_string(k)] = k;
    const uint64_t v = seg.Publish(config);
    for (int rep = 0; rep < 3; ++rep) {  // cold, then warm cache
      int64_t got = 0;
      uint64_t version = 0;
      ASSERT_EQ(sub.Get(n, &got, &version), CONFCAST_OK);
      EXPECT_EQ(got, i * 10);
      EXPECT_EQ(version, v);
      double dd = 0;
      ASSERT_EQ(sub.Get(d, &dd, &version), CONFCAST_OK);
      EXPECT_EQ(dd, i + 0.25);
      EXPECT_EQ(sub.GetDouble(n), static_cast<double>(i * 10));  // int read as double through a Key
      EXPECT_EQ(sub.GetBool(flag), i % 2 == 0);
    }
  }
  EXPECT_EQ(n.path(), "group.n");
  // A Key of the wrong type reports TYPE, warm or cold.
  bool b;
  EXPECT_EQ(sub.Get(n, &b), CONFCAST_ERR_TYPE);
  EXPECT_EQ(sub.Get(n, &b), CONFCAST_ERR_TYPE);
  int64_t i64;
  EXPECT_EQ(sub.Get(flag, &i64), CONFCAST_ERR_TYPE);
}

TEST(Subscriber, KeyWhosePathDisappearsGivesNotFound) {
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Key key("feature.limit");
  seg.Publish({{"feature", {{"limit", 5}}}, {"other", 1}});
  EXPECT_EQ(sub.GetInt(key), 5);
  EXPECT_EQ(sub.GetInt(key), 5);  // warm
  uint64_t version = 0;
  int64_t value = -1;
  const uint64_t v2 = seg.Publish({{"feature", {{"other_limit", 5}}}, {"other", 1}});
  EXPECT_EQ(sub.Get(key, &value, &version), CONFCAST_ERR_NOT_FOUND);
  EXPECT_EQ(version, v2);
  EXPECT_EQ(value, -1);
  EXPECT_EQ(sub.Get(key, &value), CONFCAST_ERR_NOT_FOUND);  // twice: nothing stale was cached
  seg.Publish({{"feature", {{"limit", 9}}}});
  EXPECT_EQ(sub.GetInt(key), 9);
  seg.Publish({{"feature", "now a string"}});
  EXPECT_EQ(sub.Get(key, &value), CONFCAST_ERR_NOT_FOUND);
}

// By-path reads remember where a path was found (a small per-handle cache);
// they must follow a path that moves, disappears, changes type, and two paths
// that share a cache cell.
TEST(Subscriber, ByPathReadsFollowMovesAndSharedCacheCells) {
  // Two paths that share a cell of the handle's path cache (which is chosen
  // by a fingerprint of the path): they evict each other on every read.
  const std::string first = "p.0";
  reader::PathCache cache;
  std::string second;
  for (int i = 1; second.empty(); ++i) {
    const std::string candidate = "p." + std::to_string(i);
    if (&cache.CellFor(candidate) == &cache.CellFor(first)) second = candidate;
  }
  PublishedSegment seg;
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  for (int64_t v = 1; v <= 30; ++v) {
    json config = {{"p", json::object()}};
    for (int64_t k = 0; k < v % 6; ++k) config["filler"][std::to_string(k)] = k;  // entries move
    config["p"][first.substr(2)] = v;
    if (v % 5 != 0) config["p"][second.substr(2)] = -v;  // every fifth version it is gone
    if (v % 7 == 0) config["p"][first.substr(2)] = "a string now";
    ASSERT_EQ(seg.Publish(config), static_cast<uint64_t>(v));
    for (int rep = 0; rep < 3; ++rep) {
      int64_t got = 0;
      uint64_t version = 0;
      const int rc1 = confcast_get_int(h.get(), first.c_str(), &got, &version);
      if (v % 7 == 0) {
        EXPECT_EQ(rc1, CONFCAST_ERR_TYPE) << v;
        EXPECT_EQ(CString(h.get(), first.c_str()), "a string now");
      } else {
        EXPECT_EQ(rc1, CONFCAST_OK) << v;
        EXPECT_EQ(got, v);
      }
      EXPECT_EQ(version, static_cast<uint64_t>(v));
      // The same path through each handle (each has its own cache).
      for (int handle = 0; handle < 2; ++handle) {
        got = 0;
        const int rc2 = handle == 0 ? sub.Get(second, &got, &version)
                                    : confcast_get_int(h.get(), second.c_str(), &got, &version);
        if (v % 5 == 0) {
          EXPECT_EQ(rc2, CONFCAST_ERR_NOT_FOUND) << v;
        } else {
          EXPECT_EQ(rc2, CONFCAST_OK) << v;
          EXPECT_EQ(got, -v);
        }
      }
      if (v % 7 != 0) {
        EXPECT_EQ(sub.GetInt(first), v);
      }
      EXPECT_EQ(confcast_get_int(h.get(), "p.nope", &got, nullptr), CONFCAST_ERR_NOT_FOUND);
    }
  }
}

// A caller that reuses one buffer for many paths must always get the value
// of the path the buffer holds now (the handle's cache must not be fooled): shorter, longer, a prefix, an extension, one
// byte changed, missing, and lengths that are a whole number of words (the
// NUL then lies in the next word).
TEST(Subscriber, CAbiPathsInAReusedBufferAreComparedEveryRead) {
  const std::vector<std::string> paths = {"a",         "ab",        "abc.defg",         "abc.defgh",
                                          "abcdefg.",  "abcdefg.h", "sixteen.bytes.xx", "sixteen.bytes.xy",
                                          "sixteen.bytes.x", "a.path.that.is.longer.than.thirty.two.bytes"};
  const std::vector<std::string> missing = {"abc.def", "abc.defghi", "sixteen.bytes.xxx", "sixteen.bytes.",
                                            "a.path.that.is.longer.than.thirty.two.byte"};
  json config = json::object();
  for (size_t i = 0; i < paths.size(); ++i) config[paths[i]] = static_cast<int64_t>(100 + i);
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish(config), 1u);
  Handle h = OpenC(seg.segment());
  char buf[64];
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    const bool want_missing = rng() % 4 == 0;
    const size_t i = want_missing ? rng() % missing.size() : rng() % paths.size();
    const std::string& path = want_missing ? missing[i] : paths[i];
    std::memset(buf, 'x', sizeof(buf));  // the bytes after the NUL are never part of the path
    std::memcpy(buf, path.c_str(), path.size() + 1);
    int64_t got = -1;
    const int rc = confcast_get_int(h.get(), buf, &got, nullptr);
    if (want_missing) {
      ASSERT_EQ(rc, CONFCAST_ERR_NOT_FOUND) << "'" << path << "' round " << round;
    } else {
      ASSERT_EQ(rc, CONFCAST_OK) << "'" << path << "' round " << round;
      ASSERT_EQ(got, static_cast<int64_t>(100 + i)) << "'" << path << "' round " << round;
    }
  }
}

// A by-path read reads the caller's path up to its NUL and never beyond:
// with the NUL on a page's last byte and the next page PROT_NONE, no read
// faults, whatever the path's length, cold or warm, for every getter.
TEST(Subscriber, CAbiPathAtTheEndOfAPageNeverReadsPastIt) {
  const std::vector<std::string> paths = {"k", "key.abc", "key.abcd", "key.abcdefghijk", "key.abcdefghijkl"};
  json config = json::object();
  for (size_t i = 0; i < paths.size(); ++i) config[paths[i]] = static_cast<int64_t>(i);
  PublishedSegment seg;
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  const long page = sysconf(_SC_PAGESIZE);
  auto* area = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  ASSERT_EQ(mprotect(area + page, page, PROT_NONE), 0);  // a read past the first page faults
  for (size_t i = 0; i < paths.size(); ++i) {
    for (size_t slack = 0; slack < 10; ++slack) {  // NUL at the page's last byte, then 1..9 bytes earlier
      char* s = area + page - (paths[i].size() + 1) - slack;
      std::memcpy(s, paths[i].c_str(), paths[i].size() + 1);
      for (int rep = 0; rep < 3; ++rep) {  // the first read learns the place, the next ones use it
        int64_t got = -1;
        ASSERT_EQ(confcast_get_int(h.get(), s, &got, nullptr), CONFCAST_OK) << paths[i] << " slack " << slack;
        ASSERT_EQ(got, static_cast<int64_t>(i));
        double d = 0;
        ASSERT_EQ(confcast_get_double(h.get(), s, &d, nullptr), CONFCAST_OK);
        int b = 0;
        ASSERT_EQ(confcast_get_bool(h.get(), s, &b, nullptr), CONFCAST_ERR_TYPE);
        char buf[32];
        size_t len = 0;
        ASSERT_EQ(confcast_get_string(h.get(), s, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
        ASSERT_EQ(confcast_get_json(h.get(), s, buf, sizeof(buf), &len, nullptr), CONFCAST_OK);
        confcast_key* key = nullptr;
        ASSERT_EQ(confcast_key_new(s, &key), CONFCAST_OK);
        ASSERT_EQ(confcast_get_int_key(h.get(), key, &got, nullptr), CONFCAST_OK);
        confcast_key_free(key);
      }
    }
  }
  munmap(area, 2 * page);
}

// Two threads read different paths through one handle, whose path cache
// they share (64 paths over 64 cells: many share a cell), and each always
// gets its own path's value.
TEST(Subscriber, CAbiPathCacheSharedByThreadsNeverMixesPaths) {
  PublishedSegment seg;
  json config = json::object();
  for (int i = 0; i < 64; ++i) config["k" + std::to_string(i)] = i;
  seg.Publish(config);
  Handle h = OpenC(seg.segment());
  std::atomic<int> wrong{0};
  auto reader = [&](int parity) {
    char buf[16];
    for (int round = 0; round < 20000; ++round) {
      const int i = (round * 2 + parity) % 64;
      std::snprintf(buf, sizeof(buf), "k%d", i);
      int64_t got = -1;
      if (confcast_get_int(h.get(), buf, &got, nullptr) != CONFCAST_OK || got != i) wrong.fetch_add(1);
    }
  };
  std::thread t0(reader, 0), t1(reader, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Subscriber, OneKeyServesTwoSegments) {
  PublishedSegment first, second;
  // Same version numbers and the same layout in both, different values:
  // the cached place is valid in both, only the mapping differs.
  first.Publish({{"x", 1}, {"y", "a"}});
  second.Publish({{"x", 2}, {"y", "b"}});
  Subscriber a(first.segment()), b(second.segment());
  Key key("x");
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.GetInt(key), 1) << i;
    ASSERT_EQ(b.GetInt(key), 2) << i;
  }
  // Different layouts (the key lives elsewhere in the second segment).
  json shifted = {{"x", 3}};
  for (int k = 0; k < 30; ++k) shifted["a" + std::to_string(k)] = k;
  second.Publish(shifted);
  first.Publish({{"x", 4}});
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(a.GetInt(key), 4) << i;
    ASSERT_EQ(b.GetInt(key), 3) << i;
  }
  // A copy of a Key is a Key of the same path.
  Key copy = key;
  EXPECT_EQ(b.GetInt(copy), 3);
  Key assigned("y");
  assigned = key;
  EXPECT_EQ(a.GetInt(assigned), 4);
}

// ---------------------------------------------------------------------------
// Pin
// ---------------------------------------------------------------------------

TEST(Subscriber, PinnedSnapshotKeepsItsVersion) {
  PublishedSegment seg;
  const json v1 = {{"n", 1}, {"s", "one"}, {"d", 1.5}, {"b", true}, {"m", {{"k", "v1"}}}};
  const int64_t published_at = 1700000000123456789;
  seg.Publish(v1, published_at);
  Subscriber sub(seg.segment());
  const Snapshot snap = sub.Pin();
  EXPECT_EQ(snap.version(), 1u);
  EXPECT_EQ(snap.published_unix_ns(), published_at);
  EXPECT_EQ(snap.sha256_hex(), Hex(Sha256(v1.dump())));

  for (int i = 2; i <= 10; ++i) {
    seg.Publish({{"n", i}, {"s", "later"}, {"d", i + 0.5}, {"b", false}, {"m", {{"k", "vN"}}}});
  }
  EXPECT_EQ(sub.GetInt("n"), 10);
  EXPECT_EQ(snap.version(), 1u);
  EXPECT_EQ(snap.GetInt("n"), 1);
  EXPECT_EQ(snap.GetString("s"), "one");
  EXPECT_EQ(snap.GetDouble("d"), 1.5);
  EXPECT_EQ(snap.GetDouble("n"), 1.0);
  EXPECT_TRUE(snap.GetBool("b"));
  EXPECT_EQ(snap.Json(), v1.dump());
  std::string_view sub_json;
  EXPECT_EQ(snap.GetJson("m", &sub_json), CONFCAST_OK);
  EXPECT_EQ(sub_json, R"({"k":"v1"})");
  EXPECT_EQ(snap.TypeOf("m"), snapshot::Type::kMap);
  EXPECT_EQ(snap.TypeOf("nope"), std::nullopt);
  int64_t i;
  EXPECT_EQ(snap.Get("s", &i), CONFCAST_ERR_TYPE);
  EXPECT_EQ(snap.Get("nope", &i), CONFCAST_ERR_NOT_FOUND);

  // The pinned copy outlives the subscriber and the segment.
  std::string_view kept = snap.GetString("s");
  const Snapshot copy = snap;
  {
    Subscriber gone = std::move(sub);
  }
  seg.CloseWriter();
  EXPECT_EQ(kept, "one");
  EXPECT_EQ(copy.GetInt("n"), 1);

  const Snapshot empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.Get("n", &i), CONFCAST_ERR_EMPTY);
}

// ---------------------------------------------------------------------------
// Wait
// ---------------------------------------------------------------------------

TEST(Subscriber, WaitReturnsAtOnceWhenAlreadyNewer) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  seg.Publish({{"n", 2}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  const auto start = Clock::now();
  uint64_t seen = 0;
  EXPECT_EQ(sub.Wait(0, 10000, &seen), CONFCAST_OK);
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(sub.Wait(1, -1, &seen), CONFCAST_OK);  // even with no timeout at all
  EXPECT_EQ(confcast_wait(h.get(), 1, 10000, &seen), CONFCAST_OK);
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(confcast_wait(h.get(), 0, 0, nullptr), CONFCAST_OK);
  EXPECT_LT(Clock::now() - start, milliseconds(500));
}

TEST(Subscriber, WaitTimesOut) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Handle h = OpenC(seg.segment());
  for (int timeout_ms : {0, 1, 120}) {
    const auto start = Clock::now();
    uint64_t seen = 0;
    EXPECT_EQ(confcast_wait(h.get(), 1, timeout_ms, &seen), CONFCAST_ERR_TIMEOUT) << timeout_ms;
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, milliseconds(timeout_ms));
    EXPECT_LT(elapsed, milliseconds(timeout_ms + 1500));
    EXPECT_EQ(seen, 1u);
  }
  // Waiting past a version that does not exist yet also times out.
  EXPECT_EQ(confcast_wait(h.get(), 5, 10, nullptr), CONFCAST_ERR_TIMEOUT);
}

// Starts `waiter` on a thread, makes sure it sleeps in futex(2), publishes,
// and checks it woke promptly with the new version.
void ExpectWakesOnPublish(PublishedSegment& seg, const std::function<int(uint64_t after, uint64_t* seen)>& waiter) {
  const uint64_t before = seg.writer().version();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> returned{false};
  int rc = -999;
  uint64_t seen = 0;
  Clock::time_point woke;
  std::thread t([&] {
    tid = CurrentTid();
    rc = waiter(before, &seen);
    woke = Clock::now();
    returned = true;
  });
  struct Joiner {
    std::thread& t;
    PublishedSegment& seg;
    ~Joiner() {
      if (t.joinable()) {
        seg.Publish({{"release", "the waiter"}});  // never leave a thread blocked
        t.join();
      }
    }
  } joiner{t, seg};
  while (tid.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(BlockedInFutex(tid.load(), milliseconds(5000))) << "the waiter never went to sleep in futex(2)";
  EXPECT_FALSE(returned.load());
  const auto published = Clock::now();
  const uint64_t v = seg.Publish({{"n", static_cast<int64_t>(before + 1)}});
  t.join();
  EXPECT_EQ(rc, CONFCAST_OK);
  EXPECT_EQ(seen, v);
  EXPECT_LT(woke - published, milliseconds(250)) << "woke too late";
}

TEST(Subscriber, WaitWakesOnAnotherThreadsPublish) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return sub.Wait(after, 20000, seen); });
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return confcast_wait(h.get(), after, 20000, seen); });
}

TEST(Subscriber, NegativeTimeoutWaitsUntilAPublish) {
  PublishedSegment seg;
  Handle h = OpenC(seg.segment());  // nothing published: wait for the very first version
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return confcast_wait(h.get(), after, -1, seen); });
  Subscriber sub(seg.segment());
  ExpectWakesOnPublish(seg, [&](uint64_t after, uint64_t* seen) { return sub.Wait(after, -1, seen); });
}

TEST(Subscriber, WaitWakesAcrossProcesses) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  int to_parent[2];
  ASSERT_EQ(pipe2(to_parent, O_CLOEXEC), 0);
  Child child([&] {
    close(to_parent[0]);
    confcast_subscriber* raw = nullptr;
    if (confcast_open(seg.c_str(), &raw) != CONFCAST_OK) return 4;
    Handle h(raw);
    const pid_t me = CurrentTid();
    if (write(to_parent[1], &me, sizeof(me)) != sizeof(me)) return 2;
    uint64_t seen = 0;
    const int rc = confcast_wait(h.get(), 1, 20000, &seen);
    return rc == CONFCAST_OK && seen == 2 ? 0 : 3;
  });
  close(to_parent[1]);
  pid_t child_pid = 0;
  ASSERT_EQ(read(to_parent[0], &child_pid, sizeof(child_pid)), static_cast<ssize_t>(sizeof(child_pid)));
  close(to_parent[0]);
  // The child's main thread: /proc/PID/syscall, polled until it sleeps.
  const auto deadline = Clock::now() + milliseconds(5000);
  bool sleeping = false;
  while (!sleeping && Clock::now() < deadline) {
    std::ifstream in("/proc/" + std::to_string(child_pid) + "/syscall");
    std::string first;
    sleeping = (in >> first) && first == std::to_string(SYS_futex);
    if (!sleeping) std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_TRUE(sleeping);
  seg.Publish({{"n", 2}});
  const auto status = child.Wait(milliseconds(5000));
  ASSERT_TRUE(status.has_value()) << "the child did not wake";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
}

// ---------------------------------------------------------------------------
// Info, strerror
// ---------------------------------------------------------------------------

TEST(Subscriber, InfoReportsThePublishersState) {
  PublishedSegment seg;
  Handle h = OpenC(seg.segment());
  Subscriber sub(seg.segment());
  confcast_info info;
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.publisher_pid, getpid());
  EXPECT_GT(info.heartbeat_unix_ns, 0);
  EXPECT_EQ(info.version, 0u);
  EXPECT_EQ(info.reload_total, 0u);
  EXPECT_STREQ(info.last_error, "");

  const int64_t published_at = 1700000000000000001;
  const uint64_t v = seg.Publish(HolmesConfig(), published_at);
  const int64_t beat = 1700000000999000000;
  seg.writer().Heartbeat(beat);
  layout::Stats& stats = seg.writer().stats();
  stats.reload_total = 7;
  stats.reload_errors_total = 3;
  stats.errors_by_reason[layout::kReasonParse] = 2;
  stats.errors_by_reason[layout::kReasonValidate] = 1;
  const std::string error = "/etc/holmesgpt/config.yaml:3:5: validate: llm.max_retries: expected 0 to 10, got 99";
  std::memcpy(stats.last_error, error.data(), error.size());
  stats.last_error_len = static_cast<uint32_t>(error.size());
  seg.writer().WriteStats();

  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(info.version, v);
  EXPECT_EQ(info.published_unix_ns, published_at);
  EXPECT_EQ(info.heartbeat_unix_ns, beat);
  EXPECT_EQ(info.publisher_pid, getpid());
  EXPECT_EQ(info.reload_total, 7u);
  EXPECT_EQ(info.reload_errors_total, 3u);
  EXPECT_EQ(std::string(info.sha256_hex), Hex(Sha256(HolmesConfig().dump())));
  EXPECT_EQ(std::strlen(info.sha256_hex), 64u);
  EXPECT_EQ(std::string(info.last_error), error);

  uint64_t by_reason[layout::kReasonCount];
  ASSERT_EQ(sub.ErrorsByReason(by_reason), CONFCAST_OK);
  EXPECT_EQ(by_reason[layout::kReasonIo], 0u);
  EXPECT_EQ(by_reason[layout::kReasonTooLarge], 0u);
  EXPECT_EQ(by_reason[layout::kReasonParse], 2u);
  EXPECT_EQ(by_reason[layout::kReasonValidate], 1u);

  // The longest last error fits with its NUL; a bogus length is clamped.
  std::memset(stats.last_error, 'e', sizeof(stats.last_error));
  stats.last_error_len = 100000;
  seg.writer().WriteStats();
  ASSERT_EQ(confcast_info_get(h.get(), &info), CONFCAST_OK);
  EXPECT_EQ(std::strlen(info.last_error), sizeof(info.last_error) - 1);
}

TEST(Subscriber, StrerrorCoversEveryCode) {
  const int codes[] = {CONFCAST_OK,          CONFCAST_ERR_NO_SEGMENT, CONFCAST_ERR_INCOMPATIBLE,
                       CONFCAST_ERR_CORRUPT, CONFCAST_ERR_EMPTY,      CONFCAST_ERR_NOT_FOUND,
                       CONFCAST_ERR_TYPE,    CONFCAST_ERR_TRUNCATED,  CONFCAST_ERR_INVALID,
                       CONFCAST_ERR_PERMISSION, CONFCAST_ERR_TIMEOUT, CONFCAST_ERR_SYSTEM};
  std::set<std::string> messages;
  const std::string unknown = confcast_strerror(-12345);
  for (int code : codes) {
    const char* m = confcast_strerror(code);
    ASSERT_NE(m, nullptr) << code;
    EXPECT_GT(std::strlen(m), 1u) << code;
    EXPECT_NE(std::string(m), unknown) << code;
    messages.insert(m);
    EXPECT_EQ(Error(code, "").what(), std::string(m));
  }
  EXPECT_EQ(messages.size(), std::size(codes)) << "two codes share a message";
  for (int other : {1, -12, -99, 42, INT_MIN, INT_MAX}) {
    ASSERT_NE(confcast_strerror(other), nullptr);
    EXPECT_EQ(std::string(confcast_strerror(other)), unknown) << other;
  }
  EXPECT_NE(std::string(confcast_strerror(CONFCAST_ERR_NOT_FOUND)).find("path"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Publisher restarts and replaced segments
// ---------------------------------------------------------------------------

TEST(Subscriber, PublisherRestartIsInvisibleToOpenHandles) {
  PublishedSegment seg;
  seg.Publish({{"n", 1}});
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  Key key("n");
  EXPECT_EQ(sub.GetInt(key), 1);
  seg.CloseWriter();
  EXPECT_EQ(sub.GetInt(key), 1);  // the last version stays readable with no publisher
  seg.OpenWriter();
  EXPECT_TRUE(seg.writer().adopted());
  const uint64_t v = seg.Publish({{"n", 2}});
  EXPECT_EQ(v, 2u) << "a restarted publisher continues the version numbers";
  EXPECT_EQ(sub.GetInt(key), 2);
  int64_t i = 0;
  uint64_t version = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &i, &version), CONFCAST_OK);
  EXPECT_EQ(i, 2);
  EXPECT_EQ(version, 2u);
}

TEST(Subscriber, ReplacedSegmentKeepsLastVersionAndWaitSaysIncompatible) {
  PublishedSegment seg(UniqueName("replaced"), 64 << 10);
  seg.Publish({{"n", 1}});
  Handle h = OpenC(seg.segment());
  seg.CloseWriter();
  seg.OpenWriter(128 << 10);  // another capacity: replaced at the first publish, not before
  EXPECT_FALSE(seg.writer().adopted());
  uint64_t seen = 0;
  EXPECT_EQ(confcast_wait(h.get(), 1, 0, &seen), CONFCAST_ERR_TIMEOUT) << "nothing replaced yet";
  EXPECT_EQ(seg.Publish({{"n", 5}}), 2u) << "versions continue across the replacement";
  EXPECT_EQ(confcast_wait(h.get(), 1, 2000, &seen), CONFCAST_ERR_INCOMPATIBLE);
  int64_t i = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 1) << "the old handle keeps the last version it could read";
  // A fresh handle follows the new segment.
  Handle fresh = OpenC(seg.segment());
  EXPECT_EQ(confcast_get_int(fresh.get(), "n", &i, nullptr), CONFCAST_OK);
  EXPECT_EQ(i, 5);
}

// A segment whose name was taken over by another file without the old one
// being marked retired (a publisher killed between its rename and the mark,
// or the segment deleted and created again): waiters learn it within about
// a second, whether they wait with a timeout or forever.
TEST(Subscriber, WaitSaysIncompatibleWhenTheNameMovesToAnotherSegment) {
  PublishedSegment old_segment(UniqueName("moved"));
  old_segment.Publish({{"n", 1}});
  Handle h = OpenC(old_segment.segment());
  Subscriber sub(old_segment.segment());
  uint64_t seen = 0;
  EXPECT_EQ(confcast_wait(h.get(), 1, 0, &seen), CONFCAST_ERR_TIMEOUT);
  // Long timeouts rather than -1, so that a failure here ends the test
  // instead of hanging it; -1 takes the same sliced sleep.
  auto cxx = std::async(std::launch::async, [&] { return sub.Wait(1, 60000); });
  auto c = std::async(std::launch::async, [&] { return confcast_wait(h.get(), 1, 60000, nullptr); });
  // The old publisher is gone (its lock free), its segment deleted, and a
  // new one created under the same name.
  old_segment.CloseWriter();
  ASSERT_EQ(shm_unlink(("/" + old_segment.segment()).c_str()), 0);
  PublishedSegment successor(old_segment.segment());  // destroyed first: it removes the name
  successor.Publish({{"n", 2}});
  ASSERT_EQ(cxx.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "Subscriber::Wait never noticed";
  ASSERT_EQ(c.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "confcast_wait never noticed";
  EXPECT_EQ(cxx.get(), CONFCAST_ERR_INCOMPATIBLE);
  EXPECT_EQ(c.get(), CONFCAST_ERR_INCOMPATIBLE);
  int64_t n = 0;
  EXPECT_EQ(confcast_get_int(h.get(), "n", &n, nullptr), CONFCAST_OK);
  EXPECT_EQ(n, 1) << "the old handle keeps reading what it mapped";
  EXPECT_EQ(Subscriber(successor.segment()).GetInt("n"), 2);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

// The heartbeat's age is measured on CLOCK_MONOTONIC: a wall clock stepped
// an hour ahead since the last beat (NTP catching up, an admin's `date`)
// must not make a live publisher look dead to readiness probes, nor one
// stepped back make a dead one look alive.
TEST(Subscriber, HeartbeatAgeIgnoresWallClockSteps) {
  PublishedSegment seg;
  seg.Publish(json{{"n", 1}});
  Subscriber sub(seg.segment());
  constexpr int64_t kHour = int64_t{3600} * 1000000000;
  seg.writer().Heartbeat(publisher::RealtimeNs() - kHour);
  EXPECT_GE(sub.HeartbeatAgeNs(), 0);
  EXPECT_LT(sub.HeartbeatAgeNs(), int64_t{5} * 1000000000);
  confcast_info info{};
  ASSERT_EQ(sub.Info(&info), CONFCAST_OK);
  EXPECT_LT(info.heartbeat_unix_ns, publisher::RealtimeNs() - kHour / 2) << "the wall-clock time is kept for display";
  seg.writer().Heartbeat(publisher::RealtimeNs() + kHour);
  EXPECT_LT(sub.HeartbeatAgeNs(), int64_t{5} * 1000000000);
}

TEST(Subscriber, ConcurrentReadersWhileAnotherThreadPublishes) {
  PublishedSegment seg;
  // Version v carries n == v, d == v + 0.5, b == (v even), s == "v<v>" x (v % 7 + 1).
  auto config_for = [](uint64_t v) {
    std::string s;
    for (uint64_t r = 0; r < v % 7 + 1; ++r) s += "v" + std::to_string(v);
    return json{{"n", v}, {"d", v + 0.5}, {"b", v % 2 == 0}, {"s", s}, {"pad", json::array({v, v, v})}};
  };
  auto expected_s = [](uint64_t v) {
    std::string s;
    for (uint64_t r = 0; r < v % 7 + 1; ++r) s += "v" + std::to_string(v);
    return s;
  };
  ASSERT_EQ(seg.Publish(config_for(1)), 1u);
  Subscriber sub(seg.segment());
  Handle h = OpenC(seg.segment());
  Key shared_n("n");  // one Key shared by every thread

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, bad{0};
  auto reader = [&](int id) {
    uint64_t local_reads = 0, local_bad = 0, last_version = 0;
    char buf[256];
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t v = 0;
      int64_t n = 0;
      if (id % 2 == 0) {
        if (sub.Get(shared_n, &n, &v) != CONFCAST_OK || static_cast<uint64_t>(n) != v) ++local_bad;
      } else {
        if (confcast_get_int(h.get(), "n", &n, &v) != CONFCAST_OK || static_cast<uint64_t>(n) != v) ++local_bad;
      }
      if (v < last_version) ++local_bad;
      last_version = v;
      double d = 0;
      if (confcast_get_double(h.get(), "d", &d, &v) != CONFCAST_OK || d != v + 0.5) ++local_bad;
      int b = -1;
      if (confcast_get_bool(h.get(), "b", &b, &v) != CONFCAST_OK || b != (v % 2 == 0 ? 1 : 0)) ++local_bad;
      size_t len = 0;
      if (confcast_get_string(h.get(), "s", buf, sizeof(buf), &len, &v) != CONFCAST_OK ||
          std::string(buf, len) != expected_s(v)) {
        ++local_bad;
      }
      if (local_reads % 16 == 0) {
        const Snapshot snap = sub.Pin();
        if (static_cast<uint64_t>(snap.GetInt("n")) != snap.version() || snap.GetString("s") != expected_s(snap.version()) ||
            snap.GetInt("pad.2") != snap.GetInt("n")) {
          ++local_bad;
        }
      }
      local_reads += 4;
    }
    reads += local_reads;
    bad += local_bad;
  };
  std::vector<std::thread> threads;
  for (int id = 0; id < 8; ++id) threads.emplace_back(reader, id);
  struct StopAndJoin {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~StopAndJoin() {
      stop = true;
      for (auto& t : threads) if (t.joinable()) t.join();
    }
  } guard{stop, threads};

  const auto deadline = Clock::now() + milliseconds(1000);
  uint64_t published = 1;
  std::thread writer([&] {
    while (Clock::now() < deadline) {
      const uint64_t v = seg.writer().version() + 1;
      if (seg.Publish(config_for(v)) != v) ++bad;
      published = v;
    }
  });
  writer.join();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 1000u);
  EXPECT_GT(published, 10u);
  EXPECT_EQ(sub.GetInt("n"), static_cast<int64_t>(published));
}

// ---------------------------------------------------------------------------
// The mapping is read-only
// ---------------------------------------------------------------------------

struct Mapping {
  uintptr_t start, end;
  std::string perms;
};

std::vector<Mapping> MappingsOf(const std::string& file) {
  std::vector<Mapping> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < file.size() || line.compare(line.size() - file.size(), file.size(), file) != 0) continue;
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    const size_t dash = range.find('-');
    out.push_back({std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16),
                   perms});
  }
  return out;
}

// Exit codes of the child below. The child catches its own SIGSEGV so that it
// can tell a write to a mapped read-only page (SEGV_ACCERR, at exactly the
// address written) from any other crash, and so that a sanitizer's own
// SIGSEGV report does not stand in for the signal.
constexpr int kWriteFaulted = 42;     // SIGSEGV, SEGV_ACCERR, at the written address
constexpr int kOtherFault = 43;       // SIGSEGV for another reason
volatile uintptr_t g_write_target = 0;

void OnSegv(int, siginfo_t* info, void*) {
  const bool expected =
      info->si_code == SEGV_ACCERR && reinterpret_cast<uintptr_t>(info->si_addr) == g_write_target;
  _exit(expected ? kWriteFaulted : kOtherFault);
}

// In a child: opens the segment with `open_reader`, finds the mapping it
// added, checks it is read-only, then writes to it, which must raise SIGSEGV.
// Other exit codes name what went wrong instead.
int WriteThroughReaderMapping(const std::string& file, const std::function<bool()>& open_reader) {
  const auto before = MappingsOf(file);
  if (!open_reader()) return 2;
  for (const Mapping& m : MappingsOf(file)) {
    bool existed = false;
    for (const Mapping& b : before) existed |= b.start == m.start;
    if (existed) continue;
    if (m.perms.size() < 4 || m.perms[0] != 'r' || m.perms[1] != '-' || m.perms[3] != 's') return 3;
    struct sigaction sa {};
    sa.sa_sigaction = OnSegv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0) return 6;
    g_write_target = m.start + layout::kHeaderSize;
    *reinterpret_cast<volatile uint8_t*>(g_write_target) = 0x5A;  // must fault
    return 4;
  }
  return 5;  // no new mapping found
}

TEST(Subscriber, SegmentIsMappedReadOnly) {
  PublishedSegment seg;
  seg.Publish(HolmesConfig());
  const std::string file = "/dev/shm/" + seg.segment();
  auto expect_write_faulted = [](std::optional<int> status, const char* api) {
    ASSERT_TRUE(status.has_value()) << api << ": the child did not finish";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == kWriteFaulted)
        << api << ": child status " << *status << " (exit " << (WIFEXITED(*status) ? WEXITSTATUS(*status) : -1)
        << ", signal " << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0) << ")";
  };
  {
    Child child([&] {
      return WriteThroughReaderMapping(file, [&] {
        confcast_subscriber* s = nullptr;
        return confcast_open(seg.c_str(), &s) == CONFCAST_OK;  // left open on purpose
      });
    });
    expect_write_faulted(child.Wait(milliseconds(10000)), "C ABI");
  }
  {
    Child child([&] {
      return WriteThroughReaderMapping(file, [&] {
        new Subscriber(seg.segment());  // leaked on purpose: the child exits holding it
        return true;
      });
    });
    expect_write_faulted(child.Wait(milliseconds(10000)), "C++");
  }
  // And the segment is untouched.
  Subscriber sub(seg.segment());
  EXPECT_EQ(sub.GetJson(""), HolmesConfig().dump());
}

TEST(Subscriber, UnreadableSegmentGivesPermission) {
  PublishedSegment seg;  // mode 0600, owned by this user
  seg.Publish({{"n", 1}});
  const passwd* nobody = getpwnam("nobody");
  if (geteuid() != 0 || nobody == nullptr) GTEST_SKIP() << "needs root and a 'nobody' user to drop to";
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  Child child([&] {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) return 2;
    confcast_subscriber* s = nullptr;
    return confcast_open(seg.c_str(), &s) == CONFCAST_ERR_PERMISSION && s == nullptr ? 0 : 3;
  });
  const auto status = child.Wait(milliseconds(10000));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
}

// ---------------------------------------------------------------------------
// Corrupt and foreign segments (file segments in a tmpfs directory)
// ---------------------------------------------------------------------------

// A valid file segment in a tmpfs directory, written by a publisher that
// then exited (the file stays; the directory goes at the end).
class FileSegment {
 public:
  explicit FileSegment(uint64_t capacity = 16 << 10) : path_(dir_ / "segment") {
    auto opened = SegmentWriter::Open({path_, capacity, 0600});
    if (auto* failure = std::get_if<SegmentWriter::Failure>(&opened)) {
      throw std::runtime_error("SegmentWriter::Open: " + failure->message);
    }
    auto writer = std::move(std::get<std::unique_ptr<SegmentWriter>>(opened));
    const auto built = snapshot::BuildSnapshot(HolmesConfig());
    const auto& words = std::get<snapshot::BuiltSnapshot>(built).words;
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
  TmpfsDir dir_;
  std::string path_;
};

TEST(Subscriber, ValidFileSegmentOpens) {
  FileSegment file;
  Handle h = OpenC(file.path());
  ASSERT_TRUE(h);
  EXPECT_EQ(CString(h.get(), "llm.model"), "gpt-4o");
}

TEST(Subscriber, WrongMagicIsCorrupt) {
  FileSegment file;
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, magic), 0x4B4E554A4B4E554Aull);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_CORRUPT);
}

TEST(Subscriber, ZeroMagicIsAPublisherStillCreatingIt) {
  FileSegment file;
  file.Patch<uint64_t>(offsetof(layout::SegmentHeader, magic), 0);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_NO_SEGMENT);
}

TEST(Subscriber, OtherLayoutVersionIsIncompatible) {
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

TEST(Subscriber, WrongLayoutSignatureIsIncompatible) {
  FileSegment file;
  file.Patch<uint32_t>(offsetof(layout::SegmentHeader, layout_signature), layout::Signature() ^ 0x10);
  EXPECT_EQ(OpenStatus(file.path()), CONFCAST_ERR_INCOMPATIBLE);
}

TEST(Subscriber, InconsistentSizesAreCorrupt) {
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

TEST(Subscriber, ZeroLengthFileIsNoSegment) {
  TmpfsDir dir;
  const std::string path = dir / "empty";
  std::ofstream(path).close();
  EXPECT_EQ(OpenStatus(path), CONFCAST_ERR_NO_SEGMENT);
}

TEST(Subscriber, CorruptActiveSlotIndexOrStuckSequence) {
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
TEST(Subscriber, GarbageInTheSlotNeverCrashes) {
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

// ---------------------------------------------------------------------------
// Key handles (confcast_key_*) and reads that never pass the caller's NUL
// ---------------------------------------------------------------------------

struct FreeKey {
  void operator()(confcast_key* k) const { confcast_key_free(k); }
};
using CKey = std::unique_ptr<confcast_key, FreeKey>;

CKey NewKey(const char* path) {
  confcast_key* raw = nullptr;
  EXPECT_EQ(confcast_key_new(path, &raw), CONFCAST_OK) << path;
  return CKey(raw);
}

TEST(KeyHandle, ReadsWhatTheByPathGettersRead) {
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish({{"llm", {{"model", "gpt-4o"}, {"max_retries", 3}, {"temperature", 0.5}}},
                         {"on", true}, {"ratio", 2}}),
            1u);
  Handle h = OpenC(seg.segment());
  CKey model = NewKey("llm.model"), retries = NewKey("llm.max_retries"), temp = NewKey("llm.temperature"),
       on = NewKey("on"), ratio = NewKey("ratio"), missing = NewKey("llm.nope");
  for (int rep = 0; rep < 3; ++rep) {  // cold, then warm
    int64_t i = 0;
    uint64_t version = 0;
    ASSERT_EQ(confcast_get_int_key(h.get(), retries.get(), &i, &version), CONFCAST_OK);
    EXPECT_EQ(i, 3);
    EXPECT_EQ(version, 1u);
    double d = 0;
    ASSERT_EQ(confcast_get_double_key(h.get(), temp.get(), &d, nullptr), CONFCAST_OK);
    EXPECT_EQ(d, 0.5);
    ASSERT_EQ(confcast_get_double_key(h.get(), ratio.get(), &d, nullptr), CONFCAST_OK) << "an int reads as a double";
    EXPECT_EQ(d, 2.0);
    int b = -1;
    ASSERT_EQ(confcast_get_bool_key(h.get(), on.get(), &b, nullptr), CONFCAST_OK);
    EXPECT_EQ(b, 1);
    char buf[16];
    size_t len = 0;
    ASSERT_EQ(confcast_get_string_key(h.get(), model.get(), buf, sizeof(buf), &len, &version), CONFCAST_OK);
    EXPECT_EQ(std::string(buf, len), "gpt-4o");
    EXPECT_EQ(confcast_get_string_key(h.get(), model.get(), buf, 4, &len, nullptr), CONFCAST_ERR_TRUNCATED);
    EXPECT_EQ(len, 6u);
    EXPECT_STREQ(buf, "gpt");
    EXPECT_EQ(confcast_get_int_key(h.get(), model.get(), &i, nullptr), CONFCAST_ERR_TYPE);
    EXPECT_EQ(confcast_get_string_key(h.get(), retries.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
    EXPECT_EQ(confcast_get_int_key(h.get(), missing.get(), &i, nullptr), CONFCAST_ERR_NOT_FOUND);
  }
}

TEST(KeyHandle, NullArgumentsAreInvalid) {
  PublishedSegment seg;
  seg.Publish({{"x", 1}, {"s", "v"}});
  Handle h = OpenC(seg.segment());
  CKey x = NewKey("x");
  confcast_key* out = reinterpret_cast<confcast_key*>(0x1);
  EXPECT_EQ(confcast_key_new(nullptr, &out), CONFCAST_ERR_INVALID);
  EXPECT_EQ(out, nullptr) << "*out is reset on failure";
  EXPECT_EQ(confcast_key_new("x", nullptr), CONFCAST_ERR_INVALID);
  confcast_key_free(nullptr);
  int64_t i;
  double d;
  int b;
  char buf[8];
  size_t len;
  EXPECT_EQ(confcast_get_int_key(nullptr, x.get(), &i, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int_key(h.get(), nullptr, &i, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_int_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(nullptr, x.get(), &d, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(h.get(), nullptr, &d, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_double_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(nullptr, x.get(), &b, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(h.get(), nullptr, &b, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_bool_key(h.get(), x.get(), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(nullptr, x.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), nullptr, buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), x.get(), buf, sizeof(buf), nullptr, nullptr), CONFCAST_ERR_INVALID);
  EXPECT_EQ(confcast_get_string_key(h.get(), x.get(), nullptr, 4, &len, nullptr), CONFCAST_ERR_INVALID);
  CKey s = NewKey("s");
  EXPECT_EQ(confcast_get_string_key(h.get(), s.get(), nullptr, 0, &len, nullptr), CONFCAST_ERR_TRUNCATED)
      << "cap 0 asks for the length only";
  EXPECT_EQ(len, 1u);
}

// One key, two subscribers (two segments, same versions, different
// layouts), four threads, republishing in between: every read is the value
// of its own segment, and the one cache word never makes a read wrong.
TEST(KeyHandle, SharedByThreadsAndByTwoSubscribers) {
  PublishedSegment first, second;
  json a = {{"k", 1}}, b = {{"k", 2}};
  for (int i = 0; i < 40; ++i) b["pad" + std::to_string(i)] = i;  // "k" lives elsewhere in the second
  ASSERT_EQ(first.Publish(a), 1u);
  ASSERT_EQ(second.Publish(b), 1u);
  Handle ha = OpenC(first.segment()), hb = OpenC(second.segment());
  CKey key = NewKey("k");
  std::atomic<int> wrong{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> published{1};
  auto reader = [&](int parity) {
    for (int round = 0; round < 50000; ++round) {
      confcast_subscriber* h = ((round + parity) & 1) ? ha.get() : hb.get();
      int64_t got = 0;
      uint64_t version = 0;
      if (confcast_get_int_key(h, key.get(), &got, &version) != CONFCAST_OK) {
        wrong.fetch_add(1);
        continue;
      }
      // The first segment holds version v's value v, the second 1000 + v (from version 2 on).
      const bool in_first = h == ha.get();
      const int64_t want = in_first ? static_cast<int64_t>(version) : (version == 1 ? 2 : 1000 + int64_t(version));
      if (got != want) wrong.fetch_add(1);
    }
  };
  std::thread writer([&] {
    for (int64_t v = 2; v <= 30 && !stop.load(); ++v) {
      a["k"] = v;
      b["k"] = 1000 + v;
      if (v % 3 == 0) b["pad" + std::to_string(v)] = "moved";
      first.Publish(a);
      second.Publish(b);
      published = v;
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) readers.emplace_back(reader, t & 1);
  for (auto& t : readers) t.join();
  stop = true;
  writer.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A key whose cached place comes from a segment of another capacity (so
// other slot bounds, other entry places) re-resolves there, and back.
TEST(KeyHandle, SegmentOfAnotherCapacityReResolves) {
  PublishedSegment small(UniqueName("small"), 4 << 10), large(UniqueName("large"), 256 << 10);
  json big = json::object();
  for (int i = 0; i < 60; ++i) big["f" + std::to_string(i)] = i;
  big["zz.target"] = 7;
  ASSERT_EQ(large.Publish(big), 1u);
  ASSERT_EQ(small.Publish({{"zz", {{"target", 8}}}}), 1u);
  Handle hs = OpenC(small.segment()), hl = OpenC(large.segment());
  CKey key = NewKey("zz.target");
  for (int rep = 0; rep < 5; ++rep) {
    int64_t got = 0;
    ASSERT_EQ(confcast_get_int_key(hl.get(), key.get(), &got, nullptr), CONFCAST_OK);
    EXPECT_EQ(got, 7);
    ASSERT_EQ(confcast_get_int_key(hs.get(), key.get(), &got, nullptr), CONFCAST_OK);
    EXPECT_EQ(got, 8);
  }
  // The C++ Key is the same machinery.
  Subscriber s(small.segment()), l(large.segment());
  Key cpp("zz.target");
  EXPECT_EQ(l.GetInt(cpp), 7);
  EXPECT_EQ(s.GetInt(cpp), 8);
  EXPECT_EQ(l.GetInt(cpp), 7);
}

// Each path in an allocation of exactly its length + 1 bytes: under
// AddressSanitizer (the core-asan build) a read of one byte past the NUL is
// a heap-buffer-overflow report, cold or warm, for every by-path getter and
// for confcast_key_new. Lengths 1..40 put the NUL at every place in a word.
TEST(Subscriber, ByPathReadsStopAtTheNulInExactAllocations) {
  json config = json::object();
  std::vector<std::string> paths;
  for (size_t n = 1; n <= 40; ++n) {
    std::string p(n, 'a');
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>('a' + (i * 7 + n) % 26);
    paths.push_back(p);
    config[p] = static_cast<int64_t>(n);
  }
  PublishedSegment seg;
  ASSERT_EQ(seg.Publish(config), 1u);
  Handle h = OpenC(seg.segment());
  Subscriber sub(seg.segment());
  for (const std::string& p : paths) {
    std::unique_ptr<char[]> exact(new char[p.size() + 1]);
    std::memcpy(exact.get(), p.c_str(), p.size() + 1);
    for (int rep = 0; rep < 3; ++rep) {
      int64_t got = 0;
      ASSERT_EQ(confcast_get_int(h.get(), exact.get(), &got, nullptr), CONFCAST_OK) << p;
      EXPECT_EQ(got, static_cast<int64_t>(p.size()));
      double d = 0;
      EXPECT_EQ(confcast_get_double(h.get(), exact.get(), &d, nullptr), CONFCAST_OK);
      int b = 0;
      EXPECT_EQ(confcast_get_bool(h.get(), exact.get(), &b, nullptr), CONFCAST_ERR_TYPE);
      char buf[64];
      size_t len = 0;
      EXPECT_EQ(confcast_get_string(h.get(), exact.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_ERR_TYPE);
      EXPECT_EQ(confcast_get_json(h.get(), exact.get(), buf, sizeof(buf), &len, nullptr), CONFCAST_OK);
      // The C++ by-path read gets exactly the bytes, no NUL at all.
      std::unique_ptr<char[]> bare(new char[p.size()]);
      std::memcpy(bare.get(), p.data(), p.size());
      EXPECT_EQ(sub.Get(std::string_view(bare.get(), p.size()), &got), CONFCAST_OK);
    }
    CKey key = NewKey(exact.get());
    int64_t got = 0;
    EXPECT_EQ(confcast_get_int_key(h.get(), key.get(), &got, nullptr), CONFCAST_OK);
  }
}

}  // namespace
}  // namespace confcast
