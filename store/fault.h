// Fault injection, in the manner of dm-dust and dm-flakey: rules make chosen
// sectors of MAIN or SPARE fail reads, writes or both (always, the first N
// times, or with a seeded probability), or make them slow. FaultyBackend
// applies the rules to every request; the engine always wraps MAIN and SPARE
// in one, so rules set live reach the real code path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "store/backend.h"
#include "store/mutex.h"

namespace remapfs {

enum class Device : uint8_t { kMain, kSpare };
enum class FaultOp : uint8_t { kRead, kWrite, kBoth };

std::string_view DeviceName(Device d);
std::string_view FaultOpName(FaultOp op);
std::optional<Device> ParseDevice(std::string_view s);
std::optional<FaultOp> ParseFaultOp(std::string_view s);

// An inclusive-start, counted range of sectors.
struct SectorRange {
  uint64_t first = 0;
  uint64_t count = 0;
  uint64_t end() const { return first + count; }  // exclusive
};
// Parses "N", "A-B" (inclusive) or "A+COUNT". Rejects empty, reversed and
// overflowing ranges.
std::optional<SectorRange> ParseSectorRange(std::string_view s);

struct FaultRule {
  uint64_t id = 0;  // assigned when the rule is added
  Device device = Device::kMain;
  SectorRange sectors{0, 1};
  FaultOp op = FaultOp::kBoth;
  // Which matching requests the rule hits: all of them when times == 0 and
  // probability == 1; otherwise only the first `times` ones, and each with
  // the given probability, drawn from a generator seeded with `seed`.
  uint64_t times = 0;
  // The DB stores it as a signed 64-bit integer.
  static constexpr uint64_t kMaxTimes = INT64_MAX;
  double probability = 1.0;
  uint64_t seed = 0;
  // 0: a hit fails the request with EIO. > 0: a hit delays the request by
  // this many milliseconds and lets it succeed (a slow sector). Bounded, so
  // that a request in flight cannot hold up the ordered shutdown for long.
  uint32_t delay_ms = 0;
  static constexpr uint32_t kMaxDelayMs = 60000;

  // Checks the fields; returns a one-line reason for the first bad one.
  Status Validate(uint64_t sectors_on_device) const;
  // "main 100-199 write times=3 p=0.5 seed=7 delay=20ms"
  std::string ToString() const;
};

// The live rule set shared by the FaultyBackends of one engine.
// Thread-safe. Matching costs one atomic load while no rule is set.
class FaultRules {
 public:
  // Adds a rule; rule.id is kept if non-zero (rules reloaded from the DB),
  // otherwise a fresh id is assigned. Returns the stored rule.
  FaultRule Add(FaultRule rule) EXCLUDES(mu_);
  bool Remove(uint64_t id) EXCLUDES(mu_);
  void Clear() EXCLUDES(mu_);
  std::vector<FaultRule> List() const EXCLUDES(mu_);
  bool empty() const { return empty_.load(std::memory_order_acquire); }

  struct Effect {
    bool fail = false;
    uint32_t delay_ms = 0;
  };
  // What the rules do to a request of `op` (kRead or kWrite) on `device`
  // covering sectors [first, end).
  Effect Match(Device device, FaultOp op, uint64_t first, uint64_t end) EXCLUDES(mu_);

 private:
  struct Live {
    FaultRule rule;
    uint64_t hits = 0;
    std::mt19937_64 rng;
  };
  mutable Mutex mu_;
  std::vector<Live> rules_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::atomic<bool> empty_{true};
};

// Wraps a backend and applies the rules for `device`. A failing request
// transfers nothing, as a drive that rejects a command.
// REQUIRES: base and rules outlive nothing of their own; FaultyBackend owns
// base and shares rules.
class FaultyBackend final : public Backend {
 public:
  // Sector s of this device covers [data_offset + s*sector_size, ...): SPARE
  // slots start after the header, and rules address slots, not bytes.
  FaultyBackend(std::unique_ptr<Backend> base, Device device, uint32_t sector_size,
                uint64_t data_offset, std::shared_ptr<FaultRules> rules);

  Status ReadAt(uint64_t offset, size_t n, char* out) override;
  Status WriteAt(uint64_t offset, size_t n, const char* data) override;
  Status Sync() override { return base_->Sync(); }
  uint64_t Size() const override { return base_->Size(); }
  const std::string& path() const override { return base_->path(); }
  Status Identify(ImageIdentity* id) override { return base_->Identify(id); }
  Status Stamp(const std::string& uuid) override { return base_->Stamp(uuid); }
  Status Reserve() override { return base_->Reserve(); }
  // The base's, while no rule is set: a request that bypasses ReadAt and
  // WriteAt must have no rule to apply.
  Direct direct() override { return rules_->empty() ? base_->direct() : Direct{}; }
  Status SpliceTo(uint64_t offset, size_t n, int pipe) override {
    return rules_->empty() ? base_->SpliceTo(offset, n, pipe) : Backend::SpliceTo(offset, n, pipe);
  }

 private:
  Status Apply(FaultOp op, uint64_t offset, size_t n);

  const std::unique_ptr<Backend> base_;
  const Device device_;
  const uint32_t sector_size_;
  const uint64_t data_offset_;
  const std::shared_ptr<FaultRules> rules_;
};

}  // namespace remapfs
