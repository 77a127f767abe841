// make_segment_seeds - writes seed inputs for segment_fuzzer from real
// configs: each config is validated, built into a snapshot and wrapped in the
// fuzzer's input format (fuzz_targets.hpp), in several shapes (either slot
// active, a slot mid-write, retired, stats from data) and once as a raw
// segment file written by the real SegmentWriter. Seeds that start from real
// snapshots let the fuzzer spend its time past the header checks.
//
//   make_segment_seeds OUTDIR CONFIG.yaml...
//
// Single-threaded; creates and removes one /dev/shm segment per config.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.hpp"

namespace {

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The bytes of a segment the real writer produced, as a raw-mode input.
std::vector<uint8_t> RawSeed(const confcast::snapshot::BuiltSnapshot& snap, int index) {
  namespace cp = confcast::publisher;
  const std::string name = "confcast-seed-" + std::to_string(getpid()) + "-" + std::to_string(index);
  auto opened = cp::SegmentWriter::Open({name, std::max<uint64_t>(64, snap.size_bytes()), 0600});
  if (!std::holds_alternative<std::unique_ptr<cp::SegmentWriter>>(opened)) return {};
  auto& writer = *std::get<0>(opened);
  writer.Publish(snap.words.data(), snap.words.size(), {}, 1);
  writer.stats().reload_total = 1;
  writer.WriteStats();
  std::ifstream in("/dev/shm/" + name, std::ios::binary);
  std::vector<uint8_t> out = {3};
  out.insert(out.end(), std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  shm_unlink(("/" + name).c_str());
  shm_unlink(("/" + name + ".confcast-lock").c_str());  // the publisher lock beside it
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cp = confcast::publisher;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUTDIR CONFIG.yaml...\n", argv[0]);
    return 2;
  }
  const std::string outdir = argv[1];
  auto rich = cp::Schema::FromYaml(confcast::fuzz::kRichSchemaYaml, "rich-schema.yaml");
  const cp::Schema schemas[] = {cp::Schema::HolmesGpt(), std::get<cp::Schema>(rich)};
  int written = 0;
  for (int i = 2; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const cp::Schema& schema : schemas) {
      auto result = cp::ParseAndValidate(text, argv[i], schema, false);
      if (!std::holds_alternative<cp::ValidatedConfig>(result)) continue;
      auto built = confcast::snapshot::BuildSnapshot(std::get<cp::ValidatedConfig>(result).config);
      if (!std::holds_alternative<confcast::snapshot::BuiltSnapshot>(built)) continue;
      const auto& snap = std::get<confcast::snapshot::BuiltSnapshot>(built);
      const std::string stem = outdir + "/seed-" + std::to_string(i - 1);
      WriteFile(stem + "-a", confcast::fuzz::SegmentSeed(snap, 1, 0));
      WriteFile(stem + "-b", confcast::fuzz::SegmentSeed(snap, 7, 1));
      WriteFile(stem + "-c", confcast::fuzz::SegmentSeed(snap, 9, 32 | 64));
      WriteFile(stem + "-d", confcast::fuzz::SegmentSeed(snap, 3, 8));
      WriteFile(stem + "-raw", RawSeed(snap, i));
      written += 5;
      break;
    }
  }
  std::printf("make_segment_seeds: %d seeds in %s\n", written, outdir.c_str());
  return written > 0 ? 0 : 1;
}
