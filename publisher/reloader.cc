#include "reloader.hpp"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "config_file.hpp"
#include "config_sources.hpp"
#include "log.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher {
namespace {

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Leaves of a config by dotted path, as compact JSON, for the change log.
void Flatten(const nlohmann::json& node, const std::string& path, std::map<std::string, std::string>* out) {
  if (node.is_object() && !node.empty()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      Flatten(it.value(), path.empty() ? it.key() : path + "." + it.key(), out);
    }
  } else if (node.is_array() && !node.empty()) {
    for (size_t i = 0; i < node.size(); ++i) Flatten(node[i], path + "." + std::to_string(i), out);
  } else {
    (*out)[path] = node.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

std::string Clip(const std::string& s) { return s.size() <= 120 ? s : s.substr(0, 117) + "..."; }

// Whether `path` is one of `roots` or lies below one ("a.b" is below "a").
bool IsAtOrBelow(const std::string& path, const std::vector<std::string>& roots) {
  for (const std::string& root : roots) {
    if (path.size() >= root.size() && path.compare(0, root.size(), root) == 0 &&
        (path.size() == root.size() || root.empty() || path[root.size()] == '.')) {
      return true;
    }
  }
  return false;
}

}  // namespace

const char* TriggerName(Trigger trigger) {
  switch (trigger) {
    case Trigger::kStartup: return "startup";
    case Trigger::kFileEvent: return "file event";
    case Trigger::kPoll: return "poll";
    case Trigger::kSignal: return "SIGHUP";
  }
  return "?";
}

Reloader::Reloader(Options options, Schema schema, SegmentWriter& segment, Metrics& metrics)
    : options_(std::move(options)), schema_(std::move(schema)), segment_(segment), metrics_(metrics) {}

ReloadOutcome Reloader::Reload(Trigger trigger) {
  const double started = MonotonicSeconds();
  try {
    return ReloadOrThrow(trigger, started);
  } catch (const std::exception& e) {
    return Reject(ConfigError{Reason::kParse, SourcesLabel(options_.config_paths), 0, 0, "",
                              std::string("internal error while loading the config: ") + e.what()},
                  Sha256(std::string("internal\n") + e.what()), started);
  }
}

ReloadOutcome Reloader::ReloadOrThrow(Trigger trigger, double started) {
  auto read = ReadConfigSources(options_.config_paths, options_.max_config_bytes);
  if (auto* err = std::get_if<ConfigError>(&read)) {
    // No content to hash: an unreadable file is "the same bad content" as long
    // as it fails the same way.
    return Reject(*err, Sha256(std::string(ReasonName(err->reason)) + "\n" + err->ToString()), started);
  }
  const ConfigSources& file = std::get<ConfigSources>(read);
  LogFileSet(file);
  if (published_sha256_ && *published_sha256_ == file.sha256) {
    rejected_key_.reset();  // back to the good content: a later bad one counts again
    spdlog::debug("{}: unchanged (sha256 {})", TriggerName(trigger), file.sha256_hex.substr(0, 12));
    return {ReloadOutcome::Kind::kUnchanged, segment_.version(), std::nullopt};
  }
  if (rejected_key_ && *rejected_key_ == file.sha256) {
    return {ReloadOutcome::Kind::kRejectedAgain, segment_.version(), std::nullopt};
  }

  // The capacity bounds the work, not only the result: parsing, validation
  // and layout each stop at the first node that cannot fit, so no file keeps
  // this (the event loop's) thread busy for long, heartbeat included.
  auto parsed = ParseAndValidateSources(file.files, schema_, options_.strict, segment_.capacity());
  if (auto* err = std::get_if<ConfigError>(&parsed)) return Reject(*err, file.sha256, started);
  ValidatedConfig& valid = std::get<ValidatedConfig>(parsed);

  std::vector<std::string> secret_paths = SecretPaths(schema_, valid.config);
  auto built = snapshot::BuildSnapshotWithin(valid.config, segment_.capacity(), secret_paths);
  if (auto* err = std::get_if<snapshot::BuildError>(&built)) {
    // A node past the capacity is named in the message, as the earlier
    // stages do; other layout errors carry their path as usual.
    const bool too_large = err->too_large;
    std::string message = err->message;
    if (too_large && !err->path.empty()) message += ", path " + err->path;
    return Reject(ConfigError{too_large ? Reason::kTooLarge : Reason::kValidate,
                              SourcesLabel(options_.config_paths), 0, 0,
                              too_large ? "" : err->path, message},
                  file.sha256, started);
  }
  const snapshot::BuiltSnapshot& snap = std::get<snapshot::BuiltSnapshot>(built);
  // A file with thousands of unknown keys must not flood the log on every reload.
  constexpr size_t kMaxWarnings = 20;
  for (size_t i = 0; i < valid.warnings.size() && i < kMaxWarnings; ++i) {
    LogEvent(spdlog::level::warn, valid.warnings[i], {{"file", SourcesLabel(options_.config_paths)}});
  }
  if (valid.warnings.size() > kMaxWarnings) {
    LogEvent(spdlog::level::warn, std::to_string(valid.warnings.size() - kMaxWarnings) + " more warnings not shown",
             {{"file", SourcesLabel(options_.config_paths)}});
  }

  rejected_key_.reset();
  if (trigger == Trigger::kStartup && segment_.ActiveEquals(snap.words.data(), snap.words.size(), file.sha256)) {
    published_sha256_ = file.sha256;
    WarnIfOthersCanReadSecrets(valid.config);
    published_config_ = std::move(valid.config);
    published_secret_paths_ = std::move(secret_paths);
    const uint64_t version = segment_.version();
    metrics_.SetVersion(version);
    LogEvent(spdlog::level::info, "segment already holds this config; continuing",
             {{"version", version}, {"sha256", file.sha256_hex}, {"segment", segment_.location()}});
    return {ReloadOutcome::Kind::kAdopted, version, std::nullopt};
  }

  // Counters first, then the version: a reader that waits for the new
  // version and then reads the status never sees the old counters.
  const int64_t now_ns = RealtimeNs();
  layout::Stats& stats = segment_.stats();
  stats.reload_total++;
  stats.last_reload_unix_ns = now_ns;
  segment_.WriteStats();
  const uint64_t version = segment_.Publish(snap.words.data(), snap.words.size(), file.sha256, now_ns);
  const double duration = MonotonicSeconds() - started;
  metrics_.OnPublish(version, static_cast<double>(now_ns) * 1e-9, duration);
  published_sha256_ = file.sha256;
  LogChanges(version, file.sha256_hex, trigger, valid.config, secret_paths);
  WarnIfOthersCanReadSecrets(valid.config);
  published_config_ = std::move(valid.config);
  published_secret_paths_ = std::move(secret_paths);
  return {ReloadOutcome::Kind::kPublished, version, std::nullopt};
}

void Reloader::WarnIfOthersCanReadSecrets(const nlohmann::json& config) {
  // Readers check who wrote the segment, not who reads it: its mode alone
  // decides who sees every value in it, secrets included.
  if ((segment_.mode() & S_IROTH) == 0) return;
  const std::vector<std::string> set = SetSecretPaths(schema_, config);
  if (set.empty()) return;
  std::string paths;
  for (const std::string& path : set) paths += (paths.empty() ? "" : ", ") + path;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(segment_.mode()));
  LogEvent(spdlog::level::warn,
           "the segment " + segment_.location() + " is readable by users outside its group (mode " + mode +
               ") and holds secret values (" + paths +
               "): those users can read them; give the workers the publisher's group and "
               "use --segment-mode 0640",
           {{"segment", segment_.location()}, {"mode", std::string(mode)}, {"secret_paths", paths}});
}

void Reloader::LogFileSet(const ConfigSources& sources) {
  std::vector<std::string> names;
  for (const SourceFile& file : sources.files) names.push_back(file.name);
  if (names == files_) return;
  // Which files make up the config, whenever that set changes (a key added to
  // or removed from a mounted ConfigMap): the merge depends on it.
  LogEvent(spdlog::level::info,
           std::to_string(names.size()) + (names.size() == 1 ? " config file" : " config files") + " from " +
               std::to_string(options_.config_paths.size()) +
               (options_.config_paths.size() == 1 ? " source" : " sources"),
           {{"files", names}});
  files_ = std::move(names);
}

ReloadOutcome Reloader::Reject(const ConfigError& error, const std::array<unsigned char, 32>& content_key,
                               double started_seconds) {
  if (rejected_key_ && *rejected_key_ == content_key) {
    return {ReloadOutcome::Kind::kRejectedAgain, segment_.version(), error};
  }
  rejected_key_ = content_key;
  const double duration = MonotonicSeconds() - started_seconds;
  const std::string text = error.ToString();
  layout::Stats& stats = segment_.stats();
  stats.reload_errors_total++;
  stats.errors_by_reason[static_cast<size_t>(error.reason)]++;
  stats.last_error_unix_ns = RealtimeNs();
  const size_t n = std::min<size_t>(text.size(), layout::kLastErrorBytes - 1);
  std::memset(stats.last_error, 0, sizeof(stats.last_error));
  std::memcpy(stats.last_error, text.data(), n);
  stats.last_error_len = static_cast<uint32_t>(n);
  segment_.WriteStats();
  metrics_.OnReject(error.reason, duration);
  const uint64_t live = segment_.version();
  nlohmann::json fields = {{"reason", ReasonName(error.reason)}, {"file", error.file}, {"kept_version", live}};
  if (error.line > 0) {
    fields["line"] = error.line;
    fields["column"] = error.column;
  }
  if (!error.path.empty()) fields["path"] = error.path;
  LogEvent(spdlog::level::err, "rejected config: " + text + (live ? "; keeping the last good version" : ""), fields);
  return {ReloadOutcome::Kind::kRejected, live, error};
}

void Reloader::LogChanges(uint64_t version, const std::string& sha256_hex, Trigger trigger,
                          const nlohmann::json& next, const std::vector<std::string>& next_secret_paths) {
  std::map<std::string, std::string> before, after;
  if (!published_config_.is_null()) Flatten(published_config_, "", &before);
  Flatten(next, "", &after);
  // A path secret in either version is shown without its values, in both.
  const auto secret = [&](const std::string& path) {
    return IsAtOrBelow(path, next_secret_paths) || IsAtOrBelow(path, published_secret_paths_);
  };
  const auto shown = [&](const std::string& path, const std::string& value) {
    return secret(path) ? std::string(kRedacted) : Clip(value);
  };
  nlohmann::json changes = nlohmann::json::array();
  auto b = before.begin();
  auto a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      changes.push_back(b->first + ": " + shown(b->first, b->second) + " -> (removed)");
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      if (!published_config_.is_null()) changes.push_back(a->first + ": (absent) -> " + shown(a->first, a->second));
      ++a;
    } else {
      if (a->second != b->second) {
        changes.push_back(secret(a->first) ? a->first + ": changed"
                                           : a->first + ": " + Clip(b->second) + " -> " + Clip(a->second));
      }
      ++a;
      ++b;
    }
  }
  LogEvent(spdlog::level::info, "published config version " + std::to_string(version),
           {{"version", version}, {"sha256", sha256_hex.substr(0, 12)}, {"trigger", TriggerName(trigger)},
            {"segment", segment_.location()}, {"changes", changes}});
}

}  // namespace confcast::publisher
