// bench_support.hpp - what the benchmark programs share: the benchmark
// config (bench/data), unique segment names that are removed again even when
// a run is interrupted, and the publisher's own pipeline to turn YAML into a
// published snapshot.
//
// Threading: the helpers are called from main() before any benchmark thread
// starts; the segment cleanup runs from atexit and from SIGINT/SIGTERM (it
// only calls shm_unlink, which is async-signal-safe).
#ifndef CONFCAST_BENCH_BENCH_SUPPORT_HPP_
#define CONFCAST_BENCH_BENCH_SUPPORT_HPP_

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "config_file.hpp"
#include "schema.hpp"
#include "snapshot_builder.hpp"

#ifndef CONFCAST_BENCH_DATA_DIR
#error "bench/CMakeLists.txt defines CONFCAST_BENCH_DATA_DIR"
#endif

namespace confcast::bench {

inline std::string DataPath(const char* file) { return std::string(CONFCAST_BENCH_DATA_DIR) + "/" + file; }

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "confcast-bench-WHAT-PID-RANDOM": benchmarks running side by side (or a
// leftover of a killed run) never share a segment.
inline std::string UniqueSegmentName(const char* what) {
  std::random_device entropy;
  char name[96];
  std::snprintf(name, sizeof(name), "confcast-bench-%s-%d-%08x", what, static_cast<int>(getpid()), entropy());
  return name;
}

// Remembers up to a few POSIX shm names and unlinks them at exit or on
// SIGINT/SIGTERM (and, at exit, the worker ledgers beside them). Fixed storage, so the signal handler needs no allocation.
class SegmentCleanup {
 public:
  // The segment and the publisher lock a writer keeps beside it.
  static void Register(const std::string& name) {
    Add(name);
    Add(name + ".confcast-lock");
  }
  static void Add(const std::string& name) {
    Table& t = table();
    if (t.count >= kMax || name.size() + 2 > kNameBytes) throw std::runtime_error("too many bench segments");
    std::snprintf(t.names[t.count], kNameBytes, "/%s", name.c_str());
    if (t.count++ == 0) {
      std::atexit(UnlinkAll);
      std::atexit(RemoveLedgers);
      struct sigaction sa {};
      sa.sa_handler = OnSignal;
      sigaction(SIGINT, &sa, nullptr);
      sigaction(SIGTERM, &sa, nullptr);
    }
  }
  static void UnlinkAll() {
    Table& t = table();
    for (int i = 0; i < t.count; ++i) shm_unlink(t.names[i]);
  }
  // The worker ledger a publisher keeps beside each registered segment
  // (NAME.confcast-ledger/: entry files, no subdirectory). At exit only: it
  // reads a directory, which a signal handler must not.
  static void RemoveLedgers() {
    Table& t = table();
    for (int i = 0; i < t.count; ++i) {
      const std::string dir = std::string("/dev/shm") + t.names[i] + ".confcast-ledger";
      if (DIR* d = opendir(dir.c_str())) {
        while (dirent* ent = readdir(d)) {
          if (ent->d_name[0] != '.') unlinkat(dirfd(d), ent->d_name, 0);
        }
        closedir(d);
        rmdir(dir.c_str());
      }
    }
  }

 private:
  static constexpr int kMax = 64;
  static constexpr size_t kNameBytes = 128;
  struct Table {
    char names[kMax][kNameBytes];
    int count = 0;
  };
  static Table& table() {
    static Table t;
    return t;
  }
  static void OnSignal(int sig) {
    UnlinkAll();
    _exit(128 + sig);
  }
};

// A config run through the publisher's pipeline: validated (defaults
// applied), laid out as a snapshot, hashed.
struct PreparedConfig {
  std::string yaml;
  nlohmann::json config;
  snapshot::BuiltSnapshot snapshot;
  std::array<unsigned char, 32> sha256{};
};

inline PreparedConfig Prepare(std::string yaml, const std::string& name) {
  PreparedConfig p;
  p.yaml = std::move(yaml);
  auto valid = publisher::ParseAndValidate(p.yaml, name, publisher::Schema::HolmesGpt(), false);
  if (auto* err = std::get_if<publisher::ConfigError>(&valid)) throw std::runtime_error(err->ToString());
  p.config = std::move(std::get<publisher::ValidatedConfig>(valid).config);
  auto built = snapshot::BuildSnapshot(p.config);
  if (auto* msg = std::get_if<std::string>(&built)) throw std::runtime_error(name + ": " + *msg);
  p.snapshot = std::move(std::get<snapshot::BuiltSnapshot>(built));
  p.sha256 = publisher::Sha256(p.yaml);
  return p;
}

// The benchmark config, and a second version of it that differs in one
// value (what a writer alternates between).
inline PreparedConfig PrepareHolmesGpt(bool second_version) {
  std::string yaml = ReadWholeFile(DataPath("holmesgpt_config.yaml"));
  if (second_version) {
    const std::string from = "model: gpt-4o ";
    const size_t at = yaml.find(from);
    if (at == std::string::npos) throw std::runtime_error("bench config has no 'model: gpt-4o'");
    yaml.replace(at, from.size(), "model: gpt-4.1");
  }
  return Prepare(std::move(yaml), DataPath("holmesgpt_config.yaml"));
}

}  // namespace confcast::bench

#endif  // CONFCAST_BENCH_BENCH_SUPPORT_HPP_
