#include "store/fault.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "store/parse.h"

namespace remapfs {

std::string_view DeviceName(Device d) { return d == Device::kMain ? "main" : "spare"; }

std::string_view FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kRead: return "read";
    case FaultOp::kWrite: return "write";
    case FaultOp::kBoth: return "both";
  }
  return "?";
}

std::optional<Device> ParseDevice(std::string_view s) {
  if (s == "main") return Device::kMain;
  if (s == "spare") return Device::kSpare;
  return std::nullopt;
}

std::optional<FaultOp> ParseFaultOp(std::string_view s) {
  if (s == "read") return FaultOp::kRead;
  if (s == "write") return FaultOp::kWrite;
  if (s == "both") return FaultOp::kBoth;
  return std::nullopt;
}

std::optional<SectorRange> ParseSectorRange(std::string_view s) {
  size_t sep = s.find_first_of("-+");
  if (sep == std::string_view::npos) {
    auto n = ParseDecimal(s);
    if (!n || *n == UINT64_MAX) return std::nullopt;
    return SectorRange{*n, 1};
  }
  auto a = ParseDecimal(s.substr(0, sep));
  auto b = ParseDecimal(s.substr(sep + 1));
  if (!a || !b) return std::nullopt;
  if (s[sep] == '-') {
    if (*b < *a || *b == UINT64_MAX) return std::nullopt;
    return SectorRange{*a, *b - *a + 1};
  }
  if (*b == 0 || *a > UINT64_MAX - *b) return std::nullopt;
  return SectorRange{*a, *b};
}

Status FaultRule::Validate(uint64_t sectors_on_device) const {
  if (sectors.count == 0 || sectors.first >= sectors_on_device ||
      sectors.count > sectors_on_device - sectors.first) {
    return Status::InvalidArgument("sectors " + std::to_string(sectors.first) + "+" +
                                   std::to_string(sectors.count) + " are outside " +
                                   std::string(DeviceName(device)) + ", which has " +
                                   std::to_string(sectors_on_device) + " sectors");
  }
  if (times > kMaxTimes) return Status::InvalidArgument("times must be at most " + std::to_string(kMaxTimes));
  if (!(probability > 0.0 && probability <= 1.0)) {
    return Status::InvalidArgument("probability must be in (0, 1]");
  }
  if (delay_ms > kMaxDelayMs) {
    return Status::InvalidArgument("delay must be at most " + std::to_string(kMaxDelayMs) + " ms");
  }
  return Status::OK();
}

std::string FaultRule::ToString() const {
  std::string s(DeviceName(device));
  s.append(" ").append(std::to_string(sectors.first)).append("-").append(std::to_string(sectors.end() - 1));
  s.append(" ").append(FaultOpName(op));
  if (times != 0) s.append(" times=").append(std::to_string(times));
  if (probability < 1.0) {
    s.append(" p=").append(std::to_string(probability)).append(" seed=").append(std::to_string(seed));
  }
  if (delay_ms != 0) s.append(" delay=").append(std::to_string(delay_ms)).append("ms");
  return s;
}

FaultRule FaultRules::Add(FaultRule rule) {
  MutexLock lock(&mu_);
  if (rule.id == 0) rule.id = next_id_;
  next_id_ = std::max(next_id_, rule.id + 1);
  rules_.push_back(Live{rule, 0, std::mt19937_64(rule.seed)});
  empty_.store(false, std::memory_order_release);
  return rule;
}

bool FaultRules::Remove(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = std::find_if(rules_.begin(), rules_.end(), [id](const Live& l) { return l.rule.id == id; });
  if (it == rules_.end()) return false;
  rules_.erase(it);
  empty_.store(rules_.empty(), std::memory_order_release);
  return true;
}

void FaultRules::Clear() {
  MutexLock lock(&mu_);
  rules_.clear();
  empty_.store(true, std::memory_order_release);
}

std::vector<FaultRule> FaultRules::List() const {
  MutexLock lock(&mu_);
  std::vector<FaultRule> out;
  for (const Live& l : rules_) out.push_back(l.rule);
  return out;
}

FaultRules::Effect FaultRules::Match(Device device, FaultOp op, uint64_t first, uint64_t end) {
  Effect effect;
  if (empty_.load(std::memory_order_acquire)) return effect;
  MutexLock lock(&mu_);
  for (Live& l : rules_) {
    const FaultRule& r = l.rule;
    if (r.device != device || (r.op != FaultOp::kBoth && r.op != op)) continue;
    if (r.sectors.first >= end || r.sectors.end() <= first) continue;
    if (r.times != 0 && l.hits >= r.times) continue;
    if (r.probability < 1.0 && std::uniform_real_distribution<double>(0.0, 1.0)(l.rng) >= r.probability) {
      continue;
    }
    ++l.hits;
    if (r.delay_ms != 0) {
      effect.delay_ms = std::max(effect.delay_ms, r.delay_ms);
    } else {
      effect.fail = true;
    }
  }
  return effect;
}

FaultyBackend::FaultyBackend(std::unique_ptr<Backend> base, Device device, uint32_t sector_size,
                             uint64_t data_offset, std::shared_ptr<FaultRules> rules)
    : base_(std::move(base)),
      device_(device),
      sector_size_(sector_size),
      data_offset_(data_offset),
      rules_(std::move(rules)) {}

Status FaultyBackend::Apply(FaultOp op, uint64_t offset, size_t n) {
  if (offset + n <= data_offset_ || n == 0) return Status::OK();  // the spare header
  const uint64_t from = offset < data_offset_ ? 0 : offset - data_offset_;
  const uint64_t to = offset + n - data_offset_;
  FaultRules::Effect e = rules_->Match(device_, op, from / sector_size_,
                                       (to + sector_size_ - 1) / sector_size_);
  if (e.delay_ms != 0) std::this_thread::sleep_for(std::chrono::milliseconds(e.delay_ms));
  if (e.fail) {
    return Status::IOError(std::string("injected ") + std::string(FaultOpName(op)) + " fault on " +
                               std::string(DeviceName(device_)) + " at " + std::to_string(offset) +
                               "+" + std::to_string(n),
                           EIO);
  }
  return Status::OK();
}

Status FaultyBackend::ReadAt(uint64_t offset, size_t n, char* out) {
  Status s = Apply(FaultOp::kRead, offset, n);
  return s.ok() ? base_->ReadAt(offset, n, out) : s;
}

Status FaultyBackend::WriteAt(uint64_t offset, size_t n, const char* data) {
  Status s = Apply(FaultOp::kWrite, offset, n);
  return s.ok() ? base_->WriteAt(offset, n, data) : s;
}

}  // namespace remapfs
