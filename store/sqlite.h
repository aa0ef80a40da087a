// Thin RAII wrappers over the SQLite C API: a connection, a prepared
// statement (reused with Reset), and a transaction that rolls back unless
// committed. Errors become Status in one place (Database::Error).
//
// Thread-safety: a Database and its Statements belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/status.h"

namespace remapfs::sqlite {

class Database {
 public:
  // flags: SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE [| SQLITE_OPEN_CREATE].
  // vfs: the name of a registered SQLite VFS; empty: the default one.
  static Status Open(const std::string& path, int flags, std::unique_ptr<Database>* result,
                     const std::string& vfs = "");
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Exec(const std::string& sql);
  // The Status for the connection's last error, prefixed by `context`.
  Status Error(std::string_view context);
  // Whether a sync of the DB or its WAL ever failed on this connection (an
  // error went through Error). Linux may have dropped the pages that sync
  // was for, while SQLite still reads them from the cache.
  bool sync_failed() const { return sync_failed_; }
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  bool sync_failed_ = false;
};

// Turns an SQLite result code into a Status (FULL -> ENOSPC, IOERR -> EIO,
// CORRUPT/NOTADB -> Corruption, BUSY -> Busy).
Status FromSqlite(int rc, std::string msg);

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status Prepare(Database& db, const char* sql);

  Statement& Bind(int index, int64_t v);
  Statement& Bind(int index, double v);
  Statement& Bind(int index, std::string_view v);
  Statement& BindNull(int index);

  // Steps once: *row is true when a row is ready to read.
  Status Step(bool* row);
  // Steps to completion and resets, for statements that return no rows.
  Status Run();
  // Clears bindings and rewinds, ready for reuse.
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit()
// succeeded. Check status() before using it.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return status_; }
  Status Commit();

 private:
  Database& db_;
  Status status_;
  bool open_ = false;
};

}  // namespace remapfs::sqlite
