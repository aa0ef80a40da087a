#include "store/identity.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <vector>

namespace remapfs {

namespace {

// A sysfs attribute, its runs of white space made one space; empty when absent.
std::string ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::string word, out;
  while (in >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

// The identity of a regular file open at fd: inode number and stamp.
Status IdentifyFile(int fd, const std::string& path, const struct stat& st, ImageIdentity* id) {
  id->stamp_path = path;
  char buf[128];
  const ssize_t n = ::fgetxattr(fd, kStampXattr, buf, sizeof(buf));
  const int err = errno;
  id->stampable = n >= 0 || err == ENODATA || err == ERANGE;
  if (n >= 0) {
    id->stamp.assign(buf, static_cast<size_t>(n));
  } else if (err == ERANGE) {
    id->stamp = "(too long to be a UUID)";
  } else if (err != ENODATA && err != ENOTSUP) {
    return Status::FromErrno("read " + std::string(kStampXattr) + " of " + path, err);
  }
  // With a stamp, the inode number alone: st_dev may change at a reboot
  // (btrfs, NFS, disks found in another order), the stamp tells the files
  // of two filesystems apart.
  id->base = "file " + (id->stampable ? "" : "dev=" + std::to_string(st.st_dev) + " ") +
             "ino=" + std::to_string(st.st_ino);
  return Status::OK();
}

// The backing file of a loop device (a partition's disk dir given), or "".
std::string LoopBackingFile(const std::string& disk_dir) { return ReadSysfs(disk_dir + "/loop/backing_file"); }

// The sysfs dir of the whole disk a block device is (or is a partition of),
// and " part=N" for a partition.
std::string DiskDir(dev_t rdev, std::string* part_suffix) {
  const std::string dir = "/sys/dev/block/" + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  const std::string part = ReadSysfs(dir + "/partition");
  *part_suffix = part.empty() ? "" : " part=" + part;
  return part.empty() ? dir : dir + "/..";
}

// The first /dev/disk/by-id name of the device, in name order; "" if none.
std::string ByIdName(dev_t rdev) {
  const char* dir = "/dev/disk/by-id";
  DIR* d = ::opendir(dir);
  if (d == nullptr) return "";
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    struct stat st;
    const std::string name = e->d_name;
    if (name[0] == '.' || ::stat((std::string(dir) + "/" + name).c_str(), &st) != 0) continue;
    if (S_ISBLK(st.st_mode) && st.st_rdev == rdev) names.push_back(name);
  }
  ::closedir(d);
  return names.empty() ? "" : *std::min_element(names.begin(), names.end());
}

Status IdentifyBlock(const struct stat& st, ImageIdentity* id) {
  std::string part;
  const std::string disk = DiskDir(st.st_rdev, &part);
  static const std::pair<const char*, const char*> kSysfsIds[] = {
      {"device/wwid", "wwid"}, {"wwid", "wwid"}, {"device/serial", "serial"}, {"serial", "serial"}, {"dm/uuid", "dm-uuid"}};
  for (const auto& [file, key] : kSysfsIds) {
    const std::string value = ReadSysfs(disk + "/" + file);
    if (!value.empty()) {
      id->base = "block " + std::string(key) + "=" + value + part;
      return Status::OK();
    }
  }
  if (const std::string name = ByIdName(st.st_rdev); !name.empty()) {
    id->base = "block by-id=" + name;
    return Status::OK();
  }
  if (const std::string backing = LoopBackingFile(disk); !backing.empty()) {
    const int fd = ::open(backing.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat bst;
    if (fd >= 0 && ::fstat(fd, &bst) == 0) {
      Status s = IdentifyFile(fd, backing, bst, id);
      ::close(fd);
      if (!s.ok()) return s;
      const std::string offset = ReadSysfs(disk + "/loop/offset");
      id->base = "block loop " + id->base + (offset.empty() || offset == "0" ? "" : " offset=" + offset) + part;
      return Status::OK();
    }
    if (fd >= 0) ::close(fd);
    // A backing file that is gone (deleted) identifies nothing.
  }
  id->base = kSizeOnlyIdentity;
  return Status::OK();
}

Status StampFile(int fd, const std::string& path, const std::string& uuid) {
  const int r = uuid.empty() ? ::fremovexattr(fd, kStampXattr)
                             : ::fsetxattr(fd, kStampXattr, uuid.data(), uuid.size(), 0);
  if (r != 0 && !(uuid.empty() && errno == ENODATA)) {
    return Status::FromErrno("write " + std::string(kStampXattr) + " of " + path, errno);
  }
  return Status::OK();
}

}  // namespace

std::string IdentityText(const ImageIdentity& id, const std::string& uuid) {
  if (!id.stampable) return id.base;
  return id.base + (id.stamp == uuid ? " stamped" : " unstamped");
}

Status CheckMainIdentity(const SetInfo& info, const std::string& db, const std::string& path,
                         const ImageIdentity& id, bool adopt) {
  if (!id.stamp.empty() && id.stamp != info.uuid) {
    return Status::Mismatch("MAIN " + path + " belongs to set " + id.stamp + " (" + kStampXattr + " of " +
                            id.stamp_path + "), not to set " + info.uuid + " of DB " + db +
                            "; give this set's MAIN");
  }
  if (adopt || info.main_identity.empty()) return Status::OK();
  const std::string now = IdentityText(id, info.uuid);
  if (now == info.main_identity) return Status::OK();
  return Status::Mismatch("MAIN " + path + " is not the disk or file set " + info.uuid + " was made with (its identity is '" +
                          now + "', the DB recorded '" + info.main_identity +
                          "'); give the set's own MAIN, or if this one is a clone that replaces it, run "
                          "`remapctl rebind " + db + " --main " + path + "`");
}

Status StampMain(Backend* main, const std::string& uuid, std::string* identity) {
  ImageIdentity id;
  Status s = main->Identify(&id);
  if (s.ok() && id.stampable && id.stamp != uuid) {
    s = main->Stamp(uuid);
    id.stamp = uuid;
  }
  if (s.ok()) *identity = IdentityText(id, uuid);
  return s;
}

Status IdentifyFd(int fd, const std::string& path, ImageIdentity* id) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno("stat " + path, errno);
  *id = ImageIdentity{};
  if (S_ISBLK(st.st_mode)) return IdentifyBlock(st, id);
  return IdentifyFile(fd, path, st, id);
}

Status StampFd(int fd, const std::string& path, const std::string& uuid) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (!S_ISBLK(st.st_mode)) return StampFile(fd, path, uuid);
  std::string part;
  const std::string backing = LoopBackingFile(DiskDir(st.st_rdev, &part));
  if (backing.empty()) return Status::InvalidArgument("block device " + path + " has no file to hold a stamp");
  const int bfd = ::open(backing.c_str(), O_RDONLY | O_CLOEXEC);
  if (bfd < 0) return Status::FromErrno("open " + backing, errno);
  Status s = StampFile(bfd, backing, uuid);
  ::close(bfd);
  return s;
}

}  // namespace remapfs
