// reloader.hpp - one reload: read the config's sources, skip them if nothing
// changed, parse, merge and validate them, publish the result, or reject it
// and keep the last good one.
//
// Everything that decides whether a version is published lives here; the
// event loop (main.cc) only decides when to call Reload(). Counting follows
// A rejected content is counted once, however often the
// poll or an event brings it back; an unchanged hash publishes nothing.
//
// Threading: used from the publisher's loop thread only.
#ifndef CONFCAST_PUBLISHER_RELOADER_HPP_
#define CONFCAST_PUBLISHER_RELOADER_HPP_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_error.hpp"
#include "config_sources.hpp"
#include "metrics.hpp"
#include "schema.hpp"
#include "segment_writer.hpp"

namespace confcast::publisher {

enum class Trigger { kStartup, kFileEvent, kPoll, kSignal };
const char* TriggerName(Trigger trigger);

struct ReloadOutcome {
  enum class Kind {
    kPublished,       // a new version is live
    kAdopted,         // startup: the segment already held exactly this config
    kUnchanged,       // same hash as the published version: nothing to do
    kRejected,        // a new bad content: counted, logged, stored in the segment
    kRejectedAgain,   // the same bad content as last time: not counted again
  };
  Kind kind;
  uint64_t version = 0;               // the version live after this reload (0 = none)
  std::optional<ConfigError> error;   // for the rejections
};

class Reloader {
 public:
  struct Options {
    std::vector<std::string> config_paths;  // the sources, in merge order (config_sources.hpp)
    uint64_t max_config_bytes = 1 << 20;
    bool strict = false;
  };
  Reloader(Options options, Schema schema, SegmentWriter& segment, Metrics& metrics);

  // Never throws: anything unexpected while handling one version rejects
  // that version (the last good one stays), it never stops the publisher.
  ReloadOutcome Reload(Trigger trigger);

 private:
  ReloadOutcome ReloadOrThrow(Trigger trigger, double started);
  ReloadOutcome Reject(const ConfigError& error, const std::array<unsigned char, 32>& content_key,
                       double started_seconds);
  void LogFileSet(const ConfigSources& sources);
  void WarnIfOthersCanReadSecrets(const nlohmann::json& config);
  void LogChanges(uint64_t version, const std::string& sha256_hex, Trigger trigger, const nlohmann::json& next,
                  const std::vector<std::string>& next_secret_paths);

  Options options_;
  Schema schema_;
  SegmentWriter& segment_;
  Metrics& metrics_;
  std::optional<std::array<unsigned char, 32>> published_sha256_;  // of the live version, if we know it
  std::optional<std::array<unsigned char, 32>> rejected_key_;      // what was last rejected
  nlohmann::json published_config_;                               // for the change log
  std::vector<std::string> files_;                                 // the files last read, for the log
  std::vector<std::string> published_secret_paths_;                // of published_config_ (SecretPaths)
};

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_RELOADER_HPP_
