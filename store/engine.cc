#include "store/engine.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <memory_resource>

#include "store/check.h"
#include "store/identity.h"

namespace remapfs {

namespace {

// Entries of the submission queue: more than FUSE keeps in flight (its
// background requests, Filesystem's max_background, plus the workers).
constexpr unsigned kRingDepth = 256;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

// Locks the stripes of every region that [offset, offset + n) touches, in
// ascending stripe order, shared or exclusive; unlocks on destruction. To the
// analysis it holds all of `regions`: which stripes a request needs is known
// only at run time, and the analysis follows only locks named in the code. So
// it checks that what needs its regions locked runs under some RegionGuard,
// not under the right stripes, and the stripe loops themselves are exempt.
class SCOPED_CAPABILITY Engine::RegionGuard {
 public:
  struct Shared {};
  // Exclusive: writes and table edits.
  RegionGuard(Regions* regions, uint64_t offset, uint64_t n) ACQUIRE(regions)
      : RegionGuard(regions, offset, n, /*exclusive=*/true) {}
  // Shared: reads.
  RegionGuard(Regions* regions, uint64_t offset, uint64_t n, Shared) ACQUIRE_SHARED(regions)
      : RegionGuard(regions, offset, n, /*exclusive=*/false) {}
  ~RegionGuard() RELEASE() NO_THREAD_SAFETY_ANALYSIS {
    ForEachStripe([&](HandoffSharedMutex& m) { exclusive_ ? m.Unlock() : m.UnlockShared(); });
  }
  RegionGuard(const RegionGuard&) = delete;
  RegionGuard& operator=(const RegionGuard&) = delete;

 private:
  RegionGuard(Regions* regions, uint64_t offset, uint64_t n, bool exclusive) NO_THREAD_SAFETY_ANALYSIS
      : stripes_(regions->stripes), exclusive_(exclusive) {
    const uint64_t first = offset >> kRegionShift;
    const uint64_t last = (offset + (n == 0 ? 1 : n) - 1) >> kRegionShift;
    if (last - first + 1 >= kStripes) {
      lo_ = 0;
      hi_ = kStripes - 1;
    } else {
      lo_ = first % kStripes;
      hi_ = last % kStripes;  // below lo_ when the range wraps around
    }
    ForEachStripe([&](HandoffSharedMutex& m) { exclusive_ ? m.Lock() : m.LockShared(); });
  }

  // The stripes held, in ascending order (a wrapped range is [0, hi_] and
  // [lo_, kStripes)), so that no two requests wait on each other.
  template <typename Fn>
  void ForEachStripe(Fn fn) {
    if (lo_ <= hi_) {
      for (size_t i = lo_; i <= hi_; ++i) fn(stripes_[i]);
    } else {
      for (size_t i = 0; i <= hi_; ++i) fn(stripes_[i]);
      for (size_t i = lo_; i < kStripes; ++i) fn(stripes_[i]);
    }
  }

  std::array<HandoffSharedMutex, kStripes>& stripes_;
  const bool exclusive_;
  size_t lo_, hi_;
};

// A maximal stretch of sectors served the same way: from MAIN, from
// consecutive slots, or pending.
struct Engine::Run {
  enum Kind { kMain, kSlot, kPending } kind;
  uint64_t first;  // sector
  uint64_t count;
  uint32_t slot;   // first slot, for kSlot
  // Where byte `offset` of the image lies on the run's device (MAIN or
  // SPARE). REQUIRES: not kPending; offset within the run.
  uint64_t At(uint64_t offset, uint32_t sector_size) const {
    return kind == kMain ? offset : SlotOffset(slot, sector_size) + (offset - first * sector_size);
  }
};

// The runs of one request. Every request takes them, so they live in the
// caller's frame up to 8 runs (the vector's growths take 1 + 2 + 4 + 8 of
// the 16 places): a request without a remapped sector (one run), and most
// others, cost no heap allocation.
struct Engine::RunList {
  alignas(Run) std::array<std::byte, 16 * sizeof(Run)> buffer;
  std::pmr::monotonic_buffer_resource pool{buffer.data(), buffer.size()};
  std::pmr::vector<Run> runs{&pool};
};

Engine::Engine(const SetInfo& info, const EngineOptions& options)
    : info_(info), options_(options), rules_(std::make_shared<FaultRules>()), alloc_(info.slot_count) {}

namespace {

// Opens the DB and both images and checks that they belong together.
Status OpenParts(const SetPaths& paths, const EngineOptions& options, std::unique_ptr<MetaStore>* meta,
                 std::unique_ptr<Backend>* main, std::unique_ptr<Backend>* spare) {
  Env* env = options.env ? options.env : Env::Default();
  Status s = CheckDistinctParts(paths);
  if (!s.ok()) return s;
  s = MetaStore::Open(paths.db, /*read_only=*/false, meta, options.sqlite_vfs);
  if (s.IsNotFound()) {
    return Status::NotFound("DB " + paths.db + " does not exist; make a set first with `remapctl create`");
  }
  if (!s.ok()) return s;
  const BackendOptions bo{.direct = options.direct_io, .lock = true};
  s = env->OpenBackend(paths.main, bo, main);
  if (s.ok()) s = env->OpenBackend(paths.spare, bo, spare);
  if (s.ok()) s = ValidateParts((*meta)->info(), paths.db, main->get(), spare->get(), options.rebind_main);
  return s;
}

// Records MAIN's identity where the DB has none yet (a set made before DB
// format 2) or where the caller rebinds the set to a new MAIN. Only called
// once every check has passed.
Status RecordMainIdentity(MetaStore* meta, Backend* main, const std::string& main_path, bool rebind) {
  const SetInfo& info = meta->info();
  if (!info.main_identity.empty() && !rebind) return Status::OK();
  const std::string before = info.main_identity;
  std::string identity;
  Status s = StampMain(main, info.uuid, &identity);
  if (s.ok() && identity != before) s = meta->SetMainIdentity(identity);
  if (!s.ok()) return s;
  if (before.empty()) {
    spdlog::info("set {}: recorded MAIN's identity '{}' (the set was made by an older remapfs)", info.uuid, identity);
  } else if (identity != before) {
    spdlog::info("set {}: MAIN is now {} (identity '{}', was '{}')", info.uuid, main_path, identity, before);
  }
  return Status::OK();
}

}  // namespace

Status Engine::Open(const SetPaths& paths, const EngineOptions& options, std::unique_ptr<Engine>* result) {
  std::unique_ptr<MetaStore> meta;
  std::unique_ptr<Backend> main, spare;
  Status s = OpenParts(paths, options, &meta, &main, &spare);
  if (!s.ok()) return s;
  const SetInfo& info = meta->info();
  std::unique_ptr<Engine> engine(new Engine(info, options));
  std::vector<InvalidFaultRule> invalid_rules;
  s = engine->LoadState(meta.get(), paths.db, &invalid_rules);
  if (s.ok()) s = RecordMainIdentity(meta.get(), main.get(), paths.main, options.rebind_main);
  if (!s.ok()) return s;
  if (info.main_identity == kSizeOnlyIdentity) {
    spdlog::warn("set {}: MAIN {} has no stable identifier (no serial, WWN or by-id name): only its size tells it "
                 "from another disk",
                 info.uuid, paths.main);
  }
  // Read before SetOpen, which sets info.clean (a reference) to false.
  engine->was_clean_ = info.clean;
  s = meta->SetOpen(AbsolutePath(paths.main), AbsolutePath(paths.spare), options.control_socket);
  // The check passed: the recorded failure has been reported (log, Health)
  // and is cleared.
  if (s.ok() && !info.last_error.empty()) s = meta->SetLastError("");
  if (!s.ok()) return s;
  engine->Start(std::move(meta), std::move(main), std::move(spare));
  for (const InvalidFaultRule& r : invalid_rules) engine->writer_->Enqueue(EraseFaultRule{r.id});
  *result = std::move(engine);
  return Status::OK();
}

Status Engine::LoadState(MetaStore* meta, const std::string& db, std::vector<InvalidFaultRule>* invalid_rules) {
  const SetInfo& info = meta->info();
  if (!info.last_error.empty()) {
    spdlog::warn("the last run of set {} could not commit its table at its stop ({}); checking it", info.uuid,
                 info.last_error);
  } else if (!info.clean) {
    spdlog::warn("set {} was not shut down cleanly; checking its table", info.uuid);
  }
  const bool check = !info.clean || !info.last_error.empty();
  if (check) {
    // What the DB shows may include commits of the last run that reached the
    // WAL but not the disk (it died between writing and syncing a commit, or
    // the sync failed): they are in the page cache, and SQLite sees them.
    // Make them durable before the table is trusted: a slot that one of
    // their unremaps freed could be reused and overwritten here, and a power
    // cut then bring back the old mapping to it (DESIGN.md, durability 3).
    // The checkpoint syncs the WAL, then the DB.
    Status s = meta->Checkpoint();
    if (!s.ok()) return s;
  }
  std::vector<std::string> problems;
  Status s;
  {
    // No other thread has the engine yet; the lock is for the analysis.
    WriterLock lock(&table_mu_);
    s = LoadTable(meta, &table_, &alloc_, &problems);
    uint64_t pending = 0;
    table_.ForEach([&pending](const Mapping& m) { pending += m.pending(); });
    pending_count_ = pending;
  }
  if (s.ok() && check) s = meta->IntegrityCheck(/*full=*/false, &problems);
  if (!s.ok()) return s;
  if (!problems.empty()) {
    return Status::Corruption("DB " + db + " is inconsistent: " + problems.front() + " (" +
                              std::to_string(problems.size()) + " problem(s); run `remapctl check`)");
  }
  std::vector<FaultRule> rules;
  s = meta->LoadFaultRules(&rules, invalid_rules);
  if (!s.ok()) return s;
  for (const FaultRule& r : rules) rules_->Add(r);
  // A rule the DB holds but that could not have been added (a damaged or
  // hand-edited DB) is dropped, from the DB too (Open), rather than obeyed
  // or allowed to keep the set from opening.
  for (const InvalidFaultRule& r : *invalid_rules) {
    spdlog::warn("DB {}: fault rule {} is invalid ({}); dropped", db, r.id, r.reason);
  }
  std::vector<std::pair<std::string, uint64_t>> counters;
  s = meta->LoadCounters(&counters);
  if (!s.ok()) return s;
  counters_.Load(counters);
  // A damaged scrub row costs the pass's position, not the set.
  s = meta->LoadScrubState(&saved_scrub_);
  if (s.code() == Status::Code::kCorruption) {
    spdlog::warn("{}; the scrub starts afresh", s.message());
    s = Status::OK();
  }
  return s;
}

void Engine::Start(std::unique_ptr<MetaStore> meta, std::unique_ptr<Backend> main, std::unique_ptr<Backend> spare) {
  const uint32_t ss = info_.sector_size;
  if (main->direct().fd >= 0 || spare->direct().fd >= 0) {
    Status s = IoRing::Open(kRingDepth, &ring_);
    if (!s.ok()) {
      spdlog::warn("no asynchronous I/O ({}): each request keeps a worker thread while it is at the disk",
                   s.ToString());
    }
  }
  main_ = std::make_unique<FaultyBackend>(std::move(main), Device::kMain, ss, 0, rules_);
  spare_ = std::make_unique<FaultyBackend>(std::move(spare), Device::kSpare, ss, kSpareHeaderSize, rules_);
  meta_ = std::move(meta);
  writer_ = std::make_unique<MetaWriter>(
      meta_.get(), &counters_,
      MetaWriter::Hooks{
          .sync_data = [this] { return SyncData(); },
          .on_durable =
              [this](uint64_t seq) {
                {
                  WriterLock lock(&table_mu_);
                  alloc_.ReleaseDurable(seq);
                  if (alloc_.free_count() * uint64_t{10} >= alloc_.slot_count()) spare_low_logged_ = false;
                }
                // Commits go on while a storm lasts: its summaries come out
                // each interval, not only at the next event.
                TickItemLogs();
              },
      },
      options_.commit_interval);
  // The writer's thread runs now, and its on_durable edits the allocator.
  ReaderLock lock(&table_mu_);
  spdlog::info("opened set {}: {} sectors of {} bytes, {} remapped, {} pending, {}/{} slots free", info_.uuid,
               sector_count(), ss, table_.size() - pending_count_, pending_count_, alloc_.free_count(),
               info_.slot_count);
}

Engine::~Engine() { Close(); }

Status Engine::Close() {
  MutexLock close_lock(&close_mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  // An Open that failed midway destroys its engine before the writer, the DB
  // and the images are in it: there is nothing to shut down.
  if (!writer_) return Status::OK();
  // No request is in flight, but the ring's thread may still be leaving
  // the last one: it ends before anything it uses is closed.
  if (ring_) ring_->Stop();
  FlushItemLogs();  // no request runs any more: the storms' last summaries
  auto t = Clock::now();
  Status result = SyncData();
  spdlog::info("shutdown step 3: MAIN and SPARE synced in {:.1f} ms{}", MsSince(t),
               result.ok() ? "" : " (" + result.ToString() + ")");
  // The final commit must not follow a failed sync (see MetaWriter).
  if (!result.ok()) writer_->NoteSyncFailure(result);
  t = Clock::now();
  Status s = writer_->Stop();
  spdlog::info("shutdown step 4: metadata writer committed and stopped in {:.1f} ms{}", MsSince(t),
               s.ok() ? "" : " (" + s.ToString() + ")");
  if (result.ok()) result = s;
  t = Clock::now();
  // Only an orderly stop marks the set clean; otherwise the next open checks.
  // Every commit is durable already: the checkpoint does not wait for a
  // reader of the DB (another process) to hold up the stop.
  if (result.ok()) result = meta_->Checkpoint(/*wait_for_readers=*/false);
  if (result.ok()) result = meta_->SetClean(true);
  if (!result.ok()) {
    // The set stays marked not clean, so the next open checks it; where the
    // DB still takes a write, it also learns why.
    Status r = meta_->SetLastError(result.ToString());
    spdlog::error("set {} could not stop in order: {}; it stays marked unclean{}", info_.uuid, result.ToString(),
                  r.ok() ? " and the next open will check it" : " (recording this in the DB failed too: " +
                                                                     r.ToString() + ")");
  }
  meta_.reset();
  spdlog::info("shutdown step 5: DB checkpointed, marked {} and closed in {:.1f} ms",
               result.ok() ? "clean" : "unclean", MsSince(t));
  t = Clock::now();
  main_.reset();
  spare_.reset();
  spdlog::info("shutdown step 6: locks released, images closed in {:.1f} ms", MsSince(t));
  return result;
}

void Engine::AbandonForTest() {
  MutexLock close_lock(&close_mu_);
  if (closed_) return;
  closed_ = true;
  if (ring_) ring_->Stop();
  writer_->Abandon();
  meta_.reset();
  main_.reset();
  spare_.reset();
  spdlog::warn("set {} abandoned without an orderly stop (test hook)", info_.uuid);
}

Status Engine::SyncData() {
  Status s = spare_->Sync();
  Status m = main_->Sync();
  return s.ok() ? m : s;
}

Status Engine::CheckRange(uint64_t offset, size_t n) const {
  if (offset > size() || n > size() - offset) {
    return Status::InvalidArgument("range " + std::to_string(offset) + "+" + std::to_string(n) +
                                   " is past the end of the image (" + std::to_string(size()) + " bytes)");
  }
  return Status::OK();
}

Status CheckSectorInRange(uint64_t sector, uint64_t sector_count) {
  if (sector >= sector_count) {
    return Status::InvalidArgument("sector " + std::to_string(sector) + " is out of range (the image has " +
                                   std::to_string(sector_count) + " sectors)");
  }
  return Status::OK();
}

Status CheckSectorChange(SectorChange change, uint64_t sector, std::optional<uint32_t> entry) {
  const std::string what = "sector " + std::to_string(sector);
  const bool pending = entry && *entry == kPendingSlot;
  switch (change) {
    case SectorChange::kRemap:
      if (pending) return Status::InvalidArgument(what + " is pending; write it to remap it");
      if (entry) return Status::InvalidArgument(what + " is already remapped to slot " + std::to_string(*entry));
      break;
    case SectorChange::kUnremap:
      if (!entry) return Status::NotFound(what + " is neither remapped nor pending");
      break;
    case SectorChange::kMarkPending:
      if (entry && !pending) {
        return Status::InvalidArgument(what + " is remapped to slot " + std::to_string(*entry) + "; unremap it first");
      }
      break;
  }
  return Status::OK();
}

Status CheckFaultRule(const FaultRule& rule, const SetInfo& info) {
  return rule.Validate(rule.device == Device::kMain ? info.sector_count() : info.slot_count);
}

Status NoFaultRule(uint64_t id) { return Status::NotFound("no fault rule with id " + std::to_string(id)); }

Status ChangeSector(Engine* engine, SectorChange change, uint64_t sector) {
  switch (change) {
    case SectorChange::kRemap: return engine->Remap(sector);
    case SectorChange::kUnremap: return engine->Unremap(sector);
    case SectorChange::kMarkPending: return engine->MarkPending(sector);
  }
  return Status::InvalidArgument("unknown sector change");
}

Status Engine::CheckSector(uint64_t sector) const { return CheckSectorInRange(sector, sector_count()); }

void Engine::RunsFor(uint64_t offset, size_t n, RunList* list) const {
  const uint64_t ss = sector_size();
  const uint64_t s0 = offset / ss, s1 = (offset + n + ss - 1) / ss;
  std::pmr::vector<Run>& runs = list->runs;
  uint64_t cur = s0;
  ReaderLock lock(&table_mu_);
  table_.ForEachIn(s0, s1, [&](const Mapping& m) {
    if (m.sector > cur) runs.push_back(Run{Run::kMain, cur, m.sector - cur, 0});
    Run* last = runs.empty() ? nullptr : &runs.back();
    const bool contiguous = last && last->first + last->count == m.sector;
    if (m.pending()) {
      if (contiguous && last->kind == Run::kPending) {
        ++last->count;
      } else {
        runs.push_back(Run{Run::kPending, m.sector, 1, 0});
      }
    } else if (contiguous && last->kind == Run::kSlot && last->slot + last->count == m.slot) {
      ++last->count;
    } else {
      runs.push_back(Run{Run::kSlot, m.sector, 1, m.slot});
    }
    cur = m.sector + 1;
  });
  if (cur < s1) runs.push_back(Run{Run::kMain, cur, s1 - cur, 0});
}

Status Engine::Read(uint64_t offset, size_t n, char* out) {
  Status s = CheckRange(offset, n);
  if (!s.ok()) return s;
  counters_.Add(Counter::kReads);
  counters_.Add(Counter::kBytesRead, n);
  if (n == 0) return s;
  RegionGuard guard(&regions_, offset, n, RegionGuard::Shared{});
  return ReadRange(offset, n, out);
}

bool Engine::SpliceRead(uint64_t offset, size_t n, int pipe) {
  if (n == 0 || !CheckRange(offset, n).ok()) return false;
  RegionGuard guard(&regions_, offset, n, RegionGuard::Shared{});
  RunList list;
  RunsFor(offset, n, &list);
  const Run& r = list.runs.front();
  if (list.runs.size() != 1 || r.kind == Run::kPending) return false;
  const Status s = (r.kind == Run::kMain ? main_ : spare_)->SpliceTo(r.At(offset, sector_size()), n, pipe);
  if (!s.ok()) return false;  // Read will meet the same failure and deal with it
  counters_.Add(Counter::kReads);
  counters_.Add(Counter::kBytesRead, n);
  return true;
}

Status Engine::ReadRange(uint64_t offset, size_t n, char* out) {
  Status s;
  const uint64_t ss = sector_size(), end = offset + n;
  RunList list;
  RunsFor(offset, n, &list);
  for (const Run& r : list.runs) {
    const uint64_t b = std::max(offset, r.first * ss), e = std::min(end, (r.first + r.count) * ss);
    char* dst = out + (b - offset);
    switch (r.kind) {
      case Run::kPending:
        s = Status::IOError("sector " + std::to_string(b / ss) + " is pending: unreadable until written", EIO);
        break;
      case Run::kSlot:
        s = spare_->ReadAt(r.At(b, sector_size()), e - b, dst);
        if (!s.ok()) counters_.Add(Counter::kSpareReadErrors);
        break;
      case Run::kMain:
        s = main_->ReadAt(b, e - b, dst);
        if (!s.ok()) {
          counters_.Add(Counter::kMainReadErrors);
          if (s.IsMediaError()) s = ReadMainSlow(b, e, dst);
        }
        break;
    }
    if (!s.ok()) {
      counters_.Add(Counter::kReadEIO);
      return s;
    }
  }
  return s;
}

// A read of MAIN failed with a media error: read sector by sector with
// retries so that only the sectors that really fail become pending. An error
// that is not the medium's ends it at once and changes nothing.
Status Engine::ReadMainSlow(uint64_t begin, uint64_t end, char* out) {
  const uint64_t ss = sector_size();
  Status first_error;
  for (uint64_t sector = begin / ss; sector * ss < end; ++sector) {
    const uint64_t b = std::max(begin, sector * ss), e = std::min(end, (sector + 1) * ss);
    Status s;
    for (int attempt = 0; attempt < std::max(1, options_.read_attempts); ++attempt) {
      s = main_->ReadAt(b, e - b, out + (b - begin));
      if (s.ok() || !s.IsMediaError()) break;
    }
    if (!s.ok() && !s.IsMediaError()) return s;
    if (!s.ok()) {
      MarkPendingUnlessMapped(sector, "read failed");
      if (first_error.ok()) {
        first_error = Status::IOError("sector " + std::to_string(sector) + " of MAIN is unreadable (" +
                                          s.message() + "); it is now pending",
                                      EIO);
      }
    }
  }
  return first_error;
}

Status Engine::Write(uint64_t offset, size_t n, const char* data) {
  Status s = CheckRange(offset, n);
  if (!s.ok()) return s;
  counters_.Add(Counter::kWrites);
  counters_.Add(Counter::kBytesWritten, n);
  if (n == 0) return s;
  RegionGuard guard(&regions_, offset, n);
  return WriteRange(offset, n, data);
}

Status Engine::WriteRange(uint64_t offset, size_t n, const char* data) {
  Status s;
  const uint64_t ss = sector_size(), end = offset + n;
  RunList list;
  RunsFor(offset, n, &list);
  for (const Run& r : list.runs) {
    const uint64_t b = std::max(offset, r.first * ss), e = std::min(end, (r.first + r.count) * ss);
    const char* src = data + (b - offset);
    switch (r.kind) {
      case Run::kMain:
        s = main_->WriteAt(b, e - b, src);
        if (!s.ok()) {
          counters_.Add(Counter::kMainWriteErrors);
          if (s.IsMediaError()) s = WriteMainSlow(b, e, src);
        }
        break;
      case Run::kSlot:
        s = WriteSlotRun(r, b, e, src);
        break;
      case Run::kPending:
        for (uint64_t sector = r.first; s.ok() && sector < r.first + r.count; ++sector) {
          const uint64_t sb = std::max(b, sector * ss), se = std::min(e, (sector + 1) * ss);
          s = RemapSector(sector, static_cast<uint32_t>(sb - sector * ss), se - sb, data + (sb - offset),
                          "write to a pending sector");
        }
        break;
    }
    if (!s.ok()) {
      counters_.Add(Counter::kWriteEIO);
      return s;
    }
  }
  return s;
}

// An asynchronous request at the disk. It holds its regions from before
// its runs are looked up until it is done, as Read and Write hold theirs.
class Engine::AsyncOp final : public IoRing::Op {
 public:
  AsyncOp(Engine* engine, bool write, uint64_t offset, size_t n, char* buf, IoDone* done)
      : engine_(engine), write_(write), offset_(offset), n_(n), buf_(buf), done_(done),
        guard_(write ? std::make_unique<RegionGuard>(&engine->regions_, offset, n)
                     : std::make_unique<RegionGuard>(&engine->regions_, offset, n, RegionGuard::Shared{})) {}

  // The analysis cannot follow a guard on the heap; guard_ holds the regions.
  void Complete(int result) override NO_THREAD_SAFETY_ANALYSIS {
    Status s;
    if (result < 0 || static_cast<size_t>(result) != n_) {
      // Again, synchronously: Read and Write's handling of what fails
      // (retries, pending sectors, remaps) and their counting of it.
      s = write_ ? engine_->WriteRange(offset_, n_, buf_) : engine_->ReadRange(offset_, n_, buf_);
    }
    IoDone* done = done_;
    delete this;  // releases the regions before the reply
    done->Done(s);
  }

 private:
  Engine* const engine_;
  const bool write_;
  const uint64_t offset_;
  const size_t n_;
  char* const buf_;
  IoDone* const done_;
  const std::unique_ptr<RegionGuard> guard_;
};

void Engine::ReadAsync(uint64_t offset, size_t n, char* out, IoDone* done) {
  if (!StartAsync(false, offset, n, out, done)) done->Done(Read(offset, n, out));
}

void Engine::WriteAsync(uint64_t offset, size_t n, const char* data, IoDone* done) {
  if (!StartAsync(true, offset, n, const_cast<char*>(data), done)) done->Done(Write(offset, n, data));
}

// The analysis cannot follow the AsyncOp's guard on the heap, which holds
// the regions for RunsFor.
bool Engine::StartAsync(bool write, uint64_t offset, size_t n, char* buf, IoDone* done) NO_THREAD_SAFETY_ANALYSIS {
  if (!ring_ || n == 0 || reinterpret_cast<uintptr_t>(buf) % AlignedBuffer::kAlign != 0 || !CheckRange(offset, n).ok()) {
    return false;
  }
  auto op = std::make_unique<AsyncOp>(this, write, offset, n, buf, done);
  RunList list;
  RunsFor(offset, n, &list);
  const Run& r = list.runs.front();
  if (list.runs.size() != 1 || r.kind == Run::kPending) return false;
  const uint64_t ss = sector_size();
  // A partial sector of a slot is a read-modify-write (WriteSlotRun).
  if (r.kind == Run::kSlot && write && (offset % ss != 0 || n % ss != 0)) return false;
  const uint64_t at = r.At(offset, sector_size());
  const Backend::Direct d = (r.kind == Run::kMain ? main_ : spare_)->direct();
  if (d.fd < 0 || d.align > AlignedBuffer::kAlign || at % d.align != 0 || n % d.align != 0) return false;
  counters_.Add(write ? Counter::kWrites : Counter::kReads);
  counters_.Add(write ? Counter::kBytesWritten : Counter::kBytesRead, n);
  if (write) {
    ring_->Write(d.fd, buf, n, at, op.release());
  } else {
    ring_->Read(d.fd, buf, n, at, op.release());
  }
  return true;
}

// A write to MAIN failed with a media error: write sector by sector and
// remap those that fail so.
Status Engine::WriteMainSlow(uint64_t begin, uint64_t end, const char* data) {
  const uint64_t ss = sector_size();
  for (uint64_t sector = begin / ss; sector * ss < end; ++sector) {
    const uint64_t b = std::max(begin, sector * ss), e = std::min(end, (sector + 1) * ss);
    Status s = main_->WriteAt(b, e - b, data + (b - begin));
    if (s.IsMediaError()) {
      s = RemapSector(sector, static_cast<uint32_t>(b - sector * ss), e - b, data + (b - begin), "write failed");
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// Writes into the slots of a run. Whole sectors go in one request when the
// range is sector-aligned; partial sectors are a read-modify-write of their
// slot. A slot whose write fails with a media error is marked bad and the
// sector moves to a new slot.
Status Engine::WriteSlotRun(const Run& run, uint64_t begin, uint64_t end, const char* data) {
  const uint64_t ss = sector_size();
  if (begin % ss == 0 && end % ss == 0) {
    Status s = spare_->WriteAt(run.At(begin, sector_size()), end - begin, data);
    if (s.ok() || !s.IsMediaError()) return s;
  }
  std::string merged;
  for (uint64_t sector = begin / ss; sector * ss < end; ++sector) {
    const uint64_t b = std::max(begin, sector * ss), e = std::min(end, (sector + 1) * ss);
    const uint32_t slot = run.slot + static_cast<uint32_t>(sector - run.first);
    const char* full = data + (b - begin);
    if (e - b < ss) {
      merged.resize(ss);
      Status s = spare_->ReadAt(SlotOffset(slot, sector_size()), ss, merged.data());
      if (!s.ok()) {
        counters_.Add(Counter::kSpareReadErrors);
        return Status::IOError("partial write to sector " + std::to_string(sector) + " needs slot " +
                                   std::to_string(slot) + ", which cannot be read: " + s.message(),
                               s.ToErrno());
      }
      std::memcpy(merged.data() + (b - sector * ss), data + (b - begin), e - b);
      full = merged.data();
    }
    Status s = spare_->WriteAt(SlotOffset(slot, sector_size()), ss, full);
    if (!s.ok() && s.IsMediaError()) {
      counters_.Add(Counter::kSpareWriteErrors);
      // Move the sector first, then retire its old slot: no table, in
      // memory or in the DB (even between two commits), maps a sector to a
      // bad slot. With no free slot the sector keeps its slot and the write
      // fails with EIO.
      s = PlaceInNewSlot(sector, full, "slot write failed");
      if (s.ok()) MarkSlotBad(slot, sector, "slot write failed");
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status Engine::RemapSector(uint64_t sector, uint32_t in_off, size_t len, const char* part, const char* why) {
  const uint64_t ss = sector_size();
  if (len == ss) return PlaceInNewSlot(sector, part, why);
  // A partial sector: the rest comes from MAIN, which must be readable;
  // remapfs never invents data.
  std::optional<uint32_t> current;
  {
    ReaderLock lock(&table_mu_);
    current = table_.Find(sector);
  }
  std::string full(ss, '\0');
  Status s = current ? Status::IOError("sector " + std::to_string(sector) + " is pending", EIO)
                     : main_->ReadAt(sector * ss, ss, full.data());
  if (!s.ok()) {
    if (!s.IsMediaError()) return s;
    if (!current) MarkPendingUnlessMapped(sector, "read for a partial write failed");
    return Status::IOError("partial write to sector " + std::to_string(sector) +
                               " cannot be remapped: the rest of the sector is unreadable (" + s.message() + ")",
                           EIO);
  }
  std::memcpy(full.data() + in_off, part, len);
  return PlaceInNewSlot(sector, full.data(), why);
}

Status Engine::PlaceInNewSlot(uint64_t sector, const char* full, const char* why, EventKind kind) {
  // A remap that the DB cannot record would live only in memory, and the
  // writer's queue would only grow: refuse it while commits fail (the writer
  // retries each cycle; the first successful commit ends this).
  if (Status store = writer_->commit_error(); !store.ok()) {
    return Status::IOError("sector " + std::to_string(sector) + " needs a new spare slot (" + why +
                               "), but the metadata store cannot record it: " + store.message(),
                           EIO);
  }
  for (;;) {
    std::optional<uint32_t> slot;
    bool spare_low = false;
    {
      WriterLock lock(&table_mu_);
      slot = alloc_.Allocate();
      spare_low = alloc_.free_count() * uint64_t{10} < alloc_.slot_count();
    }
    // Said once each time the spare runs low, not on every remap.
    if (spare_low && !spare_low_logged_.exchange(true)) {
      spdlog::warn("SPARE is running low: fewer than 10% of its {} slots are free", info_.slot_count);
    }
    if (!slot) {
      counters_.Add(Counter::kSpareExhausted);
      RecordEvent(EventKind::kSpareExhausted, sector, -1, why);
      if (exhausted_log_.Admit(sector)) {
        spdlog::error("no free spare slot for sector {} ({}): SPARE is exhausted", sector, why);
      }
      return Status::IOError("no free spare slot for sector " + std::to_string(sector) + ": SPARE is exhausted",
                             EIO);
    }
    Status s = spare_->WriteAt(SlotOffset(*slot, sector_size()), sector_size(), full);
    if (!s.ok() && !s.IsMediaError()) {
      // Not the slot's fault (host filesystem full, no memory...): the slot
      // is as good as before, and nothing refers to it yet.
      WriterLock lock(&table_mu_);
      alloc_.Unallocate(*slot);
      return s;
    }
    if (!s.ok()) {
      counters_.Add(Counter::kSpareWriteErrors);
      MarkSlotBad(*slot, sector, "slot write failed");
      continue;
    }
    {
      WriterLock lock(&table_mu_);
      std::optional<uint32_t> old = table_.Find(sector);
      if (old && *old == kPendingSlot) --pending_count_;
      table_.Set(sector, *slot);
      writer_->Enqueue(PutSector{sector, *slot});
    }
    counters_.Add(Counter::kRemaps);
    RecordEvent(kind, sector, *slot, why);
    if (remap_log_.Admit(sector)) spdlog::warn("sector {} remapped to slot {} ({})", sector, *slot, why);
    return Status::OK();
  }
}

void Engine::MarkSlotBad(uint32_t slot, uint64_t sector, const char* why) {
  {
    WriterLock lock(&table_mu_);
    alloc_.MarkBad(slot);
    writer_->Enqueue(PutBadSlot{slot});
  }
  RecordEvent(EventKind::kSlotBad, sector, slot, why);
  if (bad_slot_log_.Admit(slot)) spdlog::warn("spare slot {} of sector {} is bad ({})", slot, sector, why);
}

void Engine::MarkPendingUnlessMapped(uint64_t sector, const char* why) { SetPending(sector, why, false); }

void Engine::SetPending(uint64_t sector, const char* why, bool over_slot) {
  {
    WriterLock lock(&table_mu_);
    if (!over_slot && table_.Find(sector)) return;  // another reader got there first
    table_.Set(sector, kPendingSlot);
    ++pending_count_;
    writer_->Enqueue(PutSector{sector, kPendingSlot});
  }
  counters_.Add(Counter::kPendingMarked);
  RecordEvent(EventKind::kPending, sector, -1, why);
  if (pending_log_.Admit(sector)) spdlog::warn("sector {} is pending ({})", sector, why);
}

void Engine::TickItemLogs() {
  for (LogLimiter* l : {&remap_log_, &pending_log_, &bad_slot_log_, &exhausted_log_}) l->Tick();
}

void Engine::FlushItemLogs() {
  for (LogLimiter* l : {&remap_log_, &pending_log_, &bad_slot_log_, &exhausted_log_}) l->Flush();
}

void Engine::RecordEvent(EventKind kind, uint64_t sector, int64_t slot, std::string detail) {
  writer_->Enqueue(Event{NowUnixUs(), kind, sector, slot, std::move(detail)});
}

Status Engine::Flush() {
  counters_.Add(Counter::kFlushes);
  Status s = writer_->Flush();
  if (!s.ok()) counters_.Add(Counter::kFlushErrors);
  return s;
}

Status Engine::CheckChange(SectorChange change, uint64_t sector, std::optional<uint32_t>* entry) {
  Status s = CheckSector(sector);
  if (!s.ok()) return s;
  {
    ReaderLock lock(&table_mu_);
    *entry = table_.Find(sector);
  }
  return CheckSectorChange(change, sector, *entry);
}

Status Engine::Remap(uint64_t sector) {
  const uint64_t ss = sector_size();
  RegionGuard guard(&regions_, sector * ss, ss);
  std::optional<uint32_t> current;
  Status s = CheckChange(SectorChange::kRemap, sector, &current);
  if (!s.ok()) return s;
  std::string data(ss, '\0');
  s = main_->ReadAt(sector * ss, ss, data.data());
  if (!s.ok()) {
    counters_.Add(Counter::kMainReadErrors);
    if (s.IsMediaError()) s = ReadMainSlow(sector * ss, (sector + 1) * ss, data.data());
    if (!s.ok()) return s;
  }
  return PlaceInNewSlot(sector, data.data(), "manual remap");
}

Status Engine::Unremap(uint64_t sector) {
  const uint64_t ss = sector_size();
  RegionGuard guard(&regions_, sector * ss, ss);
  std::optional<uint32_t> slot;
  Status s = CheckChange(SectorChange::kUnremap, sector, &slot);
  if (!s.ok()) return s;
  if (*slot != kPendingSlot) {
    // Copy back, then verify MAIN holds it, before the mapping goes.
    std::string data(ss, '\0'), check(ss, '\0');
    s = spare_->ReadAt(SlotOffset(*slot, sector_size()), ss, data.data());
    if (!s.ok()) {
      counters_.Add(Counter::kSpareReadErrors);
      return s;
    }
    s = main_->WriteAt(sector * ss, ss, data.data());
    if (s.ok()) s = main_->ReadAt(sector * ss, ss, check.data());
    if (s.ok() && data != check) s = Status::IOError("read-back differs", EIO);
    if (!s.ok()) {
      return Status::IOError("MAIN still fails at sector " + std::to_string(sector) + " (" + s.message() +
                                 "); the remap is kept",
                             s.ToErrno());
    }
  }
  {
    WriterLock lock(&table_mu_);
    table_.Erase(sector);
    const uint64_t seq = writer_->Enqueue(EraseSector{sector});
    if (*slot == kPendingSlot) {
      --pending_count_;
    } else {
      alloc_.Release(*slot, seq);
    }
  }
  counters_.Add(Counter::kUnremaps);
  RecordEvent(EventKind::kUnremapped, sector, *slot == kPendingSlot ? -1 : int64_t{*slot}, "unremap");
  spdlog::info("sector {} unremapped", sector);
  return Status::OK();
}

Status Engine::MarkPending(uint64_t sector) {
  RegionGuard guard(&regions_, sector * sector_size(), sector_size());
  std::optional<uint32_t> entry;
  Status s = CheckChange(SectorChange::kMarkPending, sector, &entry);
  if (!s.ok()) return s;
  MarkPendingUnlessMapped(sector, "marked by hand");
  return Status::OK();
}

Status Engine::AddFaultRule(const FaultRule& rule, FaultRule* added) {
  Status s = CheckFaultRule(rule, info_);
  if (!s.ok()) return s;
  *added = rules_->Add(rule);
  writer_->Enqueue(PutFaultRule{*added});
  spdlog::info("fault rule {} added: {}", added->id, added->ToString());
  return Status::OK();
}

Status Engine::RemoveFaultRule(uint64_t id) {
  if (!rules_->Remove(id)) return NoFaultRule(id);
  writer_->Enqueue(EraseFaultRule{static_cast<int64_t>(id)});
  spdlog::info("fault rule {} removed", id);
  return Status::OK();
}

void Engine::ClearFaultRules() {
  rules_->Clear();
  writer_->Enqueue(EraseFaultRule{std::nullopt});
  spdlog::info("fault rules cleared");
}

std::vector<FaultRule> Engine::ListFaultRules() const { return rules_->List(); }

std::vector<Mapping> Engine::List(uint64_t first, uint64_t end) const {
  std::vector<Mapping> out;
  ReaderLock lock(&table_mu_);
  table_.Collect(first, end, &out);
  return out;
}

Status Engine::ScrubRead(Backend* device, uint64_t offset, char* out, const ScrubCheck& check, bool* marginal) {
  *marginal = false;
  Status s;
  for (int attempt = 0; attempt < std::max(1, options_.read_attempts); ++attempt) {
    if (attempt > 0 && check.stop && check.stop->load(std::memory_order_relaxed)) break;
    const auto t = Clock::now();
    s = device->ReadAt(offset, sector_size(), out);
    if (s.ok()) {
      *marginal = attempt > 0 || Clock::now() - t >= check.slow;
      return s;
    }
    if (!s.IsMediaError()) return s;
  }
  return s;
}

Status Engine::ScrubMain(uint64_t first, uint64_t end, const ScrubCheck& check, uint64_t* bytes, bool* finished) {
  *finished = false;
  *bytes = 0;
  const uint64_t ss = sector_size();
  AlignedBuffer buffer;
  char* buf = buffer.Get((end - first) * ss);
  if (!buf) return Status::IOError("no memory for the scrub's buffer", ENOMEM);
  RegionGuard guard(&regions_, first * ss, (end - first) * ss);
  RunList list;
  RunsFor(first * ss, (end - first) * ss, &list);
  for (const Run& r : list.runs) {
    if (r.kind != Run::kMain) continue;
    auto t = Clock::now();
    Status s = main_->ReadAt(r.first * ss, r.count * ss, buf);
    counters_.Add(Counter::kScrubBytes, r.count * ss);
    *bytes += r.count * ss;
    if (s.ok() && Clock::now() - t < check.slow) continue;
    if (!s.ok() && !s.IsMediaError()) return s;
    if (!s.ok()) counters_.Add(Counter::kMainReadErrors);
    const Status run_read = s;
    bool found = false;
    // Sector by sector: which of them fail, or are slow.
    for (uint64_t sector = r.first; sector < r.first + r.count; ++sector) {
      if (check.stop && check.stop->load(std::memory_order_relaxed)) return Status::OK();
      bool marginal = false;
      s = ScrubRead(main_.get(), sector * ss, buf, check, &marginal);
      if (s.IsMediaError()) {
        found = true;
        counters_.Add(Counter::kScrubUnreadable);
        MarkPendingUnlessMapped(sector, "unreadable (scrub)");
        continue;
      }
      if (!s.ok()) return s;
      if (!marginal) continue;
      found = true;
      // No free slot is no reason to stop: the sector stays on MAIN, and
      // PlaceInNewSlot said why (an EIO).
      s = PlaceInNewSlot(sector, buf, "marginal read (scrub)", EventKind::kRescued);
      if (s.ok()) counters_.Add(Counter::kScrubRescued);
      if (!s.ok() && !s.IsMediaError()) return s;
    }
    // Which sector made the run's read fail (or slow) cannot be told when
    // each then reads at once: nothing is moved on a guess.
    if (!found && !(check.stop && check.stop->load(std::memory_order_relaxed))) {
      spdlog::warn("scrub: a read of sectors {}-{} of MAIN {} but each of them then read well; nothing moved",
                   r.first, r.first + r.count - 1, run_read.ok() ? "was slow" : "failed (" + run_read.message() + ")");
    }
  }
  *finished = true;
  return Status::OK();
}

Status Engine::ScrubSlots(uint64_t first, uint64_t end, const ScrubCheck& check, uint64_t* bytes, bool* finished) {
  *finished = false;
  *bytes = 0;
  const uint64_t ss = sector_size();
  std::string data(ss, '\0');
  RegionGuard guard(&regions_, first * ss, (end - first) * ss);
  std::vector<Mapping> remapped;
  {
    ReaderLock lock(&table_mu_);
    table_.ForEachIn(first, end, [&](const Mapping& m) {
      if (!m.pending()) remapped.push_back(m);
    });
  }
  for (const Mapping& m : remapped) {
    if (check.stop && check.stop->load(std::memory_order_relaxed)) return Status::OK();
    bool marginal = false;
    Status s = ScrubRead(spare_.get(), SlotOffset(m.slot, ss), data.data(), check, &marginal);
    counters_.Add(Counter::kScrubBytes, ss);
    *bytes += ss;
    if (s.ok() && !marginal) continue;
    if (!s.ok() && !s.IsMediaError()) return s;
    if (!s.ok()) counters_.Add(Counter::kSpareReadErrors);
    // The sector's new home first, then the slot's retirement: the DB never
    // maps a sector to a bad slot, whichever commit a crash stops at.
    if (s.ok()) {
      s = PlaceInNewSlot(m.sector, data.data(), "its slot reads marginally (scrub)", EventKind::kRescued);
      if (s.ok()) counters_.Add(Counter::kScrubRescued);
      if (!s.ok() && !s.IsMediaError()) return s;
      if (!s.ok()) continue;  // no slot to move to: the marginal one still serves
    } else {
      SetPending(m.sector, "its slot is unreadable (scrub)", /*over_slot=*/true);
    }
    counters_.Add(Counter::kScrubSlotsRetired);
    MarkSlotBad(m.slot, m.sector, s.ok() ? "reads marginally (scrub)" : "unreadable (scrub)");
  }
  *finished = true;
  return Status::OK();
}

std::optional<uint64_t> Engine::NextRemapped(uint64_t first) const {
  ReaderLock lock(&table_mu_);
  for (std::optional<Mapping> m = table_.FirstFrom(first); m; m = table_.FirstFrom(m->sector + 1)) {
    if (!m->pending()) return m->sector;
  }
  return std::nullopt;
}

void Engine::SaveScrubState(const ScrubState& state, bool pass_done) {
  if (pass_done) counters_.Add(Counter::kScrubPasses);
  writer_->Enqueue(PutScrubState{state});
}

uint32_t Engine::slots_used() const {
  ReaderLock lock(&table_mu_);
  return alloc_.used_count();
}

Health Engine::GetHealth() const {
  Health h;
  h.counters = counters_.Snapshot();
  {
    ReaderLock lock(&table_mu_);
    h.pending_sectors = pending_count_;
    h.remapped_sectors = table_.size() - pending_count_;
    h.slots_total = alloc_.slot_count();
    h.slots_free = alloc_.free_count();
    h.slots_used = alloc_.used_count();
    h.slots_bad = alloc_.bad_count();
    h.slots_quarantined = alloc_.quarantined_count();
    h.table_bytes = table_.MemoryBytes();
  }
  h.was_clean = was_clean_;
  h.previous_store_error = info_.last_error;
  if (Status s = writer_->commit_error(); !s.ok()) h.store_error = s.ToString();
  if (Status s = writer_->sync_error(); !s.ok()) h.sync_error = s.ToString();
  return h;
}

}  // namespace remapfs
