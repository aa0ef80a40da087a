// fuzz_engine: operation sequences, decoded from the input, against a real
// Engine (MAIN and SPARE in a MemEnv, the DB a real SQLite file), checked by
// test::EngineModel (tests/support/engine_model.h, the model that
// store/engine_model_test.cc drives too): after every operation the
// engine's table is read back and checked, every sector's change of state
// must be one the operation and the rules explain, a successful read must
// return the known bytes, and an EIO must be explained by a pending sector,
// a fault rule or an exhausted SPARE. Any broken promise aborts with the
// last operations. The fault rules here always fail (reads, writes or both,
// of MAIN or SPARE sectors), and may be invalid.
//
// Input: byte 0 picks the geometry (bit 0: 16 sectors of 4096 bytes, else 64
// of 512; few slots, so SPARE runs out). Then operations, each an opcode
// byte and its arguments (see Step); past the end of the input every byte
// reads as zero. tests/fuzz/make_corpus.py writes seeds in this format.
// REMAPFS_FUZZ_TRACE=1 prints every operation and its result.
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "tests/support/engine_model.h"
#include "tests/support/testutil.h"

namespace remapfs::fuzz {
namespace {

constexpr size_t kMaxOps = 256;

const Template& Geometry(bool big) {
  static const Template small = MakeTemplate(512, 64, 8);
  static const Template large = MakeTemplate(4096, 16, 6);
  return big ? large : small;
}

// MAIN starts with distinct bytes so that misplaced data shows.
const std::string& InitialImage(const Template& t) {
  static const std::string small = test::Pattern(Geometry(false).main_size(), 0x5eed);
  static const std::string large = test::Pattern(Geometry(true).main_size(), 0x5eed);
  return t.sector_size == 512 ? small : large;
}

class Harness {
 public:
  Harness(const Template& t, Reader* in)
      : t_(t), in_(in), model_({t.sector_size, t.sectors, t.slots}, InitialImage(t)) {
    static const bool trace = std::getenv("REMAPFS_FUZZ_TRACE") != nullptr;
    model_.set_trace(trace);
  }

  void Run() {
    env_ = MakeEnv(t_, InitialImage(t_));
    db_ = WorkDir() + "/engine.db";
    PutDb(db_, t_.db);
    Check(Open(&engine_));
    for (size_t op = 0; op < kMaxOps && !in_->empty(); ++op) Check(Step());
    // The end: with no rule left, every sector that is not pending reads
    // back the known bytes. (Op 9 checks the same across a reopen.)
    Check(model_.ClearRules(engine_.get()));
    Check(model_.Scan(engine_.get()));
    Check(engine_->Close());
    engine_.reset();
    RemoveDb(db_);
  }

 private:
  uint64_t ss() const { return t_.sector_size; }
  uint64_t size() const { return t_.main_size(); }

  void Check(const Status& s) {
    if (!s.ok()) Die(__FILE__, __LINE__, s.ToString() + "\nlast operations, oldest first:\n" + model_.History());
  }

  Status Open(std::unique_ptr<Engine>* engine) {
    EngineOptions o;
    o.env = env_.get();
    o.commit_interval = std::chrono::hours(1);  // commits only on Flush and Close
    o.read_attempts = 2;
    return Engine::Open(SetPaths{kMainPath, kSparePath, db_}, o, engine);
  }

  // --- the input ---
  std::pair<uint64_t, size_t> Range() {
    const uint8_t shape = in_->U8();
    const uint64_t a = in_->U16(), b = in_->U16();
    uint64_t off = 0, n = 1;
    switch (shape % 4) {
      case 0: {  // whole sectors
        const uint64_t first = a % t_.sectors;
        off = first * ss();
        n = (1 + b % std::min<uint64_t>(8, t_.sectors - first)) * ss();
        break;
      }
      case 1:  // inside one sector, any alignment
        off = a % size();
        n = 1 + b % (ss() - off % ss());
        break;
      case 2:  // anywhere, up to four sectors
        off = a % size();
        n = 1 + b % std::min<uint64_t>(size() - off, 4 * ss());
        break;
      default:  // 512-byte pieces (sub-sector with 4096-byte sectors)
        off = (a % (size() / 512)) * 512;
        n = std::min<uint64_t>(512 * (1 + b % 8), size() - off);
        break;
    }
    return {off, static_cast<size_t>(n)};
  }
  uint64_t Sector() { return in_->U8() % (t_.sectors + 2); }  // sometimes out of range

  FaultRule Rule() {
    const uint8_t flags = in_->U8();
    FaultRule r;
    r.device = flags & 1 ? Device::kSpare : Device::kMain;
    r.op = static_cast<FaultOp>((flags >> 1) % 3);
    const uint64_t n = r.device == Device::kMain ? t_.sectors : t_.slots;
    r.sectors.first = in_->U8() % (n + 2);
    r.sectors.count = in_->U8() % 5;
    return r;
  }

  // Mostly a live rule; sometimes an id that does not exist.
  uint64_t RuleId() {
    const uint8_t pick = in_->U8();
    const std::vector<FaultRule>& rules = model_.rules();
    return !rules.empty() && pick < 200 ? rules[pick % rules.size()].id : pick;
  }

  Status Step() {
    Engine* e = engine_.get();
    const uint8_t op = in_->U8();
    switch (op % 11) {
      case 0: {
        const auto range = Range();
        return model_.Write(e, range.first, test::Pattern(range.second, (++writes_ << 8) | in_->U8()));
      }
      case 1: {
        const auto range = Range();
        return model_.Read(e, range.first, range.second);
      }
      case 2: return model_.Flush(e);
      case 3: return model_.Remap(e, Sector());
      case 4: return model_.Unremap(e, Sector());
      case 5: return model_.MarkPending(e, Sector());
      case 6: return model_.AddRule(e, Rule());
      case 7: return model_.RemoveRule(e, RuleId());
      case 8: return model_.ClearRules(e);
      case 9: return model_.Reopen(&engine_, [this](std::unique_ptr<Engine>* engine) { return Open(engine); });
      default: return model_.Scan(e);
    }
  }

  const Template& t_;
  Reader* const in_;
  test::EngineModel model_;
  std::unique_ptr<MemEnv> env_;
  std::string db_;
  std::unique_ptr<Engine> engine_;
  uint64_t writes_ = 0;
};

}  // namespace
}  // namespace remapfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  remapfs::fuzz::Quiet();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  remapfs::fuzz::Reader in(data, size);
  const bool big = in.U8() & 1;
  remapfs::fuzz::Harness h(remapfs::fuzz::Geometry(big), &in);
  h.Run();
  return 0;
}
