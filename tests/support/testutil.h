// Helpers for the tests, fuzzers and benchmarks, without gtest: a private
// temp dir, test data, the knobs of randomized campaigns, quiet or captured
// logs, and a fault rule in one call. The unit tests' helpers are in testharness.h.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/engine.h"

namespace remapfs::test {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "remapfs-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror(tmpl.c_str());
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Bytes that differ from sector to sector and write to write.
inline std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A number from the environment (campaign knobs), or `def`.
inline uint64_t EnvU64(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  return std::strtoull(v, nullptr, 0);
}

// The seeds of a randomized test: `defaults`, or PREFIX_SEED and the
// PREFIX_SEEDS - 1 that follow it when PREFIX_SEED is set.
inline std::vector<uint64_t> Seeds(const std::string& prefix, std::vector<uint64_t> defaults) {
  if (std::getenv((prefix + "_SEED").c_str()) == nullptr) return defaults;
  const uint64_t first = EnvU64((prefix + "_SEED").c_str(), 1);
  const uint64_t count = EnvU64((prefix + "_SEEDS").c_str(), 1);
  std::vector<uint64_t> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

// Silences the engine's log (thousands of remap lines) for a scope.
class QuietLogs {
 public:
  QuietLogs() : old_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
  ~QuietLogs() { spdlog::set_level(old_); }

 private:
  spdlog::level::level_enum old_;
};

// Collects the log lines of a scope (the default logger is swapped).
class LogCapture {
 public:
  LogCapture() : old_(spdlog::default_logger()), sink_(std::make_shared<Sink>()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }

  // Lines containing `needle`.
  size_t Count(const std::string& needle) const {
    size_t n = 0;
    for (const std::string& l : sink_->lines()) n += l.find(needle) != std::string::npos;
    return n;
  }
  std::vector<std::string> Lines() const { return sink_->lines(); }
  std::string All() const {
    std::string s;
    for (const std::string& l : sink_->lines()) s += l + "\n";
    return s;
  }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> lines() {
      std::lock_guard lock(mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.payload.data(), msg.payload.size());
    }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };
  std::shared_ptr<spdlog::logger> old_;
  std::shared_ptr<Sink> sink_;
};

// Makes writes to sectors [first, first + count) of `device` fail, always.
inline Status AddWriteFault(Engine* e, Device device, uint64_t first, uint64_t count = 1) {
  FaultRule r, added;
  r.device = device;
  r.sectors = {first, count};
  r.op = FaultOp::kWrite;
  return e->AddFaultRule(r, &added);
}

}  // namespace remapfs::test
