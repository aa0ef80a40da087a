#include "store/meta_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "store/mutex.h"
#include "store/remap_table.h"

namespace remapfs {

namespace {

constexpr int kBusyTimeoutMs = 5000;  // waiting for another process's lock

const char* const kSchema = R"sql(
CREATE TABLE set_info(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  uuid TEXT NOT NULL,
  sector_size INTEGER NOT NULL,
  main_size INTEGER NOT NULL,
  slot_count INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  clean INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  main_path TEXT NOT NULL,
  spare_path TEXT NOT NULL,
  main_identity TEXT NOT NULL DEFAULT '',
  control_socket TEXT NOT NULL DEFAULT '');
CREATE TABLE sectors(sector INTEGER PRIMARY KEY, slot INTEGER);  -- slot NULL: pending
CREATE TABLE bad_slots(slot INTEGER PRIMARY KEY);
CREATE TABLE fault_rules(
  id INTEGER PRIMARY KEY, device TEXT NOT NULL, first_sector INTEGER NOT NULL,
  sector_count INTEGER NOT NULL, op TEXT NOT NULL, times INTEGER NOT NULL,
  probability REAL NOT NULL, seed INTEGER NOT NULL, delay_ms INTEGER NOT NULL);
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time_us INTEGER NOT NULL, kind TEXT NOT NULL,
  sector INTEGER NOT NULL, slot INTEGER, detail TEXT NOT NULL);
CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql";

// Added after format 2 without a format change: a DB without it is read as
// one whose scrub never ran, and it is made by the first write (PrepareWrites).
const char* const kScrubSchema = R"sql(
CREATE TABLE IF NOT EXISTS scrub(
  id INTEGER PRIMARY KEY CHECK (id = 1), run TEXT NOT NULL, position INTEGER NOT NULL, rate INTEGER NOT NULL,
  pass_started_us INTEGER NOT NULL, last_pass_us INTEGER NOT NULL);
)sql";

}  // namespace

Status MetaStore::Create(const std::string& path, const SetInfo& info, const std::string& vfs) {
  if (::access(path.c_str(), F_OK) == 0) {
    return Status::InvalidArgument("DB " + path + " already exists; remapctl create never overwrites a set");
  }
  // Owner-only: SQLite gives the WAL and shm files the DB file's mode.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create DB " + path, errno);
  ::close(fd);
  std::unique_ptr<sqlite::Database> db;
  Status s = sqlite::Database::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, vfs);
  if (!s.ok()) return s;
  s = db->Exec("PRAGMA journal_mode=WAL");
  if (s.ok()) s = db->Exec("PRAGMA synchronous=FULL");
  if (s.ok()) {
    sqlite::Transaction txn(*db);
    s = txn.status();
    if (s.ok()) s = db->Exec(kSchema);
    if (s.ok()) {
      s = db->Exec("PRAGMA application_id=" + std::to_string(kApplicationId) +
                   "; PRAGMA user_version=" + std::to_string(kFormatVersion));
    }
    if (s.ok()) {
      sqlite::Statement st;
      s = st.Prepare(*db,
                     "INSERT INTO set_info(id, uuid, sector_size, main_size, slot_count, created_us, clean, "
                     "main_path, spare_path, main_identity) VALUES (1, ?, ?, ?, ?, ?, 1, ?, ?, ?)");
      if (s.ok()) {
        s = st.Bind(1, info.uuid)
                .Bind(2, int64_t{info.sector_size})
                .Bind(3, static_cast<int64_t>(info.main_size))
                .Bind(4, int64_t{info.slot_count})
                .Bind(5, info.created_us)
                .Bind(6, info.main_path)
                .Bind(7, info.spare_path)
                .Bind(8, info.main_identity)
                .Run();
      }
    }
    if (s.ok()) s = txn.Commit();
  }
  if (!s.ok()) {
    db.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  }
  return s;
}

Status MetaStore::Open(const std::string& path, bool read_only, std::unique_ptr<MetaStore>* result,
                       const std::string& vfs) {
  if (::access(path.c_str(), F_OK) != 0) {
    return Status::FromErrno("DB " + path, errno);
  }
  std::unique_ptr<sqlite::Database> db;
  Status s = sqlite::Database::Open(path, read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, &db, vfs);
  if (!s.ok()) return s;
  std::unique_ptr<MetaStore> store(new MetaStore(std::move(db)));
  s = store->ReadInfo();
  if (!s.ok()) return s;
  if (!read_only) {
    // A larger page cache keeps big commits (a million remaps) out of the WAL.
    s = store->db_->Exec("PRAGMA synchronous=FULL; PRAGMA cache_size=-16384");
    if (!s.ok()) return s;
  }
  *result = std::move(store);
  return Status::OK();
}

MetaStore::~MetaStore() = default;

Status MetaStore::ReadInfo() {
  sqlite3_busy_timeout(db_->handle(), kBusyTimeoutMs);
  const std::string& path = db_->path();
  sqlite::Statement st;
  bool row = false;
  Status s = st.Prepare(*db_, "PRAGMA application_id");
  if (s.ok()) s = st.Step(&row);
  // An I/O error (or disk full) while reading says nothing about the format.
  if (s.IsIOError()) return s;
  if (!s.ok()) return Status::Corruption(path + " is not a remapfs DB (" + s.message() + ")");
  if (!row || st.Int(0) != kApplicationId) {
    return Status::Corruption(path + " is not a remapfs DB (wrong application_id)");
  }
  s = st.Prepare(*db_, "PRAGMA user_version");
  if (s.ok()) s = st.Step(&row);
  if (!s.ok()) return s;
  format_version_ = st.Int(0);
  if (format_version_ != 1 && format_version_ != kFormatVersion) {
    return Status::Corruption("DB " + path + " has format version " + std::to_string(format_version_) +
                              "; this remapfs reads versions 1 to " + std::to_string(kFormatVersion));
  }
  // Format 1 has neither main_identity nor control_socket.
  const std::string select = std::string("SELECT uuid, sector_size, main_size, slot_count, created_us, clean, ") +
                             "last_error, main_path, spare_path, " +
                             (format_version_ == 1 ? "'', ''" : "main_identity, control_socket") +
                             " FROM set_info WHERE id = 1";
  s = st.Prepare(*db_, select.c_str());
  if (s.ok()) s = st.Step(&row);
  if (s.IsIOError()) return s;
  if (!s.ok()) return Status::Corruption("DB " + path + " is damaged: " + s.message());
  if (!row) return Status::Corruption("DB " + path + " has no set identity row");
  info_.uuid = st.Text(0);
  info_.sector_size = static_cast<uint32_t>(st.Int(1));
  info_.main_size = static_cast<uint64_t>(st.Int(2));
  info_.slot_count = static_cast<uint32_t>(st.Int(3));
  info_.created_us = st.Int(4);
  info_.clean = st.Int(5) != 0;
  info_.last_error = st.Text(6);
  info_.main_path = st.Text(7);
  info_.spare_path = st.Text(8);
  info_.main_identity = st.Text(9);
  info_.control_socket = st.Text(10);
  if ((info_.sector_size != 512 && info_.sector_size != 4096) || info_.main_size == 0 ||
      info_.main_size % info_.sector_size != 0) {
    return Status::Corruption("DB " + path + " holds an impossible set identity (sector size " +
                              std::to_string(info_.sector_size) + ", MAIN size " +
                              std::to_string(info_.main_size) + ")");
  }
  return Status::OK();
}

namespace {

struct SectorRow {
  uint64_t sector;
  uint32_t slot;
};
using SectorRows = std::vector<SectorRow>;

// Batches of rows between the thread that steps a query and the caller's.
// At most kDepth batches exist; an emptied one goes back to be filled again.
class RowPipe {
 public:
  static constexpr size_t kRows = 16384;
  static constexpr size_t kDepth = 4;

  // Reader: an empty batch to fill; false once the caller has gone.
  bool TakeEmpty(SectorRows* rows) {
    MutexLock lock(&mu_);
    while (free_.empty() && made_ == kDepth && !closed_) cv_.Wait(mu_);
    if (closed_) return false;
    if (free_.empty()) {
      ++made_;
      rows->reserve(kRows);
    } else {
      *rows = std::move(free_.back());
      free_.pop_back();
    }
    rows->clear();
    return true;
  }
  void PutFull(SectorRows rows) {
    MutexLock lock(&mu_);
    full_.push_back(std::move(rows));
    cv_.SignalAll();
  }
  void Finish(Status s) {
    MutexLock lock(&mu_);
    done_ = true;
    status_ = std::move(s);
    cv_.SignalAll();
  }

  // Caller: the next full batch, in order; false after the last one.
  bool TakeFull(SectorRows* rows) {
    MutexLock lock(&mu_);
    while (full_.empty() && !done_) cv_.Wait(mu_);
    if (full_.empty()) return false;
    *rows = std::move(full_.front());
    full_.erase(full_.begin());
    return true;
  }
  void PutEmpty(SectorRows rows) {
    MutexLock lock(&mu_);
    free_.push_back(std::move(rows));
    cv_.SignalAll();
  }
  // The caller stops taking batches: the reader stops at its next one.
  void Close() {
    MutexLock lock(&mu_);
    closed_ = true;
    cv_.SignalAll();
  }
  Status status() {
    MutexLock lock(&mu_);
    return status_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::vector<SectorRows> full_ GUARDED_BY(mu_);
  std::vector<SectorRows> free_ GUARDED_BY(mu_);
  size_t made_ GUARDED_BY(mu_) = 0;
  bool done_ GUARDED_BY(mu_) = false;
  bool closed_ GUARDED_BY(mu_) = false;
  Status status_ GUARDED_BY(mu_);
};

}  // namespace

Status MetaStore::LoadSectors(const std::function<void(uint64_t, uint32_t)>& fn) {
  // With millions of rows, stepping the query and the caller's work on each
  // row (building a table) cost about the same: another thread steps it, so
  // the two overlap and a big set opens in about half the time.
  RowPipe pipe;
  std::jthread reader([this, &pipe] {
    sqlite::Statement st;
    Status s = st.Prepare(*db_, "SELECT sector, slot FROM sectors ORDER BY sector");
    SectorRows rows;
    bool row = true;
    while (s.ok() && row && pipe.TakeEmpty(&rows)) {
      while (rows.size() < RowPipe::kRows && (s = st.Step(&row)).ok() && row) {
        rows.push_back({static_cast<uint64_t>(st.Int(0)), st.IsNull(1) ? kPendingSlot : static_cast<uint32_t>(st.Int(1))});
      }
      pipe.PutFull(std::move(rows));
    }
    pipe.Finish(std::move(s));
  });
  SectorRows rows;
  while (pipe.TakeFull(&rows)) {
    for (const SectorRow& r : rows) fn(r.sector, r.slot);
    pipe.PutEmpty(std::move(rows));
  }
  pipe.Close();
  reader.join();
  return pipe.status();
}

Status MetaStore::LoadSector(uint64_t sector, std::optional<uint32_t>* slot) {
  *slot = std::nullopt;
  if (sector > static_cast<uint64_t>(INT64_MAX)) return Status::OK();  // no row has such a key
  sqlite::Statement st;
  Status s = st.Prepare(*db_, "SELECT slot FROM sectors WHERE sector = ?");
  if (!s.ok()) return s;
  st.Bind(1, static_cast<int64_t>(sector));
  bool row = false;
  s = st.Step(&row);
  if (s.ok() && row) *slot = st.IsNull(0) ? kPendingSlot : static_cast<uint32_t>(st.Int(0));
  return s;
}

Status MetaStore::LoadBadSlots(const std::function<void(uint32_t)>& fn) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_, "SELECT slot FROM bad_slots ORDER BY slot");
  bool row = false;
  while (s.ok() && (s = st.Step(&row)).ok() && row) fn(static_cast<uint32_t>(st.Int(0)));
  return s;
}

Status MetaStore::LoadFaultRules(std::vector<FaultRule>* rules, std::vector<InvalidFaultRule>* invalid) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_,
                        "SELECT id, device, first_sector, sector_count, op, times, probability, seed, "
                        "delay_ms FROM fault_rules ORDER BY id");
  bool row = false;
  while (s.ok() && (s = st.Step(&row)).ok() && row) {
    const int64_t id = st.Int(0);
    const std::string device_name = st.Text(1), op_name = st.Text(4);
    auto device = ParseDevice(device_name);
    auto op = ParseFaultOp(op_name);
    const int64_t first = st.Int(2), count = st.Int(3), times = st.Int(5), delay_ms = st.Int(8);
    std::string reason;
    if (id < 1) {
      reason = "id " + std::to_string(id) + " is not positive";
    } else if (!device) {
      reason = "device '" + device_name + "' is not main or spare";
    } else if (!op) {
      reason = "op '" + op_name + "' is not read, write or both";
    } else if (first < 0 || count < 0 || times < 0 || delay_ms < 0 || delay_ms > FaultRule::kMaxDelayMs) {
      reason = "a number is negative or out of range";
    } else {
      FaultRule r;
      r.id = static_cast<uint64_t>(id);
      r.device = *device;
      r.sectors = {static_cast<uint64_t>(first), static_cast<uint64_t>(count)};
      r.op = *op;
      r.times = static_cast<uint64_t>(times);
      r.probability = st.Double(6);
      r.seed = static_cast<uint64_t>(st.Int(7));  // any 64 bits
      r.delay_ms = static_cast<uint32_t>(delay_ms);
      const Status v = r.Validate(r.device == Device::kMain ? info_.main_size / info_.sector_size : info_.slot_count);
      if (v.ok()) {
        rules->push_back(r);
        continue;
      }
      reason = v.message();
    }
    invalid->push_back(InvalidFaultRule{id, std::move(reason)});
  }
  return s;
}

Status MetaStore::LoadCounters(std::vector<std::pair<std::string, uint64_t>>* counters) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_, "SELECT name, value FROM counters");
  bool row = false;
  while (s.ok() && (s = st.Step(&row)).ok() && row) {
    counters->emplace_back(st.Text(0), static_cast<uint64_t>(st.Int(1)));
  }
  return s;
}

Status MetaStore::LoadScrubState(ScrubState* state) {
  *state = ScrubState{};
  sqlite::Statement st;
  bool row = false;
  Status s = st.Prepare(*db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'scrub'");
  if (s.ok()) s = st.Step(&row);
  if (!s.ok() || st.Int(0) == 0) return s;
  s = st.Prepare(*db_, "SELECT run, position, rate, pass_started_us, last_pass_us FROM scrub WHERE id = 1");
  if (s.ok()) s = st.Step(&row);
  if (!s.ok() || !row) return s;
  const std::optional<ScrubState::Run> run = ParseScrubRun(st.Text(0));
  if (!run || st.Int(1) < 0 || st.Int(2) < 0) {
    return Status::Corruption("DB " + path() + ": the scrub's row is damaged (run '" + st.Text(0) + "')");
  }
  *state = ScrubState{*run, static_cast<uint64_t>(st.Int(1)), static_cast<uint64_t>(st.Int(2)), st.Int(3), st.Int(4)};
  return s;
}

Status MetaStore::LoadEvents(size_t limit, std::vector<Event>* events) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_,
                        "SELECT time_us, kind, sector, slot, detail FROM "
                        "(SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id");
  if (!s.ok()) return s;
  st.Bind(1, static_cast<int64_t>(limit));
  bool row = false;
  while ((s = st.Step(&row)).ok() && row) {
    Event e;
    e.time_us = st.Int(0);
    const std::string kind = st.Text(1);
    for (EventKind k : {EventKind::kRemapped, EventKind::kPending, EventKind::kUnremapped, EventKind::kSlotBad,
                        EventKind::kSpareExhausted, EventKind::kRescued}) {
      if (kind == EventKindName(k)) e.kind = k;
    }
    e.sector = static_cast<uint64_t>(st.Int(2));
    e.slot = st.IsNull(3) ? -1 : st.Int(3);
    e.detail = st.Text(4);
    events->push_back(std::move(e));
  }
  return s;
}

Status MetaStore::IntegrityCheck(bool full, std::vector<std::string>* problems) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_, full ? "PRAGMA integrity_check" : "PRAGMA quick_check");
  bool row = false;
  while (s.ok() && (s = st.Step(&row)).ok() && row) {
    std::string line = st.Text(0);
    // A page SQLite could not read comes back as a problem row ("unable to
    // get the page. error code=266"): an I/O error, not a damaged DB.
    for (const char* unreadable : {"unable to get the page", "failed to get page", "Failed to read ptrmap"}) {
      if (line.find(unreadable) != std::string::npos) {
        for (char& c : line) c = c == '\n' ? ' ' : c;
        return Status::IOError("DB " + path() + ": the integrity check could not read it: " + line, EIO);
      }
    }
    if (line != "ok") problems->push_back("DB: " + line);
  }
  return s;
}

namespace {

// Apply writes runs of sector puts and of events kRowsPerInsert rows to an
// INSERT: a statement execution per row is most of the cost of a big commit
// (and events pay AUTOINCREMENT's bookkeeping per execution). 64 rows of 5
// parameters stay far below SQLite's limit on parameters.
constexpr size_t kRowsPerInsert = 64;

std::string MultiRowInsert(const char* head, const char* row) {
  std::string sql = head;
  for (size_t i = 0; i < kRowsPerInsert; ++i) sql.append(i == 0 ? " " : ", ").append(row);
  return sql;
}

void BindSector(sqlite::Statement& st, int first, const PutSector& p) {
  st.Bind(first, static_cast<int64_t>(p.sector));
  if (p.slot == kPendingSlot) {
    st.BindNull(first + 1);
  } else {
    st.Bind(first + 1, int64_t{p.slot});
  }
}

void BindEvent(sqlite::Statement& st, int first, const Event& e) {
  st.Bind(first, e.time_us).Bind(first + 1, EventKindName(e.kind)).Bind(first + 2, static_cast<int64_t>(e.sector));
  if (e.slot < 0) {
    st.BindNull(first + 3);
  } else {
    st.Bind(first + 3, e.slot);
  }
  st.Bind(first + 4, e.detail);
}

// Rows waiting for a multi-row INSERT: `all` writes every one, else only
// whole groups of kRowsPerInsert (the rest, if any, row by row).
template <typename Row, typename BindFn>
Status WriteRows(std::vector<const Row*>* rows, bool all, sqlite::Statement& many, sqlite::Statement& one,
                 int columns, BindFn bind) {
  Status s;
  size_t done = 0;
  for (; s.ok() && rows->size() - done >= kRowsPerInsert; done += kRowsPerInsert) {
    for (size_t i = 0; i < kRowsPerInsert; ++i) bind(many, static_cast<int>(i) * columns + 1, *(*rows)[done + i]);
    s = many.Run();
  }
  for (; s.ok() && all && done < rows->size(); ++done) {
    bind(one, 1, *(*rows)[done]);
    s = one.Run();
  }
  rows->erase(rows->begin(), rows->begin() + static_cast<std::ptrdiff_t>(done));
  return s;
}

}  // namespace

Status MetaStore::PrepareWrites() {
  if (prepared_) return Status::OK();
  Status s = db_->Exec(kScrubSchema);
  if (s.ok()) s = put_sector_.Prepare(*db_, "INSERT OR REPLACE INTO sectors(sector, slot) VALUES (?, ?)");
  if (s.ok()) s = erase_sector_.Prepare(*db_, "DELETE FROM sectors WHERE sector = ?");
  if (s.ok()) s = put_bad_slot_.Prepare(*db_, "INSERT OR IGNORE INTO bad_slots(slot) VALUES (?)");
  if (s.ok()) {
    s = put_rule_.Prepare(*db_,
                          "INSERT OR REPLACE INTO fault_rules(id, device, first_sector, sector_count, op, "
                          "times, probability, seed, delay_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  }
  if (s.ok()) s = erase_rule_.Prepare(*db_, "DELETE FROM fault_rules WHERE id = ?");
  if (s.ok()) s = erase_all_rules_.Prepare(*db_, "DELETE FROM fault_rules");
  if (s.ok()) {
    s = put_event_.Prepare(*db_,
                           "INSERT INTO events(time_us, kind, sector, slot, detail) VALUES (?, ?, ?, ?, ?)");
  }
  if (s.ok()) {
    s = trim_events_.Prepare(*db_,
                             "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?");
  }
  if (s.ok()) {
    s = put_counter_.Prepare(*db_, "INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)");
  }
  if (s.ok()) {
    s = put_scrub_.Prepare(*db_,
                           "INSERT OR REPLACE INTO scrub(id, run, position, rate, pass_started_us, last_pass_us) "
                           "VALUES (1, ?, ?, ?, ?, ?)");
  }
  if (s.ok()) {
    s = put_sectors_n_.Prepare(
        *db_, MultiRowInsert("INSERT OR REPLACE INTO sectors(sector, slot) VALUES", "(?, ?)").c_str());
  }
  if (s.ok()) {
    s = put_events_n_.Prepare(*db_, MultiRowInsert("INSERT INTO events(time_us, kind, sector, slot, detail) VALUES",
                                                   "(?, ?, ?, ?, ?)")
                                        .c_str());
  }
  prepared_ = s.ok();
  return s;
}

Status MetaStore::Apply(const std::vector<Change>& changes,
                        const std::vector<std::pair<std::string, uint64_t>>& counters) {
  Status s = PrepareWrites();
  if (!s.ok()) return s;
  sqlite::Transaction txn(*db_);
  if (!txn.status().ok()) return txn.status();
  bool events = false;
  // Sector puts wait for their multi-row INSERT only until the next erase of
  // a sector, so the changes of each sector stay in order; events (their own
  // table) keep their order among themselves.
  std::vector<const PutSector*> puts;
  std::vector<const Event*> event_rows;
  auto write_puts = [&](bool all) {
    return WriteRows(&puts, all, put_sectors_n_, put_sector_, 2, BindSector);
  };
  auto write_events = [&](bool all) {
    return WriteRows(&event_rows, all, put_events_n_, put_event_, 5, BindEvent);
  };
  for (const Change& c : changes) {
    if (auto* p = std::get_if<PutSector>(&c)) {
      puts.push_back(p);
      if (puts.size() == kRowsPerInsert) s = write_puts(false);
    } else if (auto* e = std::get_if<EraseSector>(&c)) {
      s = write_puts(true);
      if (s.ok()) s = erase_sector_.Bind(1, static_cast<int64_t>(e->sector)).Run();
    } else if (auto* b = std::get_if<PutBadSlot>(&c)) {
      s = put_bad_slot_.Bind(1, int64_t{b->slot}).Run();
    } else if (auto* r = std::get_if<PutFaultRule>(&c)) {
      const FaultRule& f = r->rule;
      s = put_rule_.Bind(1, static_cast<int64_t>(f.id))
              .Bind(2, DeviceName(f.device))
              .Bind(3, static_cast<int64_t>(f.sectors.first))
              .Bind(4, static_cast<int64_t>(f.sectors.count))
              .Bind(5, FaultOpName(f.op))
              .Bind(6, static_cast<int64_t>(f.times))
              .Bind(7, f.probability)
              .Bind(8, static_cast<int64_t>(f.seed))
              .Bind(9, int64_t{f.delay_ms})
              .Run();
    } else if (auto* er = std::get_if<EraseFaultRule>(&c)) {
      s = er->id ? erase_rule_.Bind(1, *er->id).Run() : erase_all_rules_.Run();
    } else if (auto* ev = std::get_if<Event>(&c)) {
      event_rows.push_back(ev);
      if (event_rows.size() == kRowsPerInsert) s = write_events(false);
      events = true;
    } else if (auto* sc = std::get_if<PutScrubState>(&c)) {
      const ScrubState& st = sc->state;
      s = put_scrub_.Bind(1, ScrubRunName(st.run))
              .Bind(2, static_cast<int64_t>(st.position))
              .Bind(3, static_cast<int64_t>(st.rate))
              .Bind(4, st.pass_started_us)
              .Bind(5, st.last_pass_us)
              .Run();
    }
    if (!s.ok()) return s;
  }
  s = write_puts(true);
  if (s.ok()) s = write_events(true);
  if (!s.ok()) return s;
  if (events) {
    s = trim_events_.Bind(1, kMaxEvents).Run();
    if (!s.ok()) return s;
  }
  for (const auto& [name, value] : counters) {
    s = put_counter_.Bind(1, name).Bind(2, static_cast<int64_t>(value)).Run();
    if (!s.ok()) return s;
  }
  return txn.Commit();
}

Status MetaStore::SetOpen(const std::string& main_path, const std::string& spare_path,
                          const std::string& control_socket) {
  sqlite::Statement st;
  Status s = st.Prepare(
      *db_, "UPDATE set_info SET clean = 0, main_path = ?, spare_path = ?, control_socket = ? WHERE id = 1");
  if (s.ok()) s = st.Bind(1, main_path).Bind(2, spare_path).Bind(3, control_socket).Run();
  if (s.ok()) {
    info_.clean = false;
    info_.main_path = main_path;
    info_.spare_path = spare_path;
    info_.control_socket = control_socket;
  }
  return s;
}

Status MetaStore::SetClean(bool clean) {
  Status s = db_->Exec(std::string("UPDATE set_info SET clean = ") + (clean ? "1" : "0") + " WHERE id = 1");
  if (s.ok()) info_.clean = clean;
  return s;
}

Status MetaStore::SetMainIdentity(const std::string& identity) {
  sqlite::Transaction txn(*db_);
  Status s = txn.status();
  if (s.ok() && format_version_ == 1) {
    s = db_->Exec(
        "ALTER TABLE set_info ADD COLUMN main_identity TEXT NOT NULL DEFAULT ''; "
        "ALTER TABLE set_info ADD COLUMN control_socket TEXT NOT NULL DEFAULT ''; PRAGMA user_version=" +
        std::to_string(kFormatVersion));
  }
  sqlite::Statement st;
  if (s.ok()) s = st.Prepare(*db_, "UPDATE set_info SET main_identity = ? WHERE id = 1");
  if (s.ok()) s = st.Bind(1, identity).Run();
  if (s.ok()) s = txn.Commit();
  if (s.ok()) {
    format_version_ = kFormatVersion;
    info_.main_identity = identity;
  }
  return s;
}

Status MetaStore::SetLastError(const std::string& message) {
  sqlite::Statement st;
  Status s = st.Prepare(*db_, "UPDATE set_info SET last_error = ? WHERE id = 1");
  if (s.ok()) s = st.Bind(1, message).Run();
  if (s.ok()) info_.last_error = message;
  return s;
}

Status MetaStore::Checkpoint(bool wait_for_readers) {
  if (wait_for_readers) return db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_busy_timeout(db_->handle(), 0);
  Status s = db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_busy_timeout(db_->handle(), kBusyTimeoutMs);
  return s;
}

}  // namespace remapfs
