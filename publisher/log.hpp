// log.hpp - the publisher's structured logging on top of spdlog.
//
// One call, LogEvent(level, message, fields), serves both formats: text
// (human-first: "message key=value ...") and json (one JSON object per line
// with time, level, message and the fields, for log pipelines). Thread-safe
// (spdlog's _mt sink); the metrics server's threads may log too.
#ifndef CONFCAST_PUBLISHER_LOG_HPP_
#define CONFCAST_PUBLISHER_LOG_HPP_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace confcast::publisher {

enum class LogFormat { kText, kJson };

// Replaces the default logger with one writing to stderr in the given format.
void InitLogging(LogFormat format, spdlog::level::level_enum level);

// Logs `message` with structured `fields` (a JSON object, may be empty).
void LogEvent(spdlog::level::level_enum level, std::string_view message,
              const nlohmann::json& fields = nlohmann::json::object());

// Parses "debug", "INFO", "warning", ...; false if unknown.
bool ParseLogLevel(std::string_view name, spdlog::level::level_enum* out);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_LOG_HPP_
