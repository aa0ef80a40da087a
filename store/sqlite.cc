#include "store/sqlite.h"

#include <cerrno>

namespace remapfs::sqlite {

Status FromSqlite(int rc, std::string msg) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return Status::OK();
    case SQLITE_FULL:
      return Status::IOError(std::move(msg), ENOSPC);
    case SQLITE_IOERR:
      return Status::IOError(std::move(msg), EIO);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(std::move(msg));
    case SQLITE_CANTOPEN:
      return Status::IOError(std::move(msg), ENOENT);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status::IOError(std::move(msg), EACCES);
    default:
      return Status::IOError(std::move(msg), EIO);
  }
}

Status Database::Open(const std::string& path, int flags, std::unique_ptr<Database>* result,
                      const std::string& vfs) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    Status s = FromSqlite(rc, "open DB " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  result->reset(new Database(db, path));
  return Status::OK();
}

Database::~Database() { sqlite3_close_v2(db_); }

Status Database::Exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::OK() : Error(sql);
}

Status Database::Error(std::string_view context) {
  const int rc = sqlite3_extended_errcode(db_);
  if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC) sync_failed_ = true;
  return FromSqlite(rc,
                    "DB " + path_ + ": " + std::string(context) + ": " + sqlite3_errmsg(db_));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Status Statement::Prepare(Database& db, const char* sql) {
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  db_ = &db;
  if (sqlite3_prepare_v3(db.handle(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
    return db.Error(sql);
  }
  return Status::OK();
}

Statement& Statement::Bind(int index, int64_t v) {
  sqlite3_bind_int64(stmt_, index, v);
  return *this;
}
Statement& Statement::Bind(int index, double v) {
  sqlite3_bind_double(stmt_, index, v);
  return *this;
}
Statement& Statement::Bind(int index, std::string_view v) {
  sqlite3_bind_text(stmt_, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Status Statement::Step(bool* row) {
  int rc = sqlite3_step(stmt_);
  *row = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return Status::OK();
  Status s = db_->Error(sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::Run() {
  bool row = false;
  Status s;
  do {
    s = Step(&row);
  } while (s.ok() && row);
  Reset();
  return s;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
}

Transaction::Transaction(Database& db) : db_(db) {
  status_ = db_.Exec("BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Transaction::Commit() {
  if (!open_) return status_;
  Status s = db_.Exec("COMMIT");
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace remapfs::sqlite
