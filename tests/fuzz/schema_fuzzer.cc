// schema_fuzzer.cc - libFuzzer entry point: schema-file bytes -> Schema::FromFile.
// The harness is confcast::fuzz::FuzzSchema in fuzz_targets.hpp (shared with
// the corpus replay test); build and run with tests/fuzz/run.
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return confcast::fuzz::FuzzSchema(data, size);
}
