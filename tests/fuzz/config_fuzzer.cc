// config_fuzzer.cc - libFuzzer entry point: config bytes -> parse, validate, snapshot, lookups.
// The harness is confcast::fuzz::FuzzConfig in fuzz_targets.hpp (shared with
// the corpus replay test); build and run with tests/fuzz/run.
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return confcast::fuzz::FuzzConfig(data, size);
}
