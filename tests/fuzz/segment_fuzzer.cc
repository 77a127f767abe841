// segment_fuzzer.cc - libFuzzer entry point: arbitrary bytes as a segment -> open, verify, every getter.
// The harness is confcast::fuzz::FuzzSegment in fuzz_targets.hpp (shared with
// the corpus replay test); build and run with tests/fuzz/run.
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return confcast::fuzz::FuzzSegment(data, size);
}
