// Engine: the remap engine of one open set. Byte-addressed read, write and
// flush of the exposed image, with the behaviour of DESIGN.md: a failed MAIN
// write remaps its bad sectors and succeeds; a failed MAIN read is retried,
// then answers EIO and makes the sector pending; a write to a pending sector
// remaps it; a failed slot write marks the slot bad and takes another.
//
// Concurrency: every method is thread-safe. Requests take per-region locks
// (64 KiB regions, 4096 stripes): reads shared, writes and table edits
// exclusive. So two writers hitting one bad sector allocate one slot, a slot
// is never read while its mapping changes, and a read-modify-write of a slot
// cannot lose a concurrent update. The table and slot allocator sit behind
// one more lock, held only for lookups and edits, never during I/O.
// Lock order: region stripes (ascending), then the table lock (ACQUIRED_AFTER,
// checked by clang), then the writer's, which only MetaWriter's own calls take.
// clang's -Wthread-safety checks the annotations below (see mutex.h).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/backend.h"
#include "store/changes.h"
#include "store/fault.h"
#include "store/health.h"
#include "store/io_ring.h"
#include "store/log_limiter.h"
#include "store/meta_store.h"
#include "store/metadata_writer.h"
#include "store/mutex.h"
#include "store/remap_table.h"
#include "store/set_format.h"
#include "store/slot_allocator.h"

namespace remapfs {

struct EngineOptions {
  Env* env = nullptr;  // nullptr: Env::Default()
  // Open regular-file images O_DIRECT too (block devices always are).
  bool direct_io = false;
  // Attempts per sector when a read of MAIN failed, before it is pending.
  int read_attempts = 3;
  // The metadata writer commits at least this often while changes wait.
  std::chrono::milliseconds commit_interval{1000};
  // The SQLite VFS for the DB (tests: FaultVfs::Name()); empty: the default.
  std::string sqlite_vfs;
  // Accept a MAIN whose identity differs from the recorded one and record
  // its identity instead (`remapctl rebind`, after a move to a clone). Its
  // size must still match, and another set's MAIN is still refused.
  bool rebind_main = false;
  // The daemon's control channel (ControlServer::name()), recorded in the DB
  // as the set is opened; empty: none (an offline remapctl change).
  std::string control_socket;
};

// The manual sector changes (Engine::Remap, Unremap, MarkPending), and the
// one place for the refusals of the engine's manual changes, shared with
// SetControl's offline changes, which refuse bad input against the DB
// before they open a set (set_control.h).
enum class SectorChange { kRemap, kUnremap, kMarkPending };
// InvalidArgument unless sector < sector_count.
Status CheckSectorInRange(uint64_t sector, uint64_t sector_count);
// Whether `change` applies to a sector whose table entry is `entry`
// (nullopt: normal; kPendingSlot: pending).
Status CheckSectorChange(SectorChange change, uint64_t sector, std::optional<uint32_t> entry);
// Whether Engine::AddFaultRule takes `rule` for the set `info` describes
// (FaultRule::Validate against the rule's device).
Status CheckFaultRule(const FaultRule& rule, const SetInfo& info);
// Engine::RemoveFaultRule's refusal of an id that names no rule.
Status NoFaultRule(uint64_t id);

class Engine {
 public:
  // Opens a set. Refuses with one clear line, and modifies nothing, when the
  // parts do not belong together, MAIN's size or identity changed (see
  // identity.h), a file is corrupt or truncated, or another process has the
  // set (Busy). Records MAIN's identity when the DB has none yet.
  static Status Open(const SetPaths& paths, const EngineOptions& options, std::unique_ptr<Engine>* result);
  // Closes (see Close) if not done yet.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The ordered shutdown, steps 3-6 of DESIGN.md, each logged with its
  // duration: sync MAIN and SPARE; commit what is pending and stop the
  // metadata writer; checkpoint the WAL, mark the DB clean and close it;
  // release the locks and close the images.
  // REQUIRES: no request is in flight or will start (the caller stopped them).
  Status Close() EXCLUDES(close_mu_);

  // Test hook: simulates `kill -9` of the daemon. Stops the metadata writer
  // WITHOUT committing what it has queued, does not sync MAIN or SPARE, does
  // not checkpoint the WAL nor mark the DB clean; then closes the DB and the
  // images as the kernel would for a dead process (no sync, locks released).
  // A later Close (or the destructor) does nothing. Pair it with
  // MemEnv::PowerCut to simulate a power loss. Tests only.
  // REQUIRES: no request is in flight or will start.
  void AbandonForTest() EXCLUDES(close_mu_);

  // REQUIRES for I/O: offset + n <= size().
  Status Read(uint64_t offset, size_t n, char* out) EXCLUDES(table_mu_);
  Status Write(uint64_t offset, size_t n, const char* data) EXCLUDES(table_mu_);

  // Read and Write that need not block the caller. `done->Done(status)` is
  // called exactly once: from the ring's thread for a request that went to
  // the disk asynchronously, else from the calling thread before the call
  // returns. A request goes asynchronously when there is a ring (images
  // opened O_DIRECT), it is one run of MAIN or of slots aligned for direct
  // I/O, its buffer is aligned (AlignedBuffer::kAlign), and no fault rule
  // is set; a failed asynchronous I/O is done again as Read or Write do it
  // (retries, pending sectors, remaps), on the ring's thread. The buffer
  // must stay valid until Done. The request holds its regions until Done.
  class IoDone {
   public:
    virtual void Done(Status s) = 0;

   protected:
    ~IoDone() = default;
  };
  void ReadAsync(uint64_t offset, size_t n, char* out, IoDone* done) EXCLUDES(table_mu_);
  void WriteAsync(uint64_t offset, size_t n, const char* data, IoDone* done) EXCLUDES(table_mu_);
  // Read without a copy: when [offset, offset + n) is one run of MAIN or of
  // slots whose image can splice (Backend::SpliceTo), moves its bytes into
  // the pipe `pipe` (write end) and counts the read. False when it did not:
  // nothing was counted, the pipe may hold a part, which the caller
  // discards before it reads the ordinary way (Read), which also deals with
  // what made the splice fail (retries, pending sectors, error counters).
  // The bytes are the image's pages, not a copy: a write that overlaps the
  // read while its reply is on its way may show in it, as in any concurrent
  // overlapping read and write of a disk.
  bool SpliceRead(uint64_t offset, size_t n, int pipe) EXCLUDES(table_mu_);
  // Whether ReadAsync and WriteAsync can go asynchronously at all.
  bool async() const { return ring_ != nullptr; }
  // Makes every acknowledged write and table change durable (DESIGN.md,
  // durability 2).
  Status Flush();

  // Copies a readable normal sector to a slot and serves it from there.
  Status Remap(uint64_t sector) EXCLUDES(table_mu_);
  // Serves a sector from MAIN again: a remapped one is copied back and
  // verified first; a pending one is simply forgotten.
  Status Unremap(uint64_t sector) EXCLUDES(table_mu_);
  // Declares a normal sector unreadable (reads fail until it is written).
  Status MarkPending(uint64_t sector) EXCLUDES(table_mu_);

  Status AddFaultRule(const FaultRule& rule, FaultRule* added);
  Status RemoveFaultRule(uint64_t id);
  void ClearFaultRules();
  std::vector<FaultRule> ListFaultRules() const;

  // The scrub's steps (scrub.h), each under the regions it reads, so that a
  // step and a request of the same sectors never overlap. A read that fails
  // with a media error is tried read_attempts times in all; a sector that
  // answers only after a retry, or slower than `slow`, is marginal. Each
  // step counts what it read (scrub_bytes) and what it found. A step gives
  // up between two reads once *stop is set (*finished false: the step is
  // to be done again); a failure that is not the disk's (the store cannot
  // record a change) ends it with that status. *bytes: what the step read.
  // A step is best one region (kRegionShift): it holds its regions.
  static constexpr int kRegionShift = 16;  // 64 KiB regions
  struct ScrubCheck {
    std::chrono::milliseconds slow{500};
    const std::atomic<bool>* stop = nullptr;
  };
  // MAIN's normal sectors in [first, end): one that stays unreadable becomes
  // pending; a marginal one is copied to a new slot while it can still be
  // read (event "rescued").
  Status ScrubMain(uint64_t first, uint64_t end, const ScrubCheck& check, uint64_t* bytes, bool* finished)
      EXCLUDES(table_mu_);
  // The slots of the remapped sectors in [first, end). A slot that fails is
  // retired (bad): its sector moves to a new slot when the data could still
  // be read (after retries, or slowly), else becomes pending, as no other
  // copy of it exists (MAIN's is older).
  Status ScrubSlots(uint64_t first, uint64_t end, const ScrubCheck& check, uint64_t* bytes, bool* finished)
      EXCLUDES(table_mu_);
  // The first remapped (not pending) sector >= first.
  std::optional<uint64_t> NextRemapped(uint64_t first) const EXCLUDES(table_mu_);
  // Records where the scrub is, for the next open (committed with the
  // table's changes); pass_done also counts a completed pass.
  void SaveScrubState(const ScrubState& state, bool pass_done);
  // The scrub's state as this open found it in the DB.
  const ScrubState& saved_scrub_state() const { return saved_scrub_; }
  // Slots that hold a sector (the scrub's pass reads them).
  uint32_t slots_used() const EXCLUDES(table_mu_);
  // Read and write requests so far (the scrub yields while they come).
  uint64_t requests() const { return counters_.Get(Counter::kReads) + counters_.Get(Counter::kWrites); }

  // Table entries with sector in [first, end), in order.
  std::vector<Mapping> List(uint64_t first, uint64_t end) const EXCLUDES(table_mu_);
  Health GetHealth() const EXCLUDES(table_mu_);

  uint64_t size() const { return info_.main_size; }
  uint32_t sector_size() const { return info_.sector_size; }
  uint64_t sector_count() const { return info_.sector_count(); }
  const std::string& uuid() const { return info_.uuid; }

 private:
  class RegionGuard;
  struct Run;
  struct RunList;
  class AsyncOp;

  Engine(const SetInfo& info, const EngineOptions& options);
  // Open's steps: load the table, fault rules and counters from the DB
  // (checking them after an unclean stop); then take the parts and start
  // the writer. REQUIRES: no other thread has the engine yet.
  Status LoadState(MetaStore* meta, const std::string& db, std::vector<InvalidFaultRule>* invalid_rules);
  void Start(std::unique_ptr<MetaStore> meta, std::unique_ptr<Backend> main, std::unique_ptr<Backend> spare);

  Status CheckRange(uint64_t offset, size_t n) const;
  Status CheckSector(uint64_t sector) const;
  // The region stripes, which to the analysis are one lock (see RegionGuard):
  // a function that needs its regions locked REQUIRES regions_.
  // Region r is guarded by stripe r % kStripes: a few random requests in
  // flight rarely share one (the birthday bound: 16 in flight, ~3%).
  static constexpr size_t kStripes = 4096;
  struct CAPABILITY("region locks") Regions {
    std::array<HandoffSharedMutex, kStripes> stripes;  // released by AsyncOp's thread too
  };

  // The sector's entry, and whether `change` may be made to it. The caller
  // holds the sector's region (an out-of-range sector's region is harmless:
  // stripes are taken modulo their count), so the answer stays true.
  Status CheckChange(SectorChange change, uint64_t sector, std::optional<uint32_t>* entry) REQUIRES(regions_)
      EXCLUDES(table_mu_);
  // Splits the request into runs of MAIN, slot and pending sectors.
  // REQUIRES: *list is empty.
  void RunsFor(uint64_t offset, size_t n, RunList* list) const REQUIRES_SHARED(regions_) EXCLUDES(table_mu_);
  Status SyncData();

  // Read and Write after the range check and the counters, under the
  // request's regions. REQUIRES: n > 0.
  Status ReadRange(uint64_t offset, size_t n, char* out) REQUIRES_SHARED(regions_) EXCLUDES(table_mu_);
  Status WriteRange(uint64_t offset, size_t n, const char* data) REQUIRES(regions_) EXCLUDES(table_mu_);
  // Starts ReadAsync's or WriteAsync's request on the ring, counting it;
  // false when it must be done synchronously (Read or Write).
  bool StartAsync(bool write, uint64_t offset, size_t n, char* buf, IoDone* done) EXCLUDES(table_mu_);

  Status ReadMainSlow(uint64_t begin, uint64_t end, char* out) REQUIRES_SHARED(regions_) EXCLUDES(table_mu_);
  Status WriteMainSlow(uint64_t begin, uint64_t end, const char* data) REQUIRES(regions_) EXCLUDES(table_mu_);
  Status WriteSlotRun(const Run& run, uint64_t begin, uint64_t end, const char* data) REQUIRES(regions_)
      EXCLUDES(table_mu_);
  // Writes `len` bytes at `in_off` of `sector` into a new slot, filling the
  // rest of the sector from its current place.
  Status RemapSector(uint64_t sector, uint32_t in_off, size_t len, const char* part, const char* why)
      REQUIRES(regions_) EXCLUDES(table_mu_);
  // Puts a full sector into a new slot and maps it.
  Status PlaceInNewSlot(uint64_t sector, const char* full, const char* why,
                        EventKind kind = EventKind::kRemapped) REQUIRES(regions_) EXCLUDES(table_mu_);
  void MarkSlotBad(uint32_t slot, uint64_t sector, const char* why) EXCLUDES(table_mu_);
  // One sector read the scrub's way (ScrubCheck): *marginal when it took a
  // retry or was slow. Leaves early, with the last status, once *stop is set.
  Status ScrubRead(Backend* device, uint64_t offset, char* out, const ScrubCheck& check, bool* marginal);
  // Makes a sector pending unless it has an entry already (another request
  // of the same region, also holding it shared, got there first).
  void MarkPendingUnlessMapped(uint64_t sector, const char* why) REQUIRES_SHARED(regions_) EXCLUDES(table_mu_);
  // Makes a sector pending; over_slot: also when it has a slot (that slot
  // then maps nothing: the caller retires it).
  void SetPending(uint64_t sector, const char* why, bool over_slot) REQUIRES_SHARED(regions_) EXCLUDES(table_mu_);
  void RecordEvent(EventKind kind, uint64_t sector, int64_t slot, std::string detail);
  // The item logs below: summaries of ended intervals (Tick), or all (Flush).
  void TickItemLogs();
  void FlushItemLogs();

  const SetInfo info_;
  const EngineOptions options_;
  const std::shared_ptr<FaultRules> rules_;
  std::unique_ptr<MetaStore> meta_;
  std::unique_ptr<Backend> main_;
  std::unique_ptr<Backend> spare_;
  Counters counters_;
  bool was_clean_ = true;
  ScrubState saved_scrub_;
  std::atomic<bool> spare_low_logged_{false};
  // One line per remap, pending sector or bad slot, up to a burst an
  // interval; a storm beyond that gets summary lines (log_limiter.h).
  LogLimiter remap_log_{"sector", "remapped", spdlog::level::warn};
  LogLimiter pending_log_{"sector", "made pending", spdlog::level::warn};
  LogLimiter bad_slot_log_{"spare slot", "found bad", spdlog::level::warn};
  LogLimiter exhausted_log_{"sector", "refused for want of a spare slot", spdlog::level::err};

  Regions regions_;
  mutable SharedMutex table_mu_ ACQUIRED_AFTER(regions_);
  RemapTable table_ GUARDED_BY(table_mu_);
  SlotAllocator alloc_ GUARDED_BY(table_mu_);
  uint64_t pending_count_ GUARDED_BY(table_mu_) = 0;

  std::unique_ptr<MetaWriter> writer_;
  // Present when an image is opened O_DIRECT and the kernel has io_uring.
  std::unique_ptr<IoRing> ring_;
  Mutex close_mu_;
  bool closed_ GUARDED_BY(close_mu_) = false;
};

// engine->Remap, Unremap or MarkPending of `sector`, as `change` says.
Status ChangeSector(Engine* engine, SectorChange change, uint64_t sector);

}  // namespace remapfs
