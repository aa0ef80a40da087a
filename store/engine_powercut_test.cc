// Power-cut campaigns with the DB on FaultVfs: the durability contract of
// DESIGN.md (durability 1-4) when a power cut hits MAIN, SPARE, the DB and
// its WAL together, and the metadata store itself fails now and then.
//
// Each cycle opens the set, runs a seeded random mix of writes (MAIN write
// fault rules force remaps, SPARE write rules make slots bad), flushes,
// remaps, unremaps, rule changes and DB faults (the next commits fail: WAL
// write or fsync, EIO or disk full), then stops at a random operation:
//   - mostly `kill -9` and a power cut: FaultVfs::Kill, AbandonForTest, then
//     every MAIN, SPARE, DB and WAL write not followed by a sync of its file
//     is dropped or torn per 512-byte block (seeded, each file and block on
//     its own); a commit of the background writer may be cut midway;
//   - sometimes `kill -9` alone (the page cache survives);
//   - sometimes an orderly Close (which fails if the store does), then the
//     power cut.
// After it, the set must pass `remapctl check` (CheckSet: PRAGMA
// integrity_check, every mapping in range, no slot mapped twice or both
// mapped and bad). Then it is reopened, a third of the time with an I/O
// error or disk full injected into that recovery (the open must fail with a
// clean I/O error, leaving a set that a later open takes, or succeed), and
// each 512-byte block of the image must read as it was at the last
// successful Flush, or as one of the versions written after it. Every write
// carries fresh bytes, so a mapping made durable before its slot's data (or
// pointing at data that was never synced) shows as a block that was never
// written.
//
// Failed syncs behave as on Linux (the "fsyncgate" semantics): a failed
// fdatasync of MAIN or SPARE (MemEnv::InjectError) or of the DB or its WAL
// (FaultVfs) reports the error once and the blocks it was for never reach
// the disk, while the cache still serves them. After one, no flush may
// succeed in that run. A restart without a power cut then evicts the cache
// of MAIN and SPARE (MemEnv::DropCaches) and reads the DB's lost pages from
// the cache, which the open's checkpoint makes durable.
//
// While a DB fault lasts, Flush must fail with EIO, and writes may fail with
// EIO only when they needed a new slot; each block of a failed write must
// then read as before or as written.
//
// Reproduce or lengthen a run:
//   REMAPFS_POWERCUT_SEED=S     run seed S only (with REMAPFS_POWERCUT_SEEDS=N:
//                               seeds S, ..., S+N-1)
//   REMAPFS_POWERCUT_CYCLES=N   cycles per seed (default 40; most end in a
//                               power cut)
//   REMAPFS_POWERCUT_VERBOSE=1  one summary line per seed
// Half the cycles also commit in the background every 1-20 ms, so a seed
// replays its operations exactly but not always the commit points.
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/fault_vfs.h"
#include "tests/support/testharness.h"

namespace remapfs {
namespace {

constexpr uint64_t kBlock = 512;  // tear granularity of MemEnv and FaultVfs

// What a crash may leave of the image: per 512-byte block, the content at
// the last successful flush, or any content the block had after a write
// since then.
class Reference {
 public:
  explicit Reference(size_t size) : cur_(size, '\0'), flushed_(size, '\0'), since_(size / kBlock) {}

  void Wrote(uint64_t off, std::string_view data) {
    std::memcpy(cur_.data() + off, data.data(), data.size());
    for (uint64_t b = off / kBlock; b * kBlock < off + data.size(); ++b) {
      since_[b].push_back(cur_.substr(b * kBlock, kBlock));
    }
  }
  void Durable() {
    flushed_ = cur_;
    for (auto& v : since_) v.clear();
  }
  const std::string& current() const { return cur_; }

  // The first block of `got` that a crash cannot have left, or -1.
  int64_t FirstImpossibleBlock(const std::string& got) const {
    for (uint64_t b = 0; b < since_.size(); ++b) {
      const std::string_view block(got.data() + b * kBlock, kBlock);
      if (block == std::string_view(flushed_).substr(b * kBlock, kBlock)) continue;
      bool found = false;
      for (const std::string& v : since_[b]) found = found || block == v;
      if (!found) return static_cast<int64_t>(b);
    }
    return -1;
  }
  size_t VersionsSince(uint64_t block) const { return since_[block].size(); }
  // Takes what the image reads as after a crash as the new durable state.
  void Reset(const std::string& got) {
    cur_ = got;
    Durable();
  }

 private:
  std::string cur_;
  std::string flushed_;
  std::vector<std::vector<std::string>> since_;
};

struct Config {
  uint32_t sector_size;
  uint64_t sectors;
  uint32_t slots;
};

struct Tally {
  uint64_t power_cuts = 0, kills = 0, closes = 0, failed_closes = 0;
  uint64_t db_faults = 0, db_faults_fired = 0, failed_flushes = 0, refused_writes = 0;
  uint64_t recovery_faults = 0, recovery_faults_fired = 0, failed_opens = 0, died_opens = 0, double_cuts = 0;
  uint64_t deaths_in_db_calls = 0;
  uint64_t db_blocks_reverted = 0, db_blocks_kept = 0, lost_blocks = 0;
  uint64_t sync_failures = 0;
};

class PowerCutRun {
 public:
  PowerCutRun(const Config& cfg, uint64_t seed)
      : cfg_(cfg),
        rng_(seed),
        set_(cfg.sectors * cfg.sector_size, cfg.slots, cfg.sector_size),
        ref_(cfg.sectors * cfg.sector_size) {}
  ~PowerCutRun() { FaultVfs::ClearFaults(set_.paths.db); }

  void Run(uint64_t cycles) {
    for (cycle_ = 0; cycle_ < cycles; ++cycle_) ASSERT_NO_FATAL_FAILURE(Cycle());
    // A last orderly open and close.
    ASSERT_NO_FATAL_FAILURE(OpenAndVerify(/*recovery_fault=*/false));
    ASSERT_TRUE(e_->Close().ok());
    e_.reset();
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
  }

  const Tally& tally() const { return t_; }

  std::string Summary() const {
    char buf[512];
    std::snprintf(
        buf, sizeof buf,
        "%llu power cuts (+%llu after a failed or dead open), %llu kills, %llu deaths at a DB call, "
        "%llu closes (%llu failed); DB faults %llu armed / %llu calls failed, %llu flushes failed, "
        "%llu writes refused; recovery faults %llu (%llu hit the open): %llu opens failed, %llu died; DB blocks "
        "reverted %llu, torn-kept %llu; image blocks lost %llu; data sync failures %llu",
        U(t_.power_cuts), U(t_.double_cuts), U(t_.kills), U(t_.deaths_in_db_calls), U(t_.closes), U(t_.failed_closes),
        U(t_.db_faults), U(t_.db_faults_fired), U(t_.failed_flushes), U(t_.refused_writes), U(t_.recovery_faults),
        U(t_.recovery_faults_fired), U(t_.failed_opens), U(t_.died_opens), U(t_.db_blocks_reverted),
        U(t_.db_blocks_kept), U(t_.lost_blocks), U(t_.sync_failures));
    return buf;
  }

  void DumpHistory() const {
    std::string s = "last operations, oldest first:\n";
    for (const std::string& h : history_) s += "  " + h + "\n";
    std::fputs(s.c_str(), stderr);
  }

 private:
  static unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }
  uint64_t Pick(uint64_t n) { return n <= 1 ? 0 : rng_() % n; }
  uint64_t ss() const { return cfg_.sector_size; }
  uint64_t size() const { return cfg_.sectors * cfg_.sector_size; }
  void Note(std::string what) {
    history_.push_back("cycle " + std::to_string(cycle_) + ": " + std::move(what));
    if (history_.size() > 200) history_.pop_front();
  }

  void PowerCut(const char* why) {
    const bool tear = Pick(2) != 0;
    const VfsCutStats st = PowerCutAll(&set_.env, set_.paths.db, rng_(), tear);
    t_.db_blocks_reverted += st.blocks_reverted;
    t_.db_blocks_kept += st.blocks_kept;
    Note(std::string("power cut (") + why + "), " + (tear ? "tearing" : "dropping") + " unsynced writes; DB: " +
         std::to_string(st.blocks_reverted) + " block(s) reverted, " + std::to_string(st.blocks_kept) + " kept");
  }

  // An I/O error or disk full somewhere in the next open's DB I/O; or,
  // with *kill, the process dies there.
  uint64_t ArmRecoveryFault(bool* kill) {
    // After a crash the open only reads (SQLite's WAL recovery: the WAL,
    // the DB, the -shm index it maps); after an orderly stop it also writes
    // the WAL once (marking the set open).
    static constexpr VfsFile kFiles[] = {VfsFile::kAny, VfsFile::kWal, VfsFile::kWal, VfsFile::kDb};
    static constexpr VfsOp kOps[] = {VfsOp::kRead,  VfsOp::kRead, VfsOp::kShmMap,
                                     VfsOp::kWrite, VfsOp::kSync, VfsOp::kTruncate};
    VfsFault f;
    f.path_prefix = set_.paths.db;
    f.file = kFiles[Pick(4)];
    f.op = kOps[Pick(6)];
    f.rc = Pick(2) ? SQLITE_FULL : 0;
    f.skip = f.op == VfsOp::kRead ? Pick(30) : Pick(3);
    f.count = Pick(4) == 0 ? VfsFault::kForever : 1 + Pick(3);
    f.lose_unsynced = Pick(2) != 0;
    f.kill = *kill = Pick(4) == 0;
    ++t_.recovery_faults;
    Note(std::string("recovery fault: ") + (f.kill ? "death" : "error") + " at file " +
         std::to_string(static_cast<int>(f.file)) + " op " + std::to_string(static_cast<int>(f.op)) + " rc " +
         std::to_string(f.rc) + " skip " + std::to_string(f.skip) + " count " + std::to_string(f.count));
    return FaultVfs::Inject(f);
  }

  void OpenAndVerify(bool recovery_fault) {
    EngineOptions options;
    options.sqlite_vfs = FaultVfs::Name();
    // Half the cycles commit only on Flush; the others also commit in the
    // background, at any point between (or during) two operations.
    options.commit_interval =
        Pick(2) ? std::chrono::milliseconds(3600 * 1000) : std::chrono::milliseconds(1 + Pick(20));
    std::unique_ptr<Engine> e;
    if (recovery_fault) {
      bool kill = false;
      const uint64_t id = ArmRecoveryFault(&kill);
      Status s = set_.Open(&e, options);
      const bool died = kill && FaultVfs::Fired(id) > 0;
      t_.recovery_faults_fired += FaultVfs::Fired(id) > 0;
      FaultVfs::ClearFaults(set_.paths.db);
      Note("open with a recovery fault (hit " + std::to_string(FaultVfs::Fired(id)) + " call(s)): " + s.ToString() +
           (died ? " (the process died in it)" : ""));
      if (died) {
        // A crash during recovery, then (or not) a power cut; whether the
        // open got as far as marking the set unclean is unknown.
        ++t_.died_opens;
        if (e) e->AbandonForTest();
        e.reset();
        if (Pick(2) || FaultVfs::LostBlocks(set_.paths.db) != 0) {
          ++t_.double_cuts;
          ASSERT_NO_FATAL_FAILURE(PowerCut("after the open died"));
        } else {
          FaultVfs::Revive(set_.paths.db);
        }
        clean_unknown_ = true;
        ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
      } else if (!s.ok()) {
        // A clean failure: an I/O error, nothing half-open, a consistent set.
        ++t_.failed_opens;
        ASSERT_TRUE(s.IsIOError()) << s.ToString();
        ASSERT_EQ(e, nullptr);
        if (Pick(2) || FaultVfs::LostBlocks(set_.paths.db) != 0) {
          ++t_.double_cuts;
          ASSERT_NO_FATAL_FAILURE(PowerCut("after the failed open"));
        }
        ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
      }
    }
    if (!e) {
      Status s = set_.Open(&e, options);
      Note("open (commit every " + std::to_string(options.commit_interval.count()) + " ms): " + s.ToString());
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    e_ = std::move(e);
    const Health h = e_->GetHealth();
    if (!clean_unknown_) {
      ASSERT_EQ(h.was_clean, last_stop_clean_);
    }
    clean_unknown_ = false;
    if (h.was_clean) {
      ASSERT_EQ(h.previous_store_error, "");
    }
    ASSERT_EQ(h.store_error, "");
    std::string got(size(), '\0');
    Status s = e_->Read(0, got.size(), got.data());
    ASSERT_TRUE(s.ok()) << "the image does not read after the crash: " << s.ToString();
    for (size_t i = 0; i < got.size(); i += kBlock)
      t_.lost_blocks += got.compare(i, kBlock, ref_.current(), i, kBlock) != 0;
    const int64_t bad = ref_.FirstImpossibleBlock(got);
    if (bad >= 0) {
      const uint64_t sector = static_cast<uint64_t>(bad) * kBlock / ss();
      std::string where = "MAIN";
      for (const Mapping& m : e_->List(sector, sector + 1)) where = "slot " + std::to_string(m.slot);
      FAIL() << "block " << bad << " (sector " << sector << ", served from " << where
             << ") reads as neither its flushed content nor anything written since ("
             << ref_.VersionsSince(static_cast<uint64_t>(bad))
             << " write(s) since the flush): flushed data was lost, or a mapping became durable before its "
                "data";
    }
    if (last_stop_killed_) {
      // The page cache survived the kill, but none of it is durable: the
      // flushed content stays what it was, and this is one more version.
      ref_.Wrote(0, got);
    } else {
      ref_.Reset(got);
    }
  }

  std::pair<uint64_t, size_t> RandomRange() {
    uint64_t off = 0, n = 1;
    switch (Pick(5)) {
      case 0:
      case 1: {  // whole sectors
        const uint64_t count = 1 + Pick(4);
        off = Pick(cfg_.sectors - count + 1) * ss();
        n = count * ss();
        break;
      }
      case 2: {  // inside one sector
        const uint64_t a = Pick(ss());
        off = Pick(cfg_.sectors) * ss() + a;
        n = 1 + Pick(ss() - a);
        break;
      }
      default: {  // anywhere, up to 8 sectors
        off = Pick(size());
        n = 1 + Pick(8 * ss());
        break;
      }
    }
    n = std::min<uint64_t>(n, size() - off);
    return {off, static_cast<size_t>(n)};
  }

  bool StoreFailing() const { return !e_->GetHealth().store_error.empty(); }

  void Write() {
    auto [off, n] = RandomRange();
    const std::string data = test::Pattern(n, rng_());
    const bool failing_before = StoreFailing();
    Status s = e_->Write(off, n, data.data());
    Note("write " + std::to_string(off) + "+" + std::to_string(n) + ": " + s.ToString());
    if (s.ok()) {
      ref_.Wrote(off, data);
      return;
    }
    // Only a write that needed a new slot while the store could not commit
    // may fail (or, in principle, one that found SPARE exhausted).
    ++t_.refused_writes;
    const Health h = e_->GetHealth();
    ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
    ASSERT_TRUE(failing_before || !h.store_error.empty() || h.slots_free == 0) << s.ToString();
    // Each block reads as before or as written.
    std::string got(n, '\0');
    Status r = e_->Read(off, n, got.data());
    ASSERT_TRUE(r.ok()) << "a read failed after a refused write: " << r.ToString();
    std::string expect_new = ref_.current().substr(off, n);
    for (uint64_t b = off / kBlock; b * kBlock < off + n; ++b) {
      const uint64_t lo = std::max(off, b * kBlock), hi = std::min(off + n, (b + 1) * kBlock);
      const std::string_view g(got.data() + (lo - off), hi - lo);
      ASSERT_TRUE(g == std::string_view(ref_.current()).substr(lo, hi - lo) ||
                  g == std::string_view(data).substr(lo - off, hi - lo))
          << "block " << b << " of a failed write is neither old nor new";
    }
    ref_.Wrote(off, got);
  }

  void ArmDbFault() {
    VfsFault f;
    f.path_prefix = set_.paths.db;
    f.file = Pick(4) == 0 ? VfsFile::kAny : VfsFile::kWal;
    f.op = Pick(2) ? VfsOp::kWrite : VfsOp::kSync;
    f.rc = f.op == VfsOp::kWrite && Pick(2) ? SQLITE_FULL : 0;
    f.skip = Pick(3);
    f.count = 1 + Pick(4);
    f.lose_unsynced = Pick(2) != 0;
    db_fault_ = FaultVfs::Inject(f);
    ++t_.db_faults;
    Note(std::string("DB fault: ") + (f.op == VfsOp::kWrite ? "write" : "fsync") + " rc " + std::to_string(f.rc) +
         " skip " + std::to_string(f.skip) + " count " + std::to_string(f.count));
  }

  void AddRule() {
    if (e_->ListFaultRules().size() >= 6) return RemoveRule();
    FaultRule r, added;
    r.op = FaultOp::kWrite;
    if (Pick(5) == 0) {
      r.device = Device::kSpare;
      r.sectors.first = Pick(cfg_.slots);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(2, cfg_.slots - r.sectors.first));
    } else {
      r.device = Device::kMain;
      r.sectors.first = Pick(cfg_.sectors);
      r.sectors.count = 1 + Pick(std::min<uint64_t>(8, cfg_.sectors - r.sectors.first));
    }
    const uint64_t mode = Pick(3);
    if (mode == 1) r.times = 1 + Pick(3);
    if (mode == 2) {
      r.probability = 0.5;
      r.seed = rng_();
    }
    Status s = e_->AddFaultRule(r, &added);
    Note("add rule " + r.ToString() + ": " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void RemoveRule() {
    std::vector<FaultRule> rules = e_->ListFaultRules();
    if (rules.empty()) return;
    const uint64_t id = rules[Pick(rules.size())].id;
    Status s = e_->RemoveFaultRule(id);
    Note("remove rule " + std::to_string(id) + ": " + s.ToString());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  bool MainWriteRuleCovers(uint64_t sector) const {
    for (const FaultRule& r : e_->ListFaultRules()) {
      if (r.device == Device::kMain && r.op != FaultOp::kRead && sector >= r.sectors.first &&
          sector < r.sectors.end()) {
        return true;
      }
    }
    return false;
  }

  void Operation() {
    const uint64_t p = Pick(100);
    if (p < 62) {
      ASSERT_NO_FATAL_FAILURE(Write());
    } else if (p < 70) {
      const bool sync_failed_before = !e_->GetHealth().sync_error.empty();
      Status s = e_->Flush();
      Note("flush: " + s.ToString() + (Dead() ? " (but the process died at a DB call)" : ""));
      ASSERT_TRUE(!s.ok() || !sync_failed_before) << "a flush succeeded after a failed sync";
      if (s.ok() && !Dead()) {
        ref_.Durable();
      } else if (!s.ok()) {
        ++t_.failed_flushes;
        ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      }
    } else if (p < 78) {
      std::vector<Mapping> table = e_->List(0, cfg_.sectors);
      if (table.empty()) return;
      const uint64_t sector = table[Pick(table.size())].sector;
      Status s = e_->Unremap(sector);
      Note("unremap " + std::to_string(sector) + ": " + s.ToString());
      ASSERT_TRUE(s.ok() || (s.ToErrno() == EIO && MainWriteRuleCovers(sector))) << s.ToString();
    } else if (p < 83) {
      const uint64_t sector = Pick(cfg_.sectors);
      const bool mapped = !e_->List(sector, sector + 1).empty();
      const bool failing = StoreFailing();
      Status s = e_->Remap(sector);
      Note("remap " + std::to_string(sector) + ": " + s.ToString());
      if (mapped) {
        ASSERT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
      } else if (!s.ok()) {
        ++t_.refused_writes;
        ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
        ASSERT_TRUE(failing || StoreFailing() || e_->GetHealth().slots_free == 0) << s.ToString();
      }
    } else if (p < 90) {
      ASSERT_NO_FATAL_FAILURE(AddRule());
    } else if (p < 95) {
      ASSERT_NO_FATAL_FAILURE(RemoveRule());
    } else if (p < 97) {
      if (db_fault_ == 0) ArmDbFault();
    } else if (p < 98) {
      // The next fdatasync of MAIN or SPARE fails and loses what it was for.
      const std::string& path = Pick(2) ? set_.paths.spare : set_.paths.main;
      set_.env.InjectError(path, MemEnv::Op::kSync, EIO);
      ++t_.sync_failures;
      Note("the next sync of " + path + " fails");
    } else {
      const std::string got = ReadAll();
      ASSERT_TRUE(got == ref_.current()) << "the image differs from what was written, before any crash";
    }
  }

  // The process died at a DB call (a kill fault fired): what it did after
  // that never reached the DB, so nothing after it counts as acknowledged.
  bool Dead() const { return kill_fault_ != 0 && FaultVfs::Fired(kill_fault_) > 0; }

  void ArmKillFault() {
    VfsFault f;
    f.path_prefix = set_.paths.db;
    f.op = Pick(3) ? VfsOp::kWrite : VfsOp::kSync;
    f.skip = Pick(40);
    f.kill = true;
    kill_fault_ = FaultVfs::Inject(f);
    Note(std::string("the process will die at DB ") + (f.op == VfsOp::kWrite ? "write" : "sync") + " #" +
         std::to_string(f.skip + 1));
  }

  std::string ReadAll() {
    std::string out(size(), '\0');
    Status s = e_->Read(0, out.size(), out.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  void Cycle() {
    ASSERT_NO_FATAL_FAILURE(OpenAndVerify(/*recovery_fault=*/cycle_ > 0 && Pick(3) == 0));
    if (Pick(3) == 0) ArmKillFault();
    const uint64_t ops = 1 + Pick(80);
    for (uint64_t i = 0; i < ops && !Dead(); ++i) ASSERT_NO_FATAL_FAILURE(Operation());
    ASSERT_TRUE(ReadAll() == ref_.current()) << "the image differs from what was written, before any crash";
    const uint64_t how = Dead() ? 1 + Pick(9) : Pick(10);
    last_stop_killed_ = false;
    if (Dead()) {
      ++t_.deaths_in_db_calls;
      Note("the process died at a DB call");
    }
    if (how == 0) {
      // An orderly stop makes everything durable, unless the store fails.
      Status s = e_->Close();
      Note("close: " + s.ToString() + (Dead() ? " (but the process died at a DB call in it)" : ""));
      ++t_.closes;
      if (Dead()) {
        ++t_.deaths_in_db_calls;
        clean_unknown_ = true;  // it may have died before or after marking the set clean
      } else if (s.ok()) {
        ref_.Durable();
      } else {
        ++t_.failed_closes;
        ASSERT_EQ(s.ToErrno(), EIO) << s.ToString();
      }
      last_stop_clean_ = s.ok();
      e_.reset();
      ++t_.power_cuts;
      ASSERT_NO_FATAL_FAILURE(PowerCut("after close"));
    } else if (how == 1) {
      // kill -9 alone: what reached the page cache stays.
      FaultVfs::Kill(set_.paths.db);
      e_->AbandonForTest();
      e_.reset();
      FaultVfs::Revive(set_.paths.db);
      // What a failed sync lost leaves the cache at last.
      set_.env.DropCaches();
      ++t_.kills;
      Note("killed");
      last_stop_clean_ = false;
      last_stop_killed_ = true;
    } else {
      FaultVfs::Kill(set_.paths.db);
      e_->AbandonForTest();
      e_.reset();
      ++t_.power_cuts;
      ASSERT_NO_FATAL_FAILURE(PowerCut("after kill"));
      last_stop_clean_ = false;
    }
    if (db_fault_ != 0) t_.db_faults_fired += FaultVfs::Fired(db_fault_);
    db_fault_ = 0;
    kill_fault_ = 0;
    FaultVfs::ClearFaults(set_.paths.db);
    set_.env.InjectError(set_.paths.main, MemEnv::Op::kSync, 0);
    set_.env.InjectError(set_.paths.spare, MemEnv::Op::kSync, 0);
    ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set_));
  }

  const Config cfg_;
  std::mt19937_64 rng_;
  test::MemSet set_;
  Reference ref_;
  std::unique_ptr<Engine> e_;
  bool last_stop_clean_ = true;
  bool last_stop_killed_ = false;  // by kill -9 alone: nothing became durable
  bool clean_unknown_ = false;     // a crash in an open or close: was_clean may be either
  uint64_t db_fault_ = 0;
  uint64_t kill_fault_ = 0;
  uint64_t cycle_ = 0;
  Tally t_;
  std::deque<std::string> history_;
};

void RunSeeds(const Config& cfg, const char* test_name) {
  test::QuietLogs quiet;
  const uint64_t cycles = test::EnvU64("REMAPFS_POWERCUT_CYCLES", 40);
  for (uint64_t seed : test::Seeds("REMAPFS_POWERCUT", {5, 17, 4242, 90001})) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; reproduce with REMAPFS_POWERCUT_SEED=" + std::to_string(seed) +
                 " REMAPFS_POWERCUT_CYCLES=" + std::to_string(cycles) + " --gtest_filter=EnginePowerCut." + test_name);
    PowerCutRun run(cfg, seed);
    run.Run(cycles);
    if (::testing::Test::HasFailure()) {
      run.DumpHistory();
      return;
    }
    if (test::EnvU64("REMAPFS_POWERCUT_VERBOSE", 0) != 0) {
      std::printf("[%s seed %llu] %s\n", test_name, static_cast<unsigned long long>(seed), run.Summary().c_str());
    }
  }
}

TEST(EnginePowerCut, RandomCuts512) { RunSeeds({.sector_size = 512, .sectors = 128, .slots = 400}, "RandomCuts512"); }

TEST(EnginePowerCut, RandomCuts4096) { RunSeeds({.sector_size = 4096, .sectors = 64, .slots = 200}, "RandomCuts4096"); }

// --- focused cases ---

// The daemon dies between writing a commit to the WAL and syncing it; it is
// restarted without a reboot, so SQLite sees that commit in the page cache.
// Here the commit unremapped sector 5, freeing slot 0. The new engine must
// make the commit durable before it trusts it: otherwise it reuses slot 0
// for sector 9, syncs SPARE, dies before its own commit, and a power cut
// brings back 5 -> slot 0 over sector 9's data.
TEST(EnginePowerCut, CommitLeftInThePageCacheByAKillIsMadeDurableAtOpen) {
  test::QuietLogs quiet;
  test::MemSet set(/*main_size=*/64 * 4096, /*slots=*/1, /*sector_size=*/4096);
  const std::string& db = set.paths.db;
  EngineOptions options;
  options.sqlite_vfs = FaultVfs::Name();
  options.commit_interval = std::chrono::hours(1);
  const std::string v5 = test::Pattern(4096, 5), v9 = test::Pattern(4096, 9);
  auto add_fault = [](Engine* e, uint64_t sector) {
    FaultRule r, added;
    r.device = Device::kMain;
    r.sectors = {sector, 1};
    r.op = FaultOp::kWrite;
    return e->AddFaultRule(r, &added);
  };

  auto e = set.OpenOrDie(options);
  ASSERT_TRUE(add_fault(e.get(), 5).ok());
  ASSERT_TRUE(e->Write(5 * 4096, 4096, v5.data()).ok());
  ASSERT_TRUE(e->Flush().ok());
  ASSERT_TRUE(e->RemoveFaultRule(e->ListFaultRules().at(0).id).ok());
  ASSERT_TRUE(e->Unremap(5).ok());
  ASSERT_TRUE(add_fault(e.get(), 9).ok());
  // The flush syncs MAIN (the copy back) and writes the commit; the process
  // dies at the WAL sync. Then kill -9 without a power cut.
  const uint64_t death = FaultVfs::Inject({.path_prefix = db, .file = VfsFile::kWal, .op = VfsOp::kSync, .kill = true});
  e->Flush();
  ASSERT_EQ(FaultVfs::Fired(death), 1u);
  e->AbandonForTest();
  e.reset();
  FaultVfs::Revive(db);
  ASSERT_GT(FaultVfs::UnsyncedBlocks(db), 0u);

  // The restarted engine sees the unremap; slot 0 is free. Sector 9 takes
  // it; this time the process dies at the commit's first WAL write, after
  // SPARE was synced.
  e = set.OpenOrDie(options);
  ASSERT_TRUE(e->List(0, 64).empty());
  ASSERT_TRUE(e->Write(9 * 4096, 4096, v9.data()).ok());
  ASSERT_EQ(e->List(0, 64), (std::vector<Mapping>{{9, 0}}));
  FaultVfs::Inject({.path_prefix = db, .file = VfsFile::kWal, .op = VfsOp::kWrite, .kill = true});
  e->Flush();
  e->AbandonForTest();
  e.reset();
  FaultVfs::ClearFaults(db);
  PowerCutAll(&set.env, db, /*seed=*/1, /*tear=*/false);

  ASSERT_NO_FATAL_FAILURE(test::ExpectCheckClean(set));
  e = set.OpenOrDie(options);
  std::string got(4096, '\0');
  ASSERT_TRUE(e->Read(5 * 4096, 4096, got.data()).ok());
  EXPECT_TRUE(e->List(5, 6).empty()) << "the unremap of sector 5 was undone by the power cut";
  EXPECT_TRUE(got == v5) << "sector 5 lost its flushed content";
  ASSERT_TRUE(e->Close().ok());
}

}  // namespace
}  // namespace remapfs
