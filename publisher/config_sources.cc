// publisher/config_sources.cc - see config_sources.hpp.
#include "config_sources.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "config_file.hpp"
#include "config_merge.hpp"
#include "config_yaml.hpp"
#include "schema_validate.hpp"
#include "snapshot_builder.hpp"

namespace confcast::publisher {
namespace {

std::string Join(const std::string& directory, const std::string& name) {
  return !directory.empty() && directory.back() == '/' ? directory + name : directory + "/" + name;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The files a source stands for. A path that is not a directory (missing
// ones included) stands for itself: reading it reports what is wrong.
std::variant<std::vector<std::string>, ConfigError> ListSource(const std::string& path, bool* is_directory) {
  *is_directory = IsDirectory(path);
  if (!*is_directory) return std::vector<std::string>{path};
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) {
    return ConfigError{Reason::kIo, path, 0, 0, "", std::string("cannot list the directory: ") + std::strerror(errno)};
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (!IsConfigFileName(entry->d_name)) continue;
    // stat, not the d_type: the kubelet's entries are symlinks to the files.
    // A name that is not a regular file (a subdirectory "x.yaml", a FIFO) is
    // not part of the config; opening it could block or mean nothing.
    struct stat st {};
    if (::stat(Join(path, entry->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.emplace_back(entry->d_name);
  }
  if (errno != 0) {
    return ConfigError{Reason::kIo, path, 0, 0, "", std::string("cannot list the directory: ") + std::strerror(errno)};
  }
  std::sort(names.begin(), names.end());  // std::string compares bytes as unsigned char
  for (std::string& name : names) name = Join(path, name);
  return names;
}

void AppendLength(std::string& out, uint64_t n) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
}

}  // namespace

bool IsConfigFileName(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return (name.size() > 5 && name.ends_with(".yaml")) || (name.size() > 4 && name.ends_with(".yml"));
}

std::string SourcesLabel(const std::vector<std::string>& paths) {
  std::string label;
  for (const std::string& path : paths) label += (label.empty() ? "" : ", ") + path;
  return label;
}

std::vector<std::string> SplitConfigPaths(std::string_view value) {
  std::vector<std::string> paths;
  size_t begin = 0;
  while (begin <= value.size()) {
    size_t end = value.find(':', begin);
    if (end == std::string_view::npos) end = value.size();
    if (end > begin) paths.emplace_back(value.substr(begin, end - begin));
    begin = end + 1;
  }
  return paths;
}

std::string DescribeSources(const std::vector<std::string>& paths) {
  std::string text;
  for (const std::string& path : paths) {
    if (!text.empty()) text += ", ";
    text += path;
    bool is_directory = false;
    auto listed = ListSource(path, &is_directory);
    if (!is_directory) continue;
    if (auto* error = std::get_if<ConfigError>(&listed)) {
      text += " (" + error->message + ")";
    } else {
      const size_t n = std::get<std::vector<std::string>>(listed).size();
      text += " (" + std::to_string(n) + (n == 1 ? " file)" : " files)");
    }
  }
  return text;
}

std::variant<ConfigSources, ConfigError> ReadConfigSources(const std::vector<std::string>& paths,
                                                           uint64_t max_bytes) {
  std::vector<std::string> names;
  bool one_plain_file = paths.size() == 1;
  for (const std::string& path : paths) {
    bool is_directory = false;
    auto listed = ListSource(path, &is_directory);
    if (auto* error = std::get_if<ConfigError>(&listed)) return std::move(*error);
    if (is_directory) one_plain_file = false;
    for (std::string& name : std::get<std::vector<std::string>>(listed)) names.push_back(std::move(name));
  }
  if (names.empty()) {
    return ConfigError{Reason::kIo, SourcesLabel(paths), 0, 0, "",
                       "no config file: a directory source holds no regular file named *.yaml or *.yml"};
  }
  ConfigSources sources;
  uint64_t total = 0;
  std::string hashed;
  for (const std::string& name : names) {
    // Whatever the number of files, at most max_bytes + 1 bytes are read.
    auto read = ReadConfigFile(name, max_bytes - total);
    if (auto* error = std::get_if<ConfigError>(&read)) {
      if (error->reason == Reason::kTooLarge && !one_plain_file) {
        error->message = "with the " + std::to_string(total) +
                         " bytes of the files before it, the config is more than " + std::to_string(max_bytes) +
                         " bytes in all, above the limit (--max-config-bytes); it was not parsed";
      }
      return std::move(*error);
    }
    FileBytes& file = std::get<FileBytes>(read);
    total += file.bytes.size();
    if (one_plain_file) {
      sources.sha256 = file.sha256;
      sources.sha256_hex = file.sha256_hex;
    } else {
      AppendLength(hashed, name.size());
      hashed += name;
      AppendLength(hashed, file.bytes.size());
      hashed += file.bytes;
    }
    sources.files.push_back({name, std::move(file.bytes)});
  }
  if (!one_plain_file) {
    sources.sha256 = Sha256(hashed);
    sources.sha256_hex = ToHex(sources.sha256);
  }
  return sources;
}

std::variant<ValidatedConfig, ConfigError> ParseAndValidateSources(const std::vector<SourceFile>& files,
                                                                   const Schema& schema, bool strict,
                                                                   uint64_t capacity) {
  if (files.size() == 1) return ParseAndValidate(files[0].bytes, files[0].name, schema, strict, capacity);
  YamlLimits limits;
  limits.max_snapshot_bytes = capacity;
  limits.max_path_bytes = snapshot::kMaxPathBytes;
  std::vector<YamlDocument> documents;
  std::vector<std::string> names;
  for (const SourceFile& file : files) {
    auto parsed = ParseYamlDocument(file.bytes, file.name, limits);
    if (auto* error = std::get_if<ConfigError>(&parsed)) return std::move(*error);
    documents.push_back(std::move(std::get<YamlDocument>(parsed)));
    limits.used_before = documents.back().usage;
    names.push_back(file.name);
  }
  const YamlDocument document = MergeYamlDocuments(std::move(documents), std::move(names));
  return schema_detail::ValidateDocument(document, files.front().name, schema, strict, capacity);
}

}  // namespace confcast::publisher
