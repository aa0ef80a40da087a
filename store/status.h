// Status: the one error type of remapfs. Every failing call returns a Status
// that says what is wrong in one line; I/O errors also carry their errno so
// the FUSE adapter can reply with it.
//
// Thread-safety: a Status is a value; distinct objects may be used from
// different threads freely.
#pragma once

#include <string>
#include <string_view>

namespace remapfs {

class Status {
 public:
  enum class Code {
    kOk,
    kNotFound,         // a named thing does not exist (file, sector entry, rule)
    kInvalidArgument,  // the caller's input is wrong
    kCorruption,       // a file's content is not what remapfs wrote
    kMismatch,         // parts belong to different sets, or a size changed
    kIOError,          // the OS reported an error; errno() says which
    kBusy,             // the set is locked by another process
    kNoSpare,          // no free spare slot is left
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Mismatch(std::string msg) { return Status(Code::kMismatch, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status NoSpare(std::string msg) { return Status(Code::kNoSpare, std::move(msg)); }
  // An I/O error with an explicit errno (EIO for media errors).
  static Status IOError(std::string msg, int err);
  // The one place where an errno becomes a Status: `context` names the action
  // ("pread MAIN at 4096"); ENOENT maps to NotFound, the rest to IOError.
  static Status FromErrno(std::string_view context, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  // Whether the medium itself failed (EIO, ENODATA, EILSEQ, EREMOTEIO,
  // EBADMSG: what the block layer reports for a bad sector or a failing
  // drive). Only a media error changes a sector's or a slot's state; any
  // other error (a full or read-only host filesystem, a quota, no memory, a
  // transport gone) fails the request and changes nothing.
  bool IsMediaError() const;
  // The errno to hand a kernel caller: 0 when ok, EIO for media errors and
  // anything without a more precise errno.
  int ToErrno() const;
  const std::string& message() const { return msg_; }
  // "IO error: pread MAIN at 4096: Input/output error"
  std::string ToString() const;

 private:
  Status(Code code, std::string msg, int err = 0) : code_(code), errno_(err), msg_(std::move(msg)) {}

  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string msg_;
};

}  // namespace remapfs
