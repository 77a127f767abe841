#include "log.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "one_line.hpp"

namespace confcast::publisher {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

// The fields of the event being logged on this thread, already serialised
// as `,"key":value...`; null for a plain spdlog call.
thread_local const std::string* t_json_fields = nullptr;

// Log text comes from config files: never let a byte break the JSON.
std::string JsonString(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
std::string JsonValue(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsReservedKey(const std::string& key) { return key == "time" || key == "level" || key == "message"; }

// RFC 3339 in UTC with microseconds: what log pipelines parse without a hint.
void AppendUtcTime(std::chrono::system_clock::time_point when, spdlog::memory_buf_t& dest) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(micros / 1000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[48];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  const int m = std::snprintf(buf + n, sizeof(buf) - n, ".%06lldZ", static_cast<long long>(micros % 1000000));
  dest.append(buf, buf + n + static_cast<size_t>(m));
}

class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    std::string rest;
    try {
      rest = ",\"level\":" + JsonString(std::string_view(level.data(), level.size())) +
             ",\"message\":" + JsonString(payload);
      if (t_json_fields) rest += *t_json_fields;
    } catch (const std::exception&) {  // allocation failure: still one valid line
      rest = ",\"level\":\"error\",\"message\":\"log line lost\"";
    }
    dest.append(std::string_view("{\"time\":\""));
    AppendUtcTime(msg.time, dest);
    dest.push_back('"');
    dest.append(rest.data(), rest.data() + rest.size());
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

// Text values stay bare when unambiguous (key=value split on spaces),
// JSON-quoted otherwise; so do messages, on their control characters only:
// one event is one line, plus its list lines.
bool IsBareText(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b > 0x20 && b != 0x7f && c != '"' && c != '=' && c != '\\';
  });
}
std::string TextValue(const nlohmann::json& v) {
  if (!v.is_string()) return JsonValue(v);
  const std::string& s = v.get_ref<const std::string&>();
  return IsBareText(s) ? s : JsonValue(v);
}

}  // namespace

void InitLogging(LogFormat format, spdlog::level::level_enum level) {
  g_format = format;
  auto logger = std::make_shared<spdlog::logger>("confcast", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
    // spdlog reports its own failures on stderr; keep those lines JSON too.
    logger->set_error_handler([](const std::string& what) {
      const std::string line = "{\"level\":\"error\",\"message\":" + JsonString("spdlog: " + what) + "}\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
    });
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // a log line is worth more than its write(2)
  spdlog::set_default_logger(std::move(logger));
}

void LogEvent(spdlog::level::level_enum level, std::string_view message, const nlohmann::json& fields) {
  if (!spdlog::should_log(level)) return;
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (g_format == LogFormat::kJson) {
    std::string serialised;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        serialised += ',' + JsonString(IsReservedKey(it.key()) ? "_" + it.key() : it.key()) + ':' +
                      JsonValue(it.value());
      }
    }
    t_json_fields = &serialised;
    logger->log(level, spdlog::string_view_t(message.data(), message.size()));
    t_json_fields = nullptr;
    return;
  }
  // key=value pairs first, then lists (the changed paths), one item a line.
  std::string line = OneLine(message);
  std::string lists;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (it.value().is_array()) {
        for (const auto& item : it.value()) {
          lists += "\n    " + OneLine(item.is_string() ? item.get_ref<const std::string&>() : JsonValue(item));
        }
      } else {
        line += " " + it.key() + "=" + TextValue(it.value());
      }
    }
  }
  line += lists;
  logger->log(level, spdlog::string_view_t(line.data(), line.size()));
}

bool ParseLogLevel(std::string_view name, spdlog::level::level_enum* out) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "warning") n = "warn";
  if (n == "fatal") n = "critical";
  const auto level = spdlog::level::from_str(n);
  if (level == spdlog::level::off && n != "off") return false;
  *out = level;
  return true;
}

}  // namespace confcast::publisher
