// config_sources.hpp - the config the publisher serves, read from one or more
// sources (each --config: a file, or a directory standing for its YAML files)
// and turned into one validated config.
//
// A directory stands for every regular file in it whose name ends in ".yaml"
// or ".yml" and does not start with "." (so the kubelet's "..data" and
// "..TIMESTAMP" entries are skipped), in byte order of the names. A file is
// named, read and reported through the directory path ("DIR/20-x.yaml"), the
// kubelet's symlinks followed. A directory with no such file adds nothing;
// when no source holds any file at all, there is nothing to publish (kIo).
//
// The files are merged in order (config_merge.hpp) and validated as one
// config. The limits hold for all files together: --max-config-bytes bounds
// their total size (at most that plus one byte is read in all), and the node,
// alias-expansion and snapshot-size counts run on from one file to the next,
// so a config that merges many files costs no more than one file could.
// (Those counts include values that a later file overrides: the sum of the
// files, not only the merged result, must fit the capacity.)
//
// The content hash: with a single source that is a regular file, the SHA-256
// of its bytes (so the hash of a one-file config never changed). Otherwise
// the SHA-256 over, for each file in merge order, its name as above and its
// bytes, each preceded by its length as 8 bytes big-endian:
//   len(name) name len(bytes) bytes   len(name) name len(bytes) bytes ...
// Rewriting the same content, or the kubelet swapping in an identical
// ConfigMap, therefore never changes it; renaming or reordering files does.
//
// Threading: no shared state; safe to call from any thread.
#ifndef CONFCAST_PUBLISHER_CONFIG_SOURCES_HPP_
#define CONFCAST_PUBLISHER_CONFIG_SOURCES_HPP_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config_error.hpp"
#include "schema.hpp"

namespace confcast::publisher {

// ".yaml" or ".yml" at the end, no "." at the start.
bool IsConfigFileName(std::string_view name);

struct SourceFile {
  std::string name;   // as reached through the --config path
  std::string bytes;
};

struct ConfigSources {
  std::vector<SourceFile> files;      // in merge order
  std::array<unsigned char, 32> sha256;
  std::string sha256_hex;
};

// Lists and reads the files of the sources. Errors: kIo (a source missing or
// unreadable, a listed file gone or unreadable, no file at all), kTooLarge
// (the files together above max_bytes).
std::variant<ConfigSources, ConfigError> ReadConfigSources(const std::vector<std::string>& paths,
                                                           uint64_t max_bytes);

// Parses every file, merges them and validates the result (schema.hpp's
// ParseAndValidate, which this is exactly for a single file). Errors name the
// file the offending value was written in.
std::variant<ValidatedConfig, ConfigError> ParseAndValidateSources(const std::vector<SourceFile>& files,
                                                                   const Schema& schema, bool strict,
                                                                   uint64_t capacity);

// The sources for messages: "/etc/app/config.yaml", or "/etc/cm, /etc/secret".
std::string SourcesLabel(const std::vector<std::string>& paths);

// "/etc/cm (3 files), /etc/secret (1 file)", from what the
// sources hold now (a source that cannot be listed says why).
std::string DescribeSources(const std::vector<std::string>& paths);

// "$CONFIG_FILE" split at ':' (empty parts dropped).
std::vector<std::string> SplitConfigPaths(std::string_view value);

}  // namespace confcast::publisher

#endif  // CONFCAST_PUBLISHER_CONFIG_SOURCES_HPP_
