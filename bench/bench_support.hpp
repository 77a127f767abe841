// bench_support.hpp - what the benchmark programs share: the benchmark
// config (bench/data), unique segment names that are removed again even when
// a run is interrupted, and the publisher's own pipeline to turn YAML into a
// published snapshot.
//
// Threading: the helpers are called from main() before any benchmark thread
// starts; the segment cleanup (tests/support/segment_guard.hpp) runs from
// atexit and from SIGINT/SIGTERM.
#ifndef CONFCAST_BENCH_BENCH_SUPPORT_HPP_
#define CONFCAST_BENCH_BENCH_SUPPORT_HPP_

#include <unistd.h>

#include <array>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "config_file.hpp"
#include "schema.hpp"
#include "snapshot_builder.hpp"
#include "support/segment_guard.hpp"  // tests/support

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

// Segments removed at exit and on SIGINT/SIGTERM: the test-support
// library's, so tests and benchmarks clean up the same way (lock included).
using test_support::SegmentCleanup;

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

// main() of a benchmark program whose benchmarks share one world (segments,
// snapshots, readers) built before they are registered, because their
// arguments and context come from it. A set_up that throws is reported with
// the program's name (exit 1) and leaves no segment behind.
inline int RunWithWorld(int argc, char** argv, const char* program, void (*set_up)(),
                        void (*register_benchmarks)(), void (*tear_down)()) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    set_up();
  } catch (const std::exception& e) {
    std::cerr << program << ": setup failed: " << e.what() << "\n";
    SegmentCleanup::UnlinkAll();
    return 1;
  }
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  tear_down();
  return 0;
}

}  // namespace confcast::bench

#endif  // CONFCAST_BENCH_BENCH_SUPPORT_HPP_
