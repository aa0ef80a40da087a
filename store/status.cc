#include "store/status.h"

#include <cerrno>
#include <cstring>

namespace remapfs {

Status Status::IOError(std::string msg, int err) { return Status(Code::kIOError, std::move(msg), err); }

Status Status::FromErrno(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOENT) return Status(Code::kNotFound, std::move(msg), err);
  return Status(Code::kIOError, std::move(msg), err);
}

bool Status::IsMediaError() const {
  if (code_ != Code::kIOError) return false;
  switch (errno_) {
    case 0:  // remapfs's own I/O errors carry EIO; 0 is treated the same
    case EIO:
    case ENODATA:    // BLK_STS_MEDIUM
    case EILSEQ:     // BLK_STS_PROTECTION: integrity data mismatch
    case EREMOTEIO:  // BLK_STS_TARGET: the drive failed the command
    case EBADMSG:
      return true;
    default:
      return false;
  }
}

int Status::ToErrno() const {
  switch (code_) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kNotFound:
      return errno_ != 0 ? errno_ : ENOENT;
    case Code::kBusy:
      return EBUSY;
    case Code::kIOError:
      return errno_ != 0 ? errno_ : EIO;
    default:
      return EIO;  // corruption, mismatch, no spare: media errors to a caller
  }
}

std::string Status::ToString() const {
  const char* kind = "";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kNotFound: kind = "not found: "; break;
    case Code::kInvalidArgument: kind = "invalid argument: "; break;
    case Code::kCorruption: kind = "corruption: "; break;
    case Code::kMismatch: kind = "mismatch: "; break;
    case Code::kIOError: kind = "I/O error: "; break;
    case Code::kBusy: kind = "busy: "; break;
    case Code::kNoSpare: kind = "no spare: "; break;
  }
  return kind + msg_;
}

}  // namespace remapfs
