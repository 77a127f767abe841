// The built-in HolmesGPT API schema, written in the
// --schema file format (docs/schema.md) so it goes through the same loader.
#include "schema.hpp"

namespace confcast::publisher {

std::string_view HolmesGptSchemaYaml() {
  static constexpr std::string_view kText = R"yaml(# HolmesGPT API config.
description: HolmesGPT API
fields:
  - path: llm
    type: map
  - path: llm.model
    type: string
    default: gpt-4o
    non_empty: true
  - path: llm.provider
    type: string
    default: openai
    non_empty: true
  - path: llm.endpoint
    type: string
    nullable: true
    default: null
    format: url
  - path: llm.max_retries
    type: int
    default: 3
    min: 0
    max: 10
  - path: llm.timeout_seconds
    type: int
    default: 60
    min: 1
    max: 3600
  - path: llm.temperature
    type: float
    default: 0.0
    min: 0.0
    max: 2.0
  - path: toolsets
    type: map
    default: {}
  - path: toolsets.*
    type: map
    open: true
  - path: toolsets.*.enabled
    type: bool
  - path: log_level
    type: string
    default: INFO
    enum: [DEBUG, INFO, WARNING, ERROR, CRITICAL]
    case_insensitive: true
    normalize: upper
)yaml";
  return kText;
}

}  // namespace confcast::publisher
