// log.hpp - the publisher's structured logging on top of spdlog.
//
// One call, LogEvent(level, message, fields), serves both formats:
//  * text (the default, human-first): "TIME LEVEL message key=value ..."; a
//    value with spaces, quotes or control characters is JSON-quoted, and a
//    list (the changed paths of a reload) follows, one item an indented line.
//  * json: exactly one JSON object per line, {"time", "level", "message",
//    ...fields}, for log pipelines. The object is built by a spdlog formatter,
//    so a direct spdlog::info("...") call anywhere in the process also comes
//    out as a valid JSON line; bytes that are not UTF-8 (from a bad config
//    file) become U+FFFD. The schema is in docs/observability.md.
//
// Threading: thread-safe (one stderr sink with spdlog's mutex); the fields of
// an event travel to the formatter in a thread_local, which works because the
// logger is synchronous (the formatter runs on the logging thread).
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

// Logs `message` with structured `fields` (a JSON object, may be empty). The
// keys time, level and message are reserved; a field named so is logged as
// _time, _level, _message.
void LogEvent(spdlog::level::level_enum level, std::string_view message,
              const nlohmann::json& fields = nlohmann::json::object());

// Parses "debug", "INFO", "warning", ...; false if unknown.
bool ParseLogLevel(std::string_view name, spdlog::level::level_enum* out);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_LOG_HPP_
