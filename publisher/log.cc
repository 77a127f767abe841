#include "log.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>

#include <spdlog/sinks/stdout_sinks.h>

namespace confcast::publisher {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string TextValue(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

void InitLogging(LogFormat format, spdlog::level::level_enum level) {
  g_format = format;
  auto logger = std::make_shared<spdlog::logger>("confcast", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == LogFormat::kJson) {
    // The time and level come from spdlog; %v is the rest of the object, already JSON.
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l",%v})");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // a log line is worth more than its write(2)
  spdlog::set_default_logger(std::move(logger));
}

void LogEvent(spdlog::level::level_enum level, std::string_view message, const nlohmann::json& fields) {
  if (!spdlog::should_log(level)) return;
  std::string line;
  if (g_format == LogFormat::kJson) {
    line = "\"message\":" + nlohmann::json(std::string(message)).dump(-1, ' ', false,
                                                                       nlohmann::json::error_handler_t::replace);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        line += "," + nlohmann::json(it.key()).dump() + ":" +
                it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
  } else {
    // key=value pairs first, then lists (the changed paths), one item a line.
    line = std::string(message);
    std::string lists;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        if (it.value().is_array()) {
          for (const auto& item : it.value()) lists += "\n    " + TextValue(item);
        } else {
          line += " " + it.key() + "=" + TextValue(it.value());
        }
      }
    }
    line += lists;
  }
  spdlog::log(level, "{}", line);
}

bool ParseLogLevel(std::string_view name, spdlog::level::level_enum* out) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "warning") n = "warn";
  if (n == "critical") n = "critical";
  if (n == "fatal") n = "critical";
  const auto level = spdlog::level::from_str(n);
  if (level == spdlog::level::off && n != "off") return false;
  *out = level;
  return true;
}

}  // namespace confcast::publisher
