// read_benchmark.cc - what a worker pays to read its config: confcast's
// getters side by side with what a C++ service would write instead, on the
// same data (bench/data/holmesgpt_config.yaml), in the same binary, with the
// same flags and the same loop bodies.
//
// Names are OP/IMPL[/publish_1ms], Google Benchmark adds /real_time/threads:N.
//   confcast_key    a pre-resolved confcast::Key         (the hot path)
//   confcast_path   Subscriber::Get by dotted path
//   c_abi_path      confcast_get_* through libconfcast.so (what Python calls)
//   c_abi_key       confcast_get_*_key: a C key handle (confcast_key_new)
//   shared_mutex_*  std::shared_mutex guarding a pointer to the config
//   rwlock_*        pthread_rwlock_t, the same
//   atomic_sp_*     std::atomic<std::shared_ptr<const Config>> (C++20; load() per read)
//   *_map           lookup by the same dotted path in an unordered_map
//                   (transparent hash: no std::string is built per lookup)
//   *_struct        a typed struct field: no lookup at all (the baseline for a Key)
//   hold_release/*  a hold and its release in this process's worker-ledger
//                   entry (c_abi: confcast_hold + confcast_release; confcast:
//                   Subscriber::Hold + Release): what a request pays to be
//                   counted by `confcastctl wait --converged`
//   vdso_clock_gettime  CLOCK_REALTIME through the vDSO: the kernel's own
//                   seqlock read of a shared page, the physical anchor
//   atomic_load     one acquire load of a word: the floor
// /publish_1ms: a writer thread replaces the config every millisecond while
// the readers run (confcast: SegmentWriter::Publish, the publisher's own
// write; baselines: a new config swapped in under the exclusive lock / stored
// into the atomic). The probe benchmarks count how many reads overlapped a
// publish (an upper bound on seqlock retries, measured without touching the
// library).
//
// Threading: each benchmark runs on 1 and 2 reader threads (this machine has
// 2 cores). Everything the readers share is set up in main() before any
// benchmark runs; a writer thread lives from a benchmark run's Setup to its
// Teardown.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <cinttypes>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>

#include "bench_support.hpp"
#include "confcast/confcast.h"
#include "confcast/layout.hpp"
#include "confcast/subscriber.hpp"
#include "ledger.hpp"
#include "segment_writer.hpp"

namespace {

using confcast::bench::PreparedConfig;

// ---------------------------------------------------------------------------
// The baselines' config: every scalar by its dotted path, the HolmesGPT
// fields as a typed struct, and the JSON text of the whole config.
using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using ValueMap = std::unordered_map<std::string, Value, TransparentHash, std::equal_to<>>;

struct HolmesFields {
  std::string model, provider, log_level;
  std::optional<std::string> endpoint;
  int64_t max_retries = 0, timeout_seconds = 0;
  double temperature = 0;
};

struct Config {
  uint64_t version = 0;
  ValueMap values;
  HolmesFields fields;
  std::string json;
};

void Flatten(const nlohmann::json& node, const std::string& path, ValueMap* out) {
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) Flatten(*it, path.empty() ? it.key() : path + "." + it.key(), out);
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) Flatten(node[i], path + "." + std::to_string(i), out);
  } else if (node.is_boolean()) {
    (*out)[path] = node.get<bool>();
  } else if (node.is_number_integer()) {
    (*out)[path] = node.get<int64_t>();
  } else if (node.is_number()) {
    (*out)[path] = node.get<double>();
  } else if (node.is_string()) {
    (*out)[path] = node.get<std::string>();
  } else {
    (*out)[path] = std::monostate{};
  }
}

Config MakeConfig(const nlohmann::json& c, uint64_t version) {
  Config cfg;
  cfg.version = version;
  Flatten(c, "", &cfg.values);
  const auto& llm = c.at("llm");
  cfg.fields.model = llm.at("model").get<std::string>();
  cfg.fields.provider = llm.at("provider").get<std::string>();
  if (!llm.at("endpoint").is_null()) cfg.fields.endpoint = llm.at("endpoint").get<std::string>();
  cfg.fields.max_retries = llm.at("max_retries").get<int64_t>();
  cfg.fields.timeout_seconds = llm.at("timeout_seconds").get<int64_t>();
  cfg.fields.temperature = llm.at("temperature").get<double>();
  cfg.fields.log_level = c.at("log_level").get<std::string>();
  cfg.json = c.dump();
  return cfg;
}

// The baselines' getters: the same status codes and buffer rules as confcast.
int MapGet(const Config& c, std::string_view path, int64_t* out) {
  const auto it = c.values.find(path);
  if (it == c.values.end()) return CONFCAST_ERR_NOT_FOUND;
  if (const auto* v = std::get_if<int64_t>(&it->second)) {
    *out = *v;
    return CONFCAST_OK;
  }
  return CONFCAST_ERR_TYPE;
}
int MapGet(const Config& c, std::string_view path, double* out) {
  const auto it = c.values.find(path);
  if (it == c.values.end()) return CONFCAST_ERR_NOT_FOUND;
  if (const auto* v = std::get_if<double>(&it->second)) {
    *out = *v;
    return CONFCAST_OK;
  }
  if (const auto* v = std::get_if<int64_t>(&it->second)) {
    *out = static_cast<double>(*v);
    return CONFCAST_OK;
  }
  return CONFCAST_ERR_TYPE;
}
int MapGet(const Config& c, std::string_view path, bool* out) {
  const auto it = c.values.find(path);
  if (it == c.values.end()) return CONFCAST_ERR_NOT_FOUND;
  if (const auto* v = std::get_if<bool>(&it->second)) {
    *out = *v;
    return CONFCAST_OK;
  }
  return CONFCAST_ERR_TYPE;
}
int CopyOut(const std::string& s, char* buf, size_t cap, size_t* len) {
  *len = s.size();
  if (cap >= s.size()) {
    std::memcpy(buf, s.data(), s.size());
    if (cap > s.size()) buf[s.size()] = '\0';
    return CONFCAST_OK;
  }
  if (cap > 0) {
    std::memcpy(buf, s.data(), cap - 1);
    buf[cap - 1] = '\0';
  }
  return CONFCAST_ERR_TRUNCATED;
}
int MapGetString(const Config& c, std::string_view path, char* buf, size_t cap, size_t* len) {
  const auto it = c.values.find(path);
  if (it == c.values.end()) return CONFCAST_ERR_NOT_FOUND;
  if (const auto* v = std::get_if<std::string>(&it->second)) return CopyOut(*v, buf, cap, len);
  return CONFCAST_ERR_TYPE;
}

// std::shared_mutex (or pthread_rwlock_t) around a pointer to the current
// config; a writer builds the next config outside the lock and only swaps
// pointers inside it. Snapshot() is the natural "pin": a shared_ptr copy.
class SharedMutexStore {
 public:
  template <class Fn>
  auto Read(Fn&& fn) const {
    std::shared_lock lock(mu_);
    return fn(*current_);
  }
  std::shared_ptr<const Config> Snapshot() const {
    std::shared_lock lock(mu_);
    return current_;
  }
  void Replace(std::shared_ptr<const Config> next) {
    {
      std::unique_lock lock(mu_);
      current_.swap(next);
    }
    // the old config is released here, outside the lock
  }

 private:
  mutable std::shared_mutex mu_;
  std::shared_ptr<const Config> current_;
};

class RwlockStore {
 public:
  RwlockStore() { pthread_rwlock_init(&lock_, nullptr); }
  ~RwlockStore() { pthread_rwlock_destroy(&lock_); }
  template <class Fn>
  auto Read(Fn&& fn) const {
    pthread_rwlock_rdlock(&lock_);
    auto result = fn(*current_);
    pthread_rwlock_unlock(&lock_);
    return result;
  }
  std::shared_ptr<const Config> Snapshot() const {
    return Read([this](const Config&) { return current_; });
  }
  void Replace(std::shared_ptr<const Config> next) {
    pthread_rwlock_wrlock(&lock_);
    current_.swap(next);
    pthread_rwlock_unlock(&lock_);
  }

 private:
  mutable pthread_rwlock_t lock_;
  std::shared_ptr<const Config> current_;
};

class AtomicSharedPtrStore {
 public:
  template <class Fn>
  auto Read(Fn&& fn) const {
    const std::shared_ptr<const Config> c = current_.load();
    return fn(*c);
  }
  std::shared_ptr<const Config> Snapshot() const { return current_.load(); }
  void Replace(std::shared_ptr<const Config> next) { current_.store(std::move(next)); }

 private:
  std::atomic<std::shared_ptr<const Config>> current_;
};

// ---------------------------------------------------------------------------
// A thread that calls publish_once() every millisecond (absolute deadlines,
// so a late wake-up does not drift the rate; missed periods are skipped).
class PeriodicWriter {
 public:
  explicit PeriodicWriter(std::function<void()> publish_once) : publish_once_(std::move(publish_once)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~PeriodicWriter() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  uint64_t publishes() const { return publishes_.load(std::memory_order_relaxed); }

 private:
  void Loop() {
    constexpr long kPeriodNs = 1000000;
    timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!stop_.load(std::memory_order_relaxed)) {
      next.tv_nsec += kPeriodNs;
      if (next.tv_nsec >= 1000000000L) {
        next.tv_sec++;
        next.tv_nsec -= 1000000000L;
      }
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
      publish_once_();
      publishes_.fetch_add(1, std::memory_order_relaxed);
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec > next.tv_sec + 1) next = now;  // fell far behind (a loaded machine): do not burst
    }
  }
  std::function<void()> publish_once_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> publishes_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// Everything the readers share, set up once in main().
struct World {
  std::string segment;
  std::string ledger_dir;
  std::unique_ptr<confcast::publisher::SegmentWriter> writer;
  PreparedConfig versions[2];
  uint64_t confcast_publishes = 0;  // only touched by the one writer at a time
  std::optional<confcast::Subscriber> sub;
  confcast_subscriber* c_sub = nullptr;
  confcast_key* c_max_retries = nullptr;  // C key handles, made once like the static Keys
  confcast_key* c_model = nullptr;
  const uint8_t* header_map = nullptr;  // our own read-only map of the header, for the retry probe

  std::shared_ptr<const Config> configs[2];
  uint64_t baseline_publishes = 0;
  SharedMutexStore shared_mutex;
  RwlockStore rwlock;
  AtomicSharedPtrStore atomic_sp;

  alignas(64) std::atomic<uint64_t> word{42};
  std::unique_ptr<PeriodicWriter> periodic;
};
World* g = nullptr;

const confcast::Key kMaxRetriesKey("llm.max_retries");
const confcast::Key kTemperatureKey("llm.temperature");
const confcast::Key kCoreEnabledKey("toolsets.kubernetes/core.enabled");
constexpr std::string_view kMaxRetries = "llm.max_retries";
constexpr std::string_view kTemperature = "llm.temperature";
constexpr std::string_view kCoreEnabled = "toolsets.kubernetes/core.enabled";
constexpr std::string_view kModel = "llm.model";
constexpr std::string_view kToolsets[] = {"kubernetes/core", "kubernetes/logs", "kubernetes/live-metrics",
                                          "helm/core", "prometheus/metrics", "grafana/loki"};
constexpr size_t kToolsetCount = sizeof(kToolsets) / sizeof(kToolsets[0]);

// "toolsets.NAME.enabled" into buf: what "is this toolset on?" costs to
// ask by name, for confcast and the baselines alike.
std::string_view ToolsetEnabledPath(std::string_view name, char* buf) {
  constexpr std::string_view kPrefix = "toolsets.", kSuffix = ".enabled";
  std::memcpy(buf, kPrefix.data(), kPrefix.size());
  std::memcpy(buf + kPrefix.size(), name.data(), name.size());
  std::memcpy(buf + kPrefix.size() + name.size(), kSuffix.data(), kSuffix.size());
  return std::string_view(buf, kPrefix.size() + name.size() + kSuffix.size());
}

void PublishConfcastNext() {
  const PreparedConfig& p = g->versions[++g->confcast_publishes & 1];
  g->writer->Publish(p.snapshot.words.data(), p.snapshot.words.size(), p.sha256, confcast::publisher::RealtimeNs());
}

template <class Store>
Store& StoreOf();
template <>
SharedMutexStore& StoreOf<SharedMutexStore>() { return g->shared_mutex; }
template <>
RwlockStore& StoreOf<RwlockStore>() { return g->rwlock; }
template <>
AtomicSharedPtrStore& StoreOf<AtomicSharedPtrStore>() { return g->atomic_sp; }

template <class Store>
void PublishBaselineNext() {
  // A fresh copy each time, as a real reload builds a new config.
  auto next = std::make_shared<Config>(*g->configs[++g->baseline_publishes & 1]);
  next->version = g->baseline_publishes + 1;
  StoreOf<Store>().Replace(std::move(next));
}

void StartConfcastWriter(const benchmark::State&) { g->periodic = std::make_unique<PeriodicWriter>(PublishConfcastNext); }
template <class Store>
void StartBaselineWriter(const benchmark::State&) {
  g->periodic = std::make_unique<PeriodicWriter>(PublishBaselineNext<Store>);
}
void StopWriter(const benchmark::State&) { g->periodic.reset(); }

// Publishes per second seen by this run (thread 0 reports it).
void ReportWriter(benchmark::State& state, int64_t started_ns, uint64_t publishes_at_start) {
  if (state.thread_index() != 0 || !g->periodic) return;
  const double seconds = static_cast<double>(confcast::publisher::RealtimeNs() - started_ns) * 1e-9;
  state.counters["publishes_per_s"] =
      benchmark::Counter(static_cast<double>(g->periodic->publishes() - publishes_at_start) / seconds);
}

// Runs body() per iteration; in a /publish_1ms run also reports the writer's rate.
template <class Body>
void Loop(benchmark::State& state, Body&& body) {
  const int64_t started = confcast::publisher::RealtimeNs();
  const uint64_t before = g->periodic ? g->periodic->publishes() : 0;
  for (auto _ : state) body();
  ReportWriter(state, started, before);
}

// Checks one read before timing, so that a benchmark never measures a failing path.
bool Expect(benchmark::State& state, int rc, const char* what) {
  if (rc == CONFCAST_OK) return true;
  state.SkipWithError((std::string(what) + ": " + confcast_strerror(rc)).c_str());
  return false;
}

// ---------------------------------------------------------------------------
// confcast
void ConfcastKeyInt(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  int64_t v = 0;
  if (!Expect(state, sub.Get(kMaxRetriesKey, &v), "key int")) return;
  Loop(state, [&] {
    int rc = sub.Get(kMaxRetriesKey, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastPathInt(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  int64_t v = 0;
  if (!Expect(state, sub.Get(kMaxRetries, &v), "path int")) return;
  Loop(state, [&] {
    int rc = sub.Get(kMaxRetries, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void CAbiPathInt(benchmark::State& state) {
  confcast_subscriber* const c_sub = g->c_sub;
  int64_t v = 0;
  if (!Expect(state, confcast_get_int(c_sub, "llm.max_retries", &v, nullptr), "c abi int")) return;
  Loop(state, [&] {
    int rc = confcast_get_int(c_sub, "llm.max_retries", &v, nullptr);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void CAbiKeyInt(benchmark::State& state) {
  confcast_subscriber* const c_sub = g->c_sub;
  const confcast_key* const key = g->c_max_retries;
  int64_t v = 0;
  if (!Expect(state, confcast_get_int_key(c_sub, key, &v, nullptr), "c abi key int")) return;
  Loop(state, [&] {
    int rc = confcast_get_int_key(c_sub, key, &v, nullptr);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void CAbiKeyString(benchmark::State& state) {
  confcast_subscriber* const c_sub = g->c_sub;
  const confcast_key* const key = g->c_model;
  char buf[256];
  size_t len = 0;
  if (!Expect(state, confcast_get_string_key(c_sub, key, buf, sizeof(buf), &len, nullptr), "c abi key string")) {
    return;
  }
  Loop(state, [&] {
    int rc = confcast_get_string_key(c_sub, key, buf, sizeof(buf), &len, nullptr);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  });
}
void ConfcastKeyDouble(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  double v = 0;
  if (!Expect(state, sub.Get(kTemperatureKey, &v), "key double")) return;
  Loop(state, [&] {
    int rc = sub.Get(kTemperatureKey, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastPathDouble(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  double v = 0;
  if (!Expect(state, sub.Get(kTemperature, &v), "path double")) return;
  Loop(state, [&] {
    int rc = sub.Get(kTemperature, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastKeyBool(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  bool v = false;
  if (!Expect(state, sub.Get(kCoreEnabledKey, &v), "key bool")) return;
  Loop(state, [&] {
    int rc = sub.Get(kCoreEnabledKey, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastPathBool(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  bool v = false;
  if (!Expect(state, sub.Get(kCoreEnabled, &v), "path bool")) return;
  Loop(state, [&] {
    int rc = sub.Get(kCoreEnabled, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastPathString(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  char buf[256];
  size_t len = 0;
  if (!Expect(state, sub.GetString(kModel, buf, sizeof(buf), &len), "path string")) return;
  Loop(state, [&] {
    int rc = sub.GetString(kModel, buf, sizeof(buf), &len);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  });
}
void CAbiPathString(benchmark::State& state) {
  confcast_subscriber* const c_sub = g->c_sub;
  char buf[256];
  size_t len = 0;
  if (!Expect(state, confcast_get_string(c_sub, "llm.model", buf, sizeof(buf), &len, nullptr), "c abi string")) {
    return;
  }
  Loop(state, [&] {
    int rc = confcast_get_string(c_sub, "llm.model", buf, sizeof(buf), &len, nullptr);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  });
}
void ConfcastToolset(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  char path[128];
  bool v = false;
  size_t i = 0;
  for (std::string_view name : kToolsets) {
    if (!Expect(state, sub.Get(ToolsetEnabledPath(name, path), &v), "toolset")) return;
  }
  Loop(state, [&] {
    int rc = sub.Get(ToolsetEnabledPath(kToolsets[i], path), &v);
    i = i + 1 == kToolsetCount ? 0 : i + 1;
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastVersion(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  Loop(state, [&] {
    uint64_t v = sub.version();
    benchmark::DoNotOptimize(v);
  });
}
void ConfcastPin(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  confcast::Snapshot probe;
  if (!Expect(state, sub.TryPin(&probe), "pin")) return;
  Loop(state, [&] {
    confcast::Snapshot s;
    int rc = sub.TryPin(&s);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(s);
  });
}
void CAbiHoldRelease(benchmark::State& state) {
  confcast_subscriber* const c_sub = g->c_sub;
  const uint64_t version = confcast_version(c_sub);
  if (!Expect(state, confcast_hold(c_sub, version), "hold") || !Expect(state, confcast_release(c_sub, version), "release")) {
    return;
  }
  Loop(state, [&] {
    int a = confcast_hold(c_sub, version);
    int b = confcast_release(c_sub, version);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  });
}
void ConfcastHoldRelease(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  const uint64_t version = sub.version();
  if (!Expect(state, sub.Hold(version), "hold") || !Expect(state, sub.Release(version), "release")) return;
  Loop(state, [&] {
    int a = sub.Hold(version);
    int b = sub.Release(version);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  });
}
void ConfcastSnapshotJson(benchmark::State& state) {
  const confcast::Subscriber& sub = *g->sub;
  std::string buf(64 * 1024, '\0');
  size_t len = 0;
  if (!Expect(state, sub.SnapshotJson(buf.data(), buf.size(), &len), "snapshot json")) return;
  state.counters["json_bytes"] = benchmark::Counter(static_cast<double>(len), benchmark::Counter::kAvgThreads);
  Loop(state, [&] {
    int rc = sub.SnapshotJson(buf.data(), buf.size(), &len);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  });
}

// Reads through a Key while checking, outside the library, whether the read
// overlapped a publish (the version moved) and whether the slot that was
// active when the read started was rewritten meanwhile (the only way a latch
// reader can be made to retry). Both are upper bounds on the retries.
void ConfcastKeyIntRetryProbe(benchmark::State& state) {
  const auto* h = reinterpret_cast<const confcast::layout::SegmentHeader*>(g->header_map);
  const auto* h_bytes = g->header_map;
  const uint64_t stride = h->slot_stride;
  auto slot_seq = [&](uint64_t slot) {
    const auto* s = reinterpret_cast<const confcast::layout::SlotHeader*>(h_bytes + confcast::layout::kHeaderSize +
                                                                          slot * stride);
    return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
  };
  const confcast::Subscriber& sub = *g->sub;
  int64_t v = 0;
  uint64_t overlapped = 0, rewritten = 0;
  Loop(state, [&] {
    const uint64_t active = __atomic_load_n(&h->active_slot, __ATOMIC_ACQUIRE);
    const uint64_t seq_before = slot_seq(active);
    const uint64_t version_before = sub.version();
    int rc = sub.Get(kMaxRetriesKey, &v);
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
    overlapped += sub.version() != version_before;
    rewritten += slot_seq(active) != seq_before;
  });
  state.counters["overlapped_publish_per_read"] =
      benchmark::Counter(static_cast<double>(overlapped), benchmark::Counter::kAvgIterations);
  state.counters["slot_rewritten_per_read"] =
      benchmark::Counter(static_cast<double>(rewritten), benchmark::Counter::kAvgIterations);
  state.counters["overlapped_reads"] = static_cast<double>(overlapped);
  state.counters["slot_rewritten_reads"] = static_cast<double>(rewritten);
}

// ---------------------------------------------------------------------------
// baselines (the same loop bodies, the same data)
template <class Store>
void MapInt(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  int64_t v = 0;
  if (!Expect(state, store.Read([&](const Config& c) { return MapGet(c, kMaxRetries, &v); }), "map int")) return;
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) { return MapGet(c, kMaxRetries, &v); });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
template <class Store>
void StructInt(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  int64_t v = 0;
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) {
      v = c.fields.max_retries;
      return CONFCAST_OK;
    });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
template <class Store>
void MapDouble(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  double v = 0;
  if (!Expect(state, store.Read([&](const Config& c) { return MapGet(c, kTemperature, &v); }), "map double")) return;
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) { return MapGet(c, kTemperature, &v); });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
template <class Store>
void MapBool(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  bool v = false;
  if (!Expect(state, store.Read([&](const Config& c) { return MapGet(c, kCoreEnabled, &v); }), "map bool")) return;
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) { return MapGet(c, kCoreEnabled, &v); });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
template <class Store>
void MapString(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  char buf[256];
  size_t len = 0;
  if (!Expect(state, store.Read([&](const Config& c) { return MapGetString(c, kModel, buf, sizeof(buf), &len); }),
              "map string")) {
    return;
  }
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) { return MapGetString(c, kModel, buf, sizeof(buf), &len); });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  });
}
template <class Store>
void MapToolset(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  char path[128];
  bool v = false;
  size_t i = 0;
  for (std::string_view name : kToolsets) {
    const std::string_view p = ToolsetEnabledPath(name, path);
    if (!Expect(state, store.Read([&](const Config& c) { return MapGet(c, p, &v); }), "map toolset")) return;
  }
  Loop(state, [&] {
    const std::string_view p = ToolsetEnabledPath(kToolsets[i], path);
    int rc = store.Read([&](const Config& c) { return MapGet(c, p, &v); });
    i = i + 1 == kToolsetCount ? 0 : i + 1;
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(v);
  });
}
template <class Store>
void StoreVersion(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  Loop(state, [&] {
    uint64_t v = store.Read([](const Config& c) { return c.version; });
    benchmark::DoNotOptimize(v);
  });
}
// The pin of a baseline is a shared_ptr copy: shared ownership of one
// immutable config (confcast's Pin must copy: refcounts cannot cross processes).
template <class Store>
void StorePin(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  Loop(state, [&] {
    std::shared_ptr<const Config> s = store.Snapshot();
    benchmark::DoNotOptimize(s);
  });
}
template <class Store>
void StoreSnapshotJson(benchmark::State& state) {
  Store& store = StoreOf<Store>();
  std::string buf(64 * 1024, '\0');
  size_t len = 0;
  Loop(state, [&] {
    int rc = store.Read([&](const Config& c) { return CopyOut(c.json, buf.data(), buf.size(), &len); });
    benchmark::DoNotOptimize(rc);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  });
}

// ---------------------------------------------------------------------------
// anchors
void VdsoClockGettime(benchmark::State& state) {
  Loop(state, [&] {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    benchmark::DoNotOptimize(ts);
  });
}
void AtomicLoad(benchmark::State& state) {
  Loop(state, [&] {
    uint64_t v = g->word.load(std::memory_order_acquire);
    benchmark::DoNotOptimize(v);
  });
}

// ---------------------------------------------------------------------------
using WriterStart = void (*)(const benchmark::State&);

void Add(const std::string& name, void (*fn)(benchmark::State&), WriterStart writer = nullptr) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  b->UseRealTime()->Threads(1)->Threads(2);
  if (writer) b->Setup(writer)->Teardown(StopWriter);
}

template <class Store>
void AddBaseline(const std::string& prefix, WriterStart writer) {
  Add("get_int/" + prefix + "_map", MapInt<Store>);
  Add("get_int/" + prefix + "_struct", StructInt<Store>);
  Add("get_double/" + prefix + "_map", MapDouble<Store>);
  Add("get_bool/" + prefix + "_map", MapBool<Store>);
  Add("get_string/" + prefix + "_map", MapString<Store>);
  Add("toolset_enabled/" + prefix + "_map", MapToolset<Store>);
  Add("version/" + prefix, StoreVersion<Store>);
  Add("pin/" + prefix, StorePin<Store>);
  Add("snapshot_json/" + prefix, StoreSnapshotJson<Store>);
  Add("get_int/" + prefix + "_map/publish_1ms", MapInt<Store>, writer);
  Add("get_int/" + prefix + "_struct/publish_1ms", StructInt<Store>, writer);
  Add("get_string/" + prefix + "_map/publish_1ms", MapString<Store>, writer);
  Add("pin/" + prefix + "/publish_1ms", StorePin<Store>, writer);
}

void RegisterAll() {
  Add("get_int/confcast_key", ConfcastKeyInt);
  Add("get_int/confcast_path", ConfcastPathInt);
  Add("get_int/c_abi_path", CAbiPathInt);
  Add("get_int/c_abi_key", CAbiKeyInt);
  Add("get_double/confcast_key", ConfcastKeyDouble);
  Add("get_double/confcast_path", ConfcastPathDouble);
  Add("get_bool/confcast_key", ConfcastKeyBool);
  Add("get_bool/confcast_path", ConfcastPathBool);
  Add("get_string/confcast_path", ConfcastPathString);
  Add("get_string/c_abi_path", CAbiPathString);
  Add("get_string/c_abi_key", CAbiKeyString);
  Add("toolset_enabled/confcast_path", ConfcastToolset);
  Add("version/confcast", ConfcastVersion);
  Add("pin/confcast", ConfcastPin);
  Add("snapshot_json/confcast", ConfcastSnapshotJson);
  Add("hold_release/c_abi", CAbiHoldRelease);
  Add("hold_release/confcast", ConfcastHoldRelease);
  Add("get_int/confcast_key/publish_1ms", ConfcastKeyInt, StartConfcastWriter);
  Add("get_int/confcast_path/publish_1ms", ConfcastPathInt, StartConfcastWriter);
  Add("get_int/c_abi_path/publish_1ms", CAbiPathInt, StartConfcastWriter);
  Add("get_int/c_abi_key/publish_1ms", CAbiKeyInt, StartConfcastWriter);
  Add("get_string/confcast_path/publish_1ms", ConfcastPathString, StartConfcastWriter);
  Add("pin/confcast/publish_1ms", ConfcastPin, StartConfcastWriter);
  Add("retry_probe/confcast_key", ConfcastKeyIntRetryProbe);
  Add("retry_probe/confcast_key/publish_1ms", ConfcastKeyIntRetryProbe, StartConfcastWriter);

  AddBaseline<SharedMutexStore>("shared_mutex", StartBaselineWriter<SharedMutexStore>);
  AddBaseline<RwlockStore>("rwlock", StartBaselineWriter<RwlockStore>);
  AddBaseline<AtomicSharedPtrStore>("atomic_sp", StartBaselineWriter<AtomicSharedPtrStore>);

  Add("anchor/vdso_clock_gettime", VdsoClockGettime);
  Add("anchor/atomic_load", AtomicLoad);
}

void SetUpWorld() {
  g = new World();
  g->versions[0] = confcast::bench::PrepareHolmesGpt(false);
  g->versions[1] = confcast::bench::PrepareHolmesGpt(true);
  g->segment = confcast::bench::UniqueSegmentName("read");
  confcast::bench::SegmentCleanup::Register(g->segment);
  confcast::publisher::SegmentWriter::Options options;
  options.segment = g->segment;
  options.capacity = 1 << 20;  // the publisher's default --capacity
  options.mode = 0600;
  auto opened = confcast::publisher::SegmentWriter::Open(options);
  if (auto* failure = std::get_if<confcast::publisher::SegmentWriter::Failure>(&opened)) {
    throw std::runtime_error(failure->message);
  }
  g->writer = std::move(std::get<std::unique_ptr<confcast::publisher::SegmentWriter>>(opened));
  const PreparedConfig& first = g->versions[0];
  g->writer->Publish(first.snapshot.words.data(), first.snapshot.words.size(), first.sha256,
                     confcast::publisher::RealtimeNs());
  // The worker ledger the publisher would make, so that the readers below register as workers do.
  g->ledger_dir = confcast::ledger::DirectoryFor(g->writer->location());
  if (std::string problem = confcast::ledger::EnsureDirectory(g->ledger_dir, options.mode); !problem.empty()) {
    throw std::runtime_error(problem);
  }
  g->sub.emplace(g->segment);
  if (!g->sub->in_ledger()) throw std::runtime_error("the benchmark's subscriber is not in the worker ledger");
  if (int rc = confcast_open(g->segment.c_str(), &g->c_sub); rc != CONFCAST_OK) {
    throw std::runtime_error(std::string("confcast_open: ") + confcast_strerror(rc));
  }
  if (confcast_key_new("llm.max_retries", &g->c_max_retries) != CONFCAST_OK ||
      confcast_key_new("llm.model", &g->c_model) != CONFCAST_OK) {
    throw std::runtime_error("confcast_key_new");
  }
  const int fd = shm_open(("/" + g->segment).c_str(), O_RDONLY | O_CLOEXEC, 0);
  void* header = fd >= 0 ? mmap(nullptr, confcast::layout::SegmentSize(g->writer->capacity()), PROT_READ, MAP_SHARED,
                                fd, 0)
                         : MAP_FAILED;
  if (fd >= 0) close(fd);
  if (header == MAP_FAILED) throw std::runtime_error("cannot map the segment for the retry probe");
  g->header_map = static_cast<const uint8_t*>(header);

  for (int i = 0; i < 2; ++i) g->configs[i] = std::make_shared<const Config>(MakeConfig(g->versions[i].config, i + 1));
  g->shared_mutex.Replace(g->configs[0]);
  g->rwlock.Replace(g->configs[0]);
  g->atomic_sp.Replace(g->configs[0]);
}

void TearDownWorld() {
  confcast_key_free(g->c_max_retries);
  confcast_key_free(g->c_model);
  confcast_close(g->c_sub);
  g->sub.reset();  // the last reader gone, its ledger entry is gone: the directory is empty
  rmdir(g->ledger_dir.c_str());
  g->writer.reset();
  confcast::bench::SegmentCleanup::UnlinkAll();
}

void RegisterWithContext() {
  benchmark::AddCustomContext("config", confcast::bench::DataPath("holmesgpt_config.yaml"));
  benchmark::AddCustomContext("snapshot_bytes", std::to_string(g->versions[0].snapshot.size_bytes()));
  RegisterAll();
}

}  // namespace

int main(int argc, char** argv) {
  return confcast::bench::RunWithWorld(argc, argv, "read_benchmark", SetUpWorld, RegisterWithContext, TearDownWorld);
}
