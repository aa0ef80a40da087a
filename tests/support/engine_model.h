// EngineModel: the one reference model of the Engine, driven by the
// randomized model test (store/engine_model_test.cc, random operations) and
// by the fuzzer (tests/fuzz/fuzz_engine.cc, operations decoded from its
// input). A driver picks each operation; the model runs it on the real
// engine and checks the answer against the contract of store/DESIGN.md as
// store/engine.cc implements it:
//   - a failed MAIN write is invisible: the data lands in a slot, and a
//     failed slot write moves the sector to another slot;
//   - a read that meets a pending sector, a MAIN sector that keeps failing
//     or a slot that cannot be read answers EIO and changes no data (the
//     MAIN sector is then pending);
//   - a whole-sector write to a pending sector remaps it; a partial one (or
//     one to a slot that cannot be read) fails with EIO and changes nothing
//     in that sector;
//   - a request is served in sector order and stops at its first failing
//     sector: the sectors before it are written, it and those after are not;
//   - no free slot left: the write answers EIO (its bytes are then unknown
//     until they are read or written again);
//   - remap, unremap, mark-pending and the fault rule calls answer as
//     documented; a flush leaves no slot quarantined; the table and the
//     rules survive close and open.
// The model holds what each byte of the image reads as (and whether it is
// known), each sector's state (normal, pending or its slot) and the fault
// rules in force. After every operation it reads the engine's table back
// (CheckTable), checks that each sector's change of state is one the
// operation and the rules allow, and takes the engine's table as its own:
// which slot a remap got, and whether a rule that fires N times or with a
// probability fired, are the engine's to choose within what is allowed.
// Rules that delay (delay_ms > 0) are not modelled.
//
// Every operation returns OK, or a Corruption status that names the
// operation and the promise the engine broke; History() then tells what led
// there.
//
// Thread-safety: not thread-safe; one driver at a time.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "store/engine.h"
#include "store/health.h"

namespace remapfs::test {

// A sector's state in a table read back from an engine: served from MAIN.
// (Otherwise kPendingSlot or its slot.)
inline constexpr uint32_t kNormalSector = 0xFFFFFFFE;

// The value of counter `c` in a Health (which lists every counter).
uint64_t CounterValue(const Health& h, Counter c);

// Reads the engine's table and checks what every table keeps: in sector
// order, sectors and slots in range, no slot mapped twice, Health's counts
// agree with the table and the slot states add up. With `states`, returns
// each sector's state (kNormalSector, kPendingSlot or its slot).
Status CheckTable(Engine* e, std::vector<uint32_t>* states = nullptr);

// `remapctl check` of a closed set: OK when it finds no problem.
Status CheckSetClean(Env* env, const SetPaths& paths);

class EngineModel {
 public:
  struct Geometry {
    uint32_t sector_size = 0;
    uint64_t sectors = 0;
    uint32_t slots = 0;
  };
  struct Stats {
    uint64_t write_eio = 0, read_eio = 0, uncertain = 0, reopens = 0;
  };
  // Opens the set again (a reopen's second half).
  using OpenFn = std::function<Status(std::unique_ptr<Engine>*)>;

  // `image`: MAIN's bytes; the engine starts with no sector mapped and no
  // fault rule.
  EngineModel(const Geometry& geometry, std::string image);

  Status Write(Engine* e, uint64_t offset, std::string_view data);
  Status Read(Engine* e, uint64_t offset, size_t n);
  // Reads every sector on its own (so that one failure hides no other), in
  // sector order or, with `shuffle`, in a random order.
  Status Scan(Engine* e, std::mt19937_64* shuffle = nullptr);
  Status Flush(Engine* e);
  // The sector calls take any sector, also one past MAIN's end.
  Status Remap(Engine* e, uint64_t sector);
  Status Unremap(Engine* e, uint64_t sector);
  Status MarkPending(Engine* e, uint64_t sector);
  // Any rule, also one the engine must refuse.
  Status AddRule(Engine* e, const FaultRule& rule);
  // Any id, also one that does not exist.
  Status RemoveRule(Engine* e, uint64_t id);
  Status ClearRules(Engine* e);
  // Closes *engine, opens the set again with `open`, and checks that the
  // close was orderly and that the table and the rules are as before.
  Status Reopen(std::unique_ptr<Engine>* engine, const OpenFn& open);

  // kNormalSector, kPendingSlot or its slot, as last observed.
  uint32_t state(uint64_t sector) const { return state_[sector]; }
  const std::vector<FaultRule>& rules() const { return rules_; }
  const Stats& stats() const { return stats_; }
  // The last operations with their results, oldest first, one per line.
  std::string History() const;
  // Prints every operation and its result to stderr as it happens.
  void set_trace(bool on) { trace_ = on; }

 private:
  // The states an operation allows a sector to be in afterwards.
  struct Allow {
    bool normal = false, pending = false, remapped = false;
    bool new_slot = false;  // a remapped sector may move to another slot
  };

  uint64_t ss() const { return geo_.sector_size; }
  static bool IsSlot(uint32_t st) { return st != kNormalSector && st != kPendingSlot; }
  bool MayFail(Device d, FaultOp op, uint64_t sector) const;
  bool MustFail(Device d, FaultOp op, uint64_t sector) const;

  void Note(std::string what);
  Status Broken(const std::string& why) const;
  Status Observe(Engine* e, std::vector<uint32_t>* obs);
  std::vector<Allow> CurrentAllow() const;
  Status Adopt(const std::vector<uint32_t>& obs, const std::vector<Allow>& allow);
  Status ObserveUnchanged(Engine* e);
  // "7 (pending)": a sector and its state, for the history.
  std::string SectorName(uint64_t sector) const;
  // A call the engine must refuse with InvalidArgument, changing nothing.
  Status Refused(Engine* e, const Status& s);
  Status CheckRules(Engine* e);

  // A write the engine answered, as the model checks it.
  struct WriteOutcome {
    uint64_t offset = 0;
    size_t n = 0;
    Status status;
    bool exhausted = false;     // SPARE ran out during it
    std::vector<uint32_t> obs;  // the table after it
    std::vector<Allow> allow;   // the states it allows
    uint64_t written_end = 0;   // [offset, written_end) holds the new data
    bool uncertain = false;     // unknown where it stopped: its bytes are unknown
    bool Full(uint64_t sector, uint64_t ss) const { return offset <= sector * ss && (sector + 1) * ss <= offset + n; }
  };
  Status CheckWrite(WriteOutcome* w);
  Status CheckWriteFailure(WriteOutcome* w);
  // The first sector where a write must fail, and the first one before it
  // where it may fail without a trace.
  void WriteStops(const WriteOutcome& w, std::optional<uint64_t>* must_fail_at,
                  std::optional<uint64_t>* may_fail_at) const;
  Allow Written(uint64_t sector) const;
  Status CheckReadFailure(uint64_t first, uint64_t last, const std::vector<uint32_t>& obs, std::vector<Allow>* allow);

  const Geometry geo_;
  std::string img_;               // what each byte reads as (pending: MAIN's bytes)
  std::vector<uint8_t> known_;    // 0: the byte is old or new after a failed write
  std::vector<uint32_t> state_;   // kNormalSector, kPendingSlot or the slot
  std::vector<FaultRule> rules_;  // live rules, in the engine's order

  uint64_t ops_ = 0;
  std::deque<std::string> history_;
  bool trace_ = false;
  Stats stats_;
};

}  // namespace remapfs::test
