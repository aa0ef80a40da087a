// MAIN's identity: what tells a set's own MAIN from another disk or image of
// the same size (a swapped disk, /dev/sdX renamed after a reboot, the wrong
// image file). It is recorded in the DB when the set is created and checked
// at every open; `remapctl rebind` records a new one after a deliberate move.
//
// The recorded text, by kind of MAIN:
// - regular file: "file ino=N stamped": its inode number, and the stamp, an
//   extended attribute user.remapfs.set=UUID written at create. A rename and
//   a reboot keep both. A copy (cp, a restore from backup, mv to another
//   filesystem) is a new inode, and plain cp drops the stamp; another file
//   has neither. Where the filesystem keeps no user xattrs:
//   "file dev=D ino=N" (a filesystem whose device number changes at a
//   remount then needs a rebind).
// - block device: the first stable identifier sysfs gives, the drive's
//   "wwid=" or "serial=", a device-mapper "dm-uuid=", else the first
//   /dev/disk/by-id name ("by-id="), plus " part=N" for a partition of a
//   disk identified from sysfs. A loop device: "loop " and its backing
//   file's identity (that file carries the stamp). Nothing else (nbd, a
//   bare dm device): "size-only": only the size is checked, with a warning.
#pragma once

#include <string>

#include "store/backend.h"
#include "store/meta_store.h"
#include "store/status.h"

namespace remapfs {

// The extended attribute that marks a file as some set's MAIN.
inline constexpr char kStampXattr[] = "user.remapfs.set";
// The identity of a block device with nothing stable to tell it by.
inline constexpr char kSizeOnlyIdentity[] = "block size-only";

struct ImageIdentity {
  std::string base;         // the recorded text without the stamp's part
  bool stampable = false;   // a stamp can be kept (stamp_path's filesystem keeps user xattrs)
  std::string stamp;        // the set UUID the image is stamped with; empty: none
  std::string stamp_path;   // the file that holds the stamp (a loop device's backing file)
};

// The text recorded for an image of set `uuid` (base, then " stamped" or
// " unstamped" where a stamp can be kept).
std::string IdentityText(const ImageIdentity& id, const std::string& uuid);

// Whether MAIN, at `path` with identity `id`, may serve the set of `info`
// whose DB is `db`: Mismatch when another set's stamp is on it, or (unless
// adopting, as `remapctl rebind` does) when a recorded identity differs. A
// set that has none recorded yet (made before DB format 2) accepts any.
Status CheckMainIdentity(const SetInfo& info, const std::string& db, const std::string& path,
                         const ImageIdentity& id, bool adopt);

// Stamps MAIN for set `uuid` where a stamp can be kept, and gives the
// identity text to record for it.
Status StampMain(Backend* main, const std::string& uuid, std::string* identity);

// POSIX: the identity of the image open at `fd` (a regular file or a block
// device), and its stamp set to `uuid` (removed when empty).
Status IdentifyFd(int fd, const std::string& path, ImageIdentity* id);
Status StampFd(int fd, const std::string& path, const std::string& uuid);

}  // namespace remapfs
