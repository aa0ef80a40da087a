// MetaStore: the SQLite DB of a set. It holds the set's identity (UUID,
// sector size, MAIN's size, slot count), the remap table, bad slots, fault
// rules, counters and the event log.
//
// Format: application_id 0x524D4150 ("RMAP"), user_version kFormatVersion,
// WAL journal, synchronous=FULL. Opening validates the identity without
// writing anything, so a refused open leaves the file as it was. A DB of
// format 1 (no MAIN identity) is read as it is and becomes format 2 when
// SetMainIdentity records one.
//
// Thread-safety: one thread at a time. While an engine runs, only its
// metadata writer thread touches its MetaStore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/changes.h"
#include "store/sqlite.h"
#include "store/status.h"

namespace remapfs {

inline constexpr int64_t kApplicationId = 0x524D4150;
inline constexpr int64_t kFormatVersion = 2;  // 2: set_info.main_identity, control_socket

struct SetInfo {
  std::string uuid;
  uint32_t sector_size = 0;
  uint64_t main_size = 0;
  uint32_t slot_count = 0;
  int64_t created_us = 0;
  bool clean = true;        // false while an engine has the set open
  std::string last_error;   // a commit failure recorded for the next open
  // Where MAIN and SPARE were when the set was last opened, so that tools
  // given only the DB can find them.
  std::string main_path;
  std::string spare_path;
  // MAIN's identity (identity.h); empty in a DB of format 1, until the set's
  // next open records it.
  std::string main_identity;
  // The abstract socket name of the control channel of the daemon that
  // opened the set last (empty: none). A secret: the DB is owner-only, and
  // only this name leads a client to the daemon.
  std::string control_socket;

  uint64_t sector_count() const { return main_size / sector_size; }
};

// A fault_rules row that is not a valid rule; `id` is the row's.
struct InvalidFaultRule {
  int64_t id;
  std::string reason;
};

class MetaStore {
 public:
  // Creates a new DB file holding `info`. Refuses an existing file.
  // vfs: a registered SQLite VFS (tests: FaultVfs); empty: the default.
  static Status Create(const std::string& path, const SetInfo& info, const std::string& vfs = "");
  // Opens and validates an existing DB. read_only: no write ever happens.
  static Status Open(const std::string& path, bool read_only, std::unique_ptr<MetaStore>* result,
                     const std::string& vfs = "");
  ~MetaStore();

  const SetInfo& info() const { return info_; }
  const std::string& path() const { return db_->path(); }

  // fn(sector, slot) for every entry, slot == kPendingSlot for pending ones.
  Status LoadSectors(const std::function<void(uint64_t, uint32_t)>& fn);
  // The entry of one sector (a point lookup): nullopt when it has none,
  // kPendingSlot when pending.
  Status LoadSector(uint64_t sector, std::optional<uint32_t>* slot);
  Status LoadBadSlots(const std::function<void(uint32_t)>& fn);
  // The fault rules into *rules; a row that no `fault add` could have made
  // (a damaged or hand-edited DB: unknown device or op, a field out of range
  // for this set) into *invalid, with the reason, instead.
  Status LoadFaultRules(std::vector<FaultRule>* rules, std::vector<InvalidFaultRule>* invalid);
  Status LoadCounters(std::vector<std::pair<std::string, uint64_t>>* counters);
  // The newest `limit` events, oldest first.
  Status LoadEvents(size_t limit, std::vector<Event>* events);
  // Where the scrub was (a DB that never recorded one: ScrubState{}).
  Status LoadScrubState(ScrubState* state);
  // PRAGMA quick_check (or integrity_check); problems are appended.
  Status IntegrityCheck(bool full, std::vector<std::string>* problems);

  // Writes (not in read-only mode).
  // Applies the changes and the counters in one transaction.
  // After a failed sync of the DB or its WAL (sync_failed), what SQLite wrote
  // before may be gone from the disk while SQLite reads it from the cache:
  // the caller commits nothing more and the set must be reopened, whose
  // checkpoint rewrites and syncs all of it (Engine::Open).
  Status Apply(const std::vector<Change>& changes,
               const std::vector<std::pair<std::string, uint64_t>>& counters);
  bool sync_failed() const { return db_->sync_failed(); }
  // Marks the set open (clean=false, with where its parts are now and the
  // name of the opener's control channel, empty for none) or closed in
  // order (clean=true).
  Status SetOpen(const std::string& main_path, const std::string& spare_path, const std::string& control_socket);
  Status SetClean(bool clean);
  // Records MAIN's identity (and makes a DB of format 1 format 2).
  Status SetMainIdentity(const std::string& identity);
  // Records why the last run could not stop in order (set_info.last_error;
  // empty clears it), for the next open to report.
  Status SetLastError(const std::string& message);
  // Copies the WAL into the DB file and truncates it (syncing the WAL, then
  // the DB). wait_for_readers false: never waits for another process reading
  // the DB (the busy timeout otherwise, 5 s); what a reader still needs then
  // stays in the WAL, which is as good once every commit is durable.
  Status Checkpoint(bool wait_for_readers = true);

  // Events beyond this many are dropped, oldest first.
  static constexpr int64_t kMaxEvents = 100000;

 private:
  explicit MetaStore(std::unique_ptr<sqlite::Database> db) : db_(std::move(db)) {}
  Status ReadInfo();
  Status PrepareWrites();

  std::unique_ptr<sqlite::Database> db_;
  SetInfo info_;
  int64_t format_version_ = kFormatVersion;
  sqlite::Statement put_sector_, erase_sector_, put_bad_slot_, put_rule_, erase_rule_,
      erase_all_rules_, put_event_, trim_events_, put_counter_, put_scrub_;
  // Multi-row forms of put_sector_ and put_event_ (Apply's big batches).
  sqlite::Statement put_sectors_n_, put_events_n_;
  bool prepared_ = false;
};

}  // namespace remapfs
