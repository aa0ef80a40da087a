// MetaStore: the SQLite DB of a set. It holds the set's identity (UUID,
// sector size, MAIN's size, slot count), the remap table, bad slots, fault
// rules, counters and the event log.
//
// Format: application_id 0x524D4150 ("RMAP"), user_version kFormatVersion,
// WAL journal, synchronous=FULL. Opening validates the identity without
// writing anything, so a refused open leaves the file as it was.
//
// Thread-safety: one thread at a time. While an engine runs, only its
// metadata writer thread touches its MetaStore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/changes.h"
#include "store/sqlite.h"
#include "store/status.h"

namespace remapfs {

inline constexpr int64_t kApplicationId = 0x524D4150;
inline constexpr int64_t kFormatVersion = 2;  // 2: set_info.control_socket

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
  // The abstract socket name of the control channel of the daemon that
  // opened the set last (empty: none). A secret: the DB is owner-only, and
  // only this name leads a client to the daemon.
  std::string control_socket;
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
  Status LoadBadSlots(const std::function<void(uint32_t)>& fn);
  Status LoadFaultRules(std::vector<FaultRule>* rules);
  Status LoadCounters(std::vector<std::pair<std::string, uint64_t>>* counters);
  // The newest `limit` events, oldest first.
  Status LoadEvents(size_t limit, std::vector<Event>* events);
  // PRAGMA quick_check (or integrity_check); problems are appended.
  Status IntegrityCheck(bool full, std::vector<std::string>* problems);

  // Writes (not in read-only mode).
  // Applies the changes and the counters in one transaction.
  Status Apply(const std::vector<Change>& changes,
               const std::vector<std::pair<std::string, uint64_t>>& counters);
  // Marks the set open (clean=false, with where its parts are now and the
  // name of the opener's control channel, empty for none) or closed in
  // order (clean=true).
  Status SetOpen(const std::string& main_path, const std::string& spare_path, const std::string& control_socket);
  Status SetClean(bool clean);
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
  sqlite::Statement put_sector_, erase_sector_, put_bad_slot_, put_rule_, erase_rule_,
      erase_all_rules_, put_event_, trim_events_, put_counter_;
  // Multi-row forms of put_sector_ and put_event_ (Apply's big batches).
  sqlite::Statement put_sectors_n_, put_events_n_;
  bool prepared_ = false;
};

}  // namespace remapfs
