// cpp-worker - a minimal C++ worker reading the config that confcast-publisher
// broadcasts: opens the segment named on the command line, pins one version
// for a "request", reads a hot value through a Key, and optionally waits for
// the next version.
//
//   cpp-worker SEGMENT [--wait-after VERSION --timeout-ms N]
//
// Prints key=value lines (llm.model, version, ...). Exit codes: 0 ok, 1 no
// version in time / read error, 2 no segment, 4 usage.
//
// Threading: single-threaded; confcast::Subscriber and Key may be shared by
// any number of threads in a real worker.
#include <confcast/subscriber.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace {

int Usage() {
  std::cerr << "usage: cpp-worker SEGMENT [--wait-after VERSION --timeout-ms N]\n";
  return 4;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string segment = argv[1];
  uint64_t wait_after = 0;
  int timeout_ms = 5000;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--wait-after" && i + 1 < argc) {
      wait_after = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--timeout-ms" && i + 1 < argc) {
      timeout_ms = std::atoi(argv[++i]);
    } else {
      return Usage();
    }
  }

  try {
    const confcast::Subscriber sub(segment);
    // Block in the kernel until a version newer than wait_after is published.
    uint64_t seen = 0;
    if (int rc = sub.Wait(wait_after, timeout_ms, &seen); rc != CONFCAST_OK) {
      std::cerr << "cpp-worker: no version after " << wait_after << ": " << confcast::StatusMessage(rc) << "\n";
      return 1;
    }

    // One request: every value comes from the same pinned version.
    const confcast::Snapshot request = sub.Pin();
    std::cout << "llm.model=" << request.GetString("llm.model") << "\n";
    std::cout << "version=" << request.version() << "\n";
    std::cout << "llm.provider=" << request.GetString("llm.provider") << "\n";
    std::cout << "llm.temperature=" << request.GetDouble("llm.temperature") << "\n";
    std::cout << "sha256=" << request.sha256_hex() << "\n";

    // A hot path: the Key resolves its path once per version.
    static const confcast::Key kMaxRetries("llm.max_retries");
    int64_t retries = 0;
    uint64_t read_from = 0;
    if (int rc = sub.Get(kMaxRetries, &retries, &read_from); rc != CONFCAST_OK) {
      std::cerr << "cpp-worker: llm.max_retries: " << confcast::StatusMessage(rc) << "\n";
      return 1;
    }
    std::cout << "llm.max_retries=" << retries << " (version " << read_from << ")\n";
    return 0;
  } catch (const confcast::Error& e) {
    std::cerr << "cpp-worker: " << e.what() << "\n";
    return e.status() == CONFCAST_ERR_NO_SEGMENT ? 2 : 1;
  }
}
