// publish_benchmark.cc - what one publish costs the publisher, against the
// size of the config file (1 KiB, 64 KiB, 1 MiB of HolmesGPT-shaped YAML:
// the llm section plus as many toolsets as fit).
//
//   stage/read_hash/SIZE       ReadConfigFile: open, read, SHA-256
//   stage/parse_validate/SIZE  ParseAndValidate with the built-in schema
//   stage/build/SIZE           BuildSnapshot: the flat snapshot words
//   stage/write/SIZE           SegmentWriter::Publish into the segment
//   pipeline/SIZE              the four in a row: one publish, end to end
//   reload/SIZE                Reloader::Reload after a kubelet-style symlink
//                              swap between two contents (adds the unchanged-
//                              hash check, the metrics and the change diff
//                              the publisher logs; the log line itself is
//                              suppressed: level warn)
// Counters: yaml_bytes, snapshot_bytes, nodes; bytes_per_second is YAML bytes.
//
// Threading: single-threaded; the files live in a fresh temporary directory
// and the segment has a unique name; both are removed at exit.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "bench_support.hpp"
#include "config_file.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "reloader.hpp"
#include "schema.hpp"
#include "segment_writer.hpp"
#include "snapshot_builder.hpp"

namespace {

namespace cp = confcast::publisher;
namespace fs = std::filesystem;

constexpr uint64_t kMaxConfigBytes = 2u << 20;  // above the largest case, so that no size is refused unread

// HolmesGPT-shaped YAML of at most target_bytes (and as close as whole
// toolsets allow). `variant` changes one value, for a second content.
std::string MakeConfigYaml(size_t target_bytes, int variant) {
  std::string yaml =
      "llm:\n"
      "  model: " + std::string(variant ? "gpt-4.1" : "gpt-4o") + "\n"
      "  provider: openai\n"
      "  endpoint: https://api.openai.com/v1\n"
      "  max_retries: 3\n"
      "  timeout_seconds: 60\n"
      "  temperature: 0.0\n"
      "log_level: INFO\n"
      "toolsets:\n";
  for (int i = 0;; ++i) {
    char toolset[512];
    std::snprintf(toolset, sizeof(toolset),
                  "  team-%05d/metrics:\n"
                  "    enabled: %s\n"
                  "    config:\n"
                  "      url: http://prometheus-%05d.monitoring.svc.cluster.local:9090\n"
                  "      timeout_seconds: %d\n"
                  "      labels: [team-%05d, tier-%d]\n",
                  i, (i % 3) ? "true" : "false", i, 10 + i % 50, i, i % 4);
    if (yaml.size() + std::strlen(toolset) > target_bytes) break;
    yaml += toolset;
  }
  return yaml;
}

struct SizeCase {
  std::string label;  // "1KiB"
  size_t target = 0;
  std::string path[2];  // two contents of this size
  cp::FileBytes file;
  nlohmann::json config;
  confcast::snapshot::BuiltSnapshot snapshot;
};

struct World {
  fs::path dir;
  std::string segment;
  std::unique_ptr<cp::SegmentWriter> writer;
  std::unique_ptr<cp::Metrics> metrics;
  cp::Schema schema = cp::Schema::HolmesGpt();
  std::map<int64_t, SizeCase> cases;  // by target bytes
};
World* g = nullptr;

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

void SetCounters(benchmark::State& state, const SizeCase& c) {
  state.counters["yaml_bytes"] = static_cast<double>(c.file.bytes.size());
  state.counters["snapshot_bytes"] = static_cast<double>(c.snapshot.size_bytes());
  state.counters["nodes"] = static_cast<double>(c.snapshot.entry_count);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(c.file.bytes.size()));
}

void ReadHash(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  for (auto _ : state) {
    auto read = cp::ReadConfigFile(c.path[0], kMaxConfigBytes);
    benchmark::DoNotOptimize(read);
  }
  SetCounters(state, c);
}

void ParseValidate(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  for (auto _ : state) {
    auto valid = cp::ParseAndValidate(c.file.bytes, c.path[0], g->schema, false);
    benchmark::DoNotOptimize(valid);
  }
  SetCounters(state, c);
}

void Build(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  for (auto _ : state) {
    auto built = confcast::snapshot::BuildSnapshot(c.config);
    benchmark::DoNotOptimize(built);
  }
  SetCounters(state, c);
}

void Write(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  for (auto _ : state) {
    uint64_t v = g->writer->Publish(c.snapshot.words.data(), c.snapshot.words.size(), c.file.sha256, cp::RealtimeNs());
    benchmark::DoNotOptimize(v);
  }
  SetCounters(state, c);
}

void Pipeline(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  for (auto _ : state) {
    auto read = cp::ReadConfigFile(c.path[0], kMaxConfigBytes);
    const auto& file = std::get<cp::FileBytes>(read);
    auto valid = cp::ParseAndValidate(file.bytes, c.path[0], g->schema, false);
    auto built = confcast::snapshot::BuildSnapshot(std::get<cp::ValidatedConfig>(valid).config);
    const auto& snap = std::get<confcast::snapshot::BuiltSnapshot>(built);
    uint64_t v = g->writer->Publish(snap.words.data(), snap.words.size(), file.sha256, cp::RealtimeNs());
    benchmark::DoNotOptimize(v);
  }
  SetCounters(state, c);
}

// The config path is a symlink swapped between the two contents, as the
// kubelet swaps ..data; the swap is not timed.
void Reload(benchmark::State& state) {
  const SizeCase& c = g->cases.at(state.range(0));
  const fs::path link = g->dir / ("config-" + c.label + ".yaml");
  const fs::path tmp = g->dir / ("config-" + c.label + ".yaml.tmp");
  fs::remove(link);
  fs::create_symlink(c.path[0], link);
  cp::Reloader reloader({{link.string()}, kMaxConfigBytes, false}, g->schema, *g->writer, *g->metrics);
  auto first = reloader.Reload(cp::Trigger::kStartup);
  if (first.kind != cp::ReloadOutcome::Kind::kPublished && first.kind != cp::ReloadOutcome::Kind::kAdopted) {
    state.SkipWithError(first.error ? first.error->ToString().c_str() : "first reload did not publish");
    return;
  }
  int which = 0;
  for (auto _ : state) {
    state.PauseTiming();
    which ^= 1;
    fs::remove(tmp);
    fs::create_symlink(c.path[which], tmp);
    fs::rename(tmp, link);
    state.ResumeTiming();
    auto outcome = reloader.Reload(cp::Trigger::kFileEvent);
    if (outcome.kind != cp::ReloadOutcome::Kind::kPublished) {
      state.SkipWithError("a reload did not publish");
      break;
    }
    benchmark::DoNotOptimize(outcome);
  }
  SetCounters(state, c);
}

void SetUpWorld() {
  g = new World();
  char dir_template[] = "/tmp/confcast-bench-publish-XXXXXX";
  if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
  g->dir = dir_template;
  const std::pair<const char*, size_t> sizes[] = {{"1KiB", 1u << 10}, {"64KiB", 64u << 10}, {"1MiB", 1u << 20}};
  uint64_t largest_snapshot = 0;
  for (const auto& [label, target] : sizes) {
    SizeCase c;
    c.label = label;
    c.target = target;
    for (int v = 0; v < 2; ++v) {
      c.path[v] = (g->dir / ("config-" + c.label + "-" + std::to_string(v) + ".yaml")).string();
      WriteFile(c.path[v], MakeConfigYaml(target, v));
    }
    auto read = cp::ReadConfigFile(c.path[0], kMaxConfigBytes);
    if (auto* err = std::get_if<cp::ConfigError>(&read)) throw std::runtime_error(err->ToString());
    c.file = std::get<cp::FileBytes>(read);
    confcast::bench::PreparedConfig p = confcast::bench::Prepare(c.file.bytes, c.path[0]);
    c.config = std::move(p.config);
    c.snapshot = std::move(p.snapshot);
    largest_snapshot = std::max<uint64_t>(largest_snapshot, c.snapshot.size_bytes());
    g->cases.emplace(static_cast<int64_t>(target), std::move(c));
  }
  g->segment = confcast::bench::UniqueSegmentName("publish");
  confcast::bench::SegmentCleanup::Register(g->segment);
  cp::SegmentWriter::Options options;
  options.segment = g->segment;
  options.capacity = (largest_snapshot + (1u << 20)) & ~uint64_t{(1u << 20) - 1};  // the largest fits
  options.mode = 0600;
  auto opened = cp::SegmentWriter::Open(options);
  if (auto* failure = std::get_if<cp::SegmentWriter::Failure>(&opened)) throw std::runtime_error(failure->message);
  g->writer = std::move(std::get<std::unique_ptr<cp::SegmentWriter>>(opened));
  auto metrics = cp::Metrics::Start("none", "holmesgpt");
  if (auto* msg = std::get_if<std::string>(&metrics)) throw std::runtime_error(*msg);
  g->metrics = std::move(std::get<std::unique_ptr<cp::Metrics>>(metrics));
  cp::InitLogging(cp::LogFormat::kText, spdlog::level::warn);
}

void TearDownWorld() {
  g->writer.reset();
  confcast::bench::SegmentCleanup::UnlinkAll();
  std::error_code ignored;
  fs::remove_all(g->dir, ignored);
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20)->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void RegisterAll() {
  benchmark::AddCustomContext("default_capacity_bytes", std::to_string(1u << 20));
  benchmark::RegisterBenchmark("stage/read_hash", ReadHash)->Apply(Sizes);
  benchmark::RegisterBenchmark("stage/parse_validate", ParseValidate)->Apply(Sizes);
  benchmark::RegisterBenchmark("stage/build", Build)->Apply(Sizes);
  benchmark::RegisterBenchmark("stage/write", Write)->Apply(Sizes);
  benchmark::RegisterBenchmark("pipeline", Pipeline)->Apply(Sizes);
  benchmark::RegisterBenchmark("reload", Reload)->Apply(Sizes);
}

}  // namespace

int main(int argc, char** argv) {
  return confcast::bench::RunWithWorld(argc, argv, "publish_benchmark", SetUpWorld, RegisterAll, TearDownWorld);
}
