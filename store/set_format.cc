#include "store/set_format.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstring>
#include <random>

#include "store/identity.h"
#include "store/meta_store.h"
#include "store/remap_table.h"

namespace remapfs {

namespace {

constexpr char kMagic[8] = {'R', 'M', 'A', 'P', 'S', 'P', 'A', 'R'};
constexpr size_t kCrcOffset = 8 + 4 + 16 + 4 + 4 + 8 + 8;

uint32_t Crc32c(std::string_view data) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// The checksum covers the whole header, its own four bytes read as zero.
uint32_t HeaderCrc(std::string_view header) {
  std::string copy(header.substr(0, kSpareHeaderSize));
  std::memset(copy.data() + kCrcOffset, 0, 4);
  return Crc32c(copy);
}

template <typename T>
void Put(std::string* out, size_t* pos, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) (*out)[(*pos)++] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF);
}

template <typename T>
T Get(std::string_view in, size_t* pos) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{static_cast<uint8_t>(in[(*pos)++])} << (8 * i);
  return static_cast<T>(v);
}

bool UuidToBytes(const std::string& text, char out[16]) {
  if (text.size() != 36) return false;
  int n = 0;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '-') {
      ++i;
      continue;
    }
    if (n == 16 || i + 1 >= text.size() || !isxdigit(text[i]) || !isxdigit(text[i + 1])) return false;
    out[n++] = static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
    i += 2;
  }
  return n == 16;
}

std::string UuidFromBytes(const char* b) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[(static_cast<uint8_t>(b[i]) >> 4) & 0xF];
    s += hex[static_cast<uint8_t>(b[i]) & 0xF];
  }
  return s;
}

// Same file (inode) under two names?
bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

Status CheckDistinctParts(const SetPaths& paths) {
  const char* pair = SameFile(paths.main, paths.spare) ? "MAIN and SPARE"
                     : SameFile(paths.main, paths.db)  ? "MAIN and DB"
                     : SameFile(paths.spare, paths.db) ? "SPARE and DB"
                                                       : nullptr;
  if (pair == nullptr) return Status::OK();
  return Status::InvalidArgument(std::string(pair) +
                                 " name the same file; MAIN, SPARE and DB must be three different files");
}

std::string DefaultDbPath(const std::string& spare) {
  struct stat st;
  if (::stat(spare.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return "";
  return spare + ".db";
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

std::string NewUuid() {
  std::random_device rd;
  char b[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rd();
    std::memcpy(b + i, &r, 4);
  }
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return UuidFromBytes(b);
}

std::string EncodeSpareHeader(const SpareHeader& h) {
  std::string out(kSpareHeaderSize, '\0');
  std::memcpy(out.data(), kMagic, sizeof(kMagic));
  size_t pos = sizeof(kMagic);
  Put<uint32_t>(&out, &pos, kSpareVersion);
  UuidToBytes(h.uuid, out.data() + pos);
  pos += 16;
  Put<uint32_t>(&out, &pos, h.sector_size);
  Put<uint32_t>(&out, &pos, h.slot_count);
  Put<uint64_t>(&out, &pos, h.main_size);
  Put<int64_t>(&out, &pos, h.created_us);
  Put<uint32_t>(&out, &pos, HeaderCrc(out));
  return out;
}

bool HasSpareMagic(std::string_view bytes) {
  return bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0;
}

Status DecodeSpareHeader(std::string_view bytes, SpareHeader* h) {
  if (bytes.size() < kSpareHeaderSize || !HasSpareMagic(bytes)) {
    return Status::Corruption("no remapfs spare header (bad magic)");
  }
  size_t pos = sizeof(kMagic);
  const uint32_t version = Get<uint32_t>(bytes, &pos);
  if (version != kSpareVersion) {
    return Status::Corruption("spare header version " + std::to_string(version) + " is not supported");
  }
  h->uuid = UuidFromBytes(bytes.data() + pos);
  pos += 16;
  h->sector_size = Get<uint32_t>(bytes, &pos);
  h->slot_count = Get<uint32_t>(bytes, &pos);
  h->main_size = Get<uint64_t>(bytes, &pos);
  h->created_us = Get<int64_t>(bytes, &pos);
  const uint32_t crc = Get<uint32_t>(bytes, &pos);
  if (crc != HeaderCrc(bytes)) return Status::Corruption("spare header checksum mismatch");
  if ((h->sector_size != 512 && h->sector_size != 4096) || h->slot_count == 0) {
    return Status::Corruption("spare header holds impossible values");
  }
  return Status::OK();
}

uint64_t SlotOffset(uint32_t slot, uint32_t sector_size) {
  return kSpareHeaderSize + uint64_t{slot} * sector_size;
}

namespace {

// Opens MAIN for create: of a whole number of sectors, and of no set yet.
Status OpenMainForCreate(Env* env, const std::string& path, uint32_t ss, std::unique_ptr<Backend>* main,
                         ImageIdentity* id) {
  Status s = env->OpenBackend(path, BackendOptions{.lock = true, .read_only = true}, main);
  if (!s.ok()) return s;
  const uint64_t main_size = (*main)->Size();
  if (main_size == 0 || main_size % ss != 0) {
    return Status::InvalidArgument("MAIN " + path + " is " + std::to_string(main_size) +
                                   " bytes, not a non-zero multiple of the sector size " + std::to_string(ss));
  }
  s = (*main)->Identify(id);
  if (!s.ok()) return s;
  if (!id->stamp.empty()) {
    return Status::InvalidArgument("MAIN " + path + " already belongs to set " + id->stamp + " (" + kStampXattr +
                                   " of " + id->stamp_path +
                                   "); give another MAIN, or if that set is gone for good, remove the stamp: "
                                   "setfattr -x " + kStampXattr + " " + id->stamp_path);
  }
  return Status::OK();
}

static_assert(kMaxSlotCount == kPendingSlot, "slots 0 .. kMaxSlotCount - 1 never read as pending");

// InvalidArgument when a SPARE of `bytes` holds more slots than the slot
// numbering has numbers (kMaxSlotCount): the set could not use the rest.
Status CheckSlotCount(const std::string& path, uint64_t bytes, uint32_t ss) {
  const uint64_t slots = (bytes - kSpareHeaderSize) / ss;
  if (slots <= kMaxSlotCount) return Status::OK();
  const uint64_t max_bytes = SlotOffset(kMaxSlotCount, ss);
  const bool fits_4k = ss == 512 && slots / (4096 / 512) <= kMaxSlotCount;
  return Status::InvalidArgument("SPARE " + path + " holds " + std::to_string(slots) + " slots of " +
                                 std::to_string(ss) + " bytes; at most " + std::to_string(kMaxSlotCount) +
                                 " fit the slot numbering: use a spare of at most " + std::to_string(max_bytes) +
                                 " bytes" + (fits_4k ? " or --sector-size 4096" : ""));
}

// Opens SPARE for create (making it first when asked to): big enough for a
// slot and not too big for the slot numbering, of no set yet, and its space
// reserved. *created: it was made here.
Status OpenSpareForCreate(Env* env, const std::string& path, const std::optional<uint64_t>& size, uint32_t ss,
                          std::unique_ptr<Backend>* spare, bool* created) {
  *created = false;
  if (!env->FileExists(path) && size) {
    Status s = CheckSlotCount(path, *size, ss);
    if (s.ok()) s = env->CreateFile(path, *size);
    if (!s.ok()) return s;
    *created = true;
  }
  Status s = env->OpenBackend(path, BackendOptions{.lock = true}, spare);
  if (!s.ok()) return s;
  const uint64_t min_size = kSpareHeaderSize + ss;
  if ((*spare)->Size() < min_size) {
    return Status::InvalidArgument("SPARE " + path + " is " + std::to_string((*spare)->Size()) +
                                   " bytes, too small for one slot; it needs at least " + std::to_string(min_size));
  }
  s = CheckSlotCount(path, (*spare)->Size(), ss);
  if (!s.ok()) return s;
  std::string head(kSpareHeaderSize, '\0');
  s = (*spare)->ReadAt(0, head.size(), head.data());
  if (!s.ok()) return s;
  if (HasSpareMagic(head)) {
    return Status::InvalidArgument("SPARE " + path + " already holds a remapfs set; erase its first 4096 bytes to reuse it");
  }
  // A sparse spare would hit ENOSPC at its first remaps, long after create.
  Status r = (*spare)->Reserve();
  if (!r.ok()) {
    return Status::IOError("cannot reserve the " + std::to_string((*spare)->Size()) + " bytes of SPARE: " +
                               r.message() + "; free space on its filesystem or make the spare smaller",
                           r.ToErrno());
  }
  return Status::OK();
}

// Writes the set: MAIN's stamp, the DB under a temporary name, the spare
// header, then the DB's rename, so that a failure in between leaves no DB
// that names a set without a spare header. The directory is synced after
// the rename, so that the set survives a power cut right after create. On
// failure every step is undone.
Status WriteSet(const std::string& db, const SetInfo& info, bool stampable, Backend* main, Backend* spare,
                std::string* identity) {
  Status s = StampMain(main, info.uuid, identity);
  const bool stamped = s.ok() && stampable;
  const std::string tmp = db + ".creating";
  bool renamed = false;
  if (s.ok()) s = MetaStore::Create(tmp, info);
  if (s.ok()) {
    SpareHeader h{info.uuid, info.sector_size, info.slot_count, info.main_size, info.created_us};
    s = spare->WriteAt(0, kSpareHeaderSize, EncodeSpareHeader(h).data());
    if (s.ok()) s = spare->Sync();
    if (s.ok() && ::rename(tmp.c_str(), db.c_str()) != 0) s = Status::FromErrno("rename " + tmp, errno);
    renamed = s.ok();
    if (s.ok()) s = SyncParentDir(db);
  }
  if (!s.ok()) {
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((tmp + suffix).c_str());
    if (renamed) ::unlink(db.c_str());
    if (stamped) main->Stamp("");
  }
  return s;
}

}  // namespace

Status CreateSet(Env* env, const SetPaths& paths, const CreateOptions& options) {
  const uint32_t ss = options.sector_size;
  if (ss != 512 && ss != 4096) {
    return Status::InvalidArgument("sector size must be 512 or 4096, not " + std::to_string(ss));
  }
  Status s = CheckDistinctParts(paths);
  if (!s.ok()) return s;
  if (env->FileExists(paths.db)) {
    return Status::InvalidArgument("DB " + paths.db + " already exists; remapctl create never overwrites a set");
  }
  std::unique_ptr<Backend> main;
  ImageIdentity main_id;
  s = OpenMainForCreate(env, paths.main, ss, &main, &main_id);
  if (!s.ok()) return s;
  const uint64_t min_spare = kSpareHeaderSize + ss;
  if (options.spare_size && *options.spare_size < min_spare) {
    return Status::InvalidArgument("a spare size of " + std::to_string(*options.spare_size) +
                                   " bytes is out of range: a spare needs at least " + std::to_string(min_spare) +
                                   " (its header and one slot)");
  }
  std::unique_ptr<Backend> spare;
  bool created_spare = false;
  s = OpenSpareForCreate(env, paths.spare, options.spare_size, ss, &spare, &created_spare);
  if (s.ok()) {
    SetInfo info;
    info.uuid = NewUuid();
    info.sector_size = ss;
    info.main_size = main->Size();
    info.main_path = AbsolutePath(paths.main);
    info.spare_path = AbsolutePath(paths.spare);
    info.slot_count = static_cast<uint32_t>((spare->Size() - kSpareHeaderSize) / ss);  // <= kMaxSlotCount
    info.created_us = NowUnixUs();
    s = WriteSet(paths.db, info, main_id.stampable, main.get(), spare.get(), &info.main_identity);
  }
  if (!s.ok()) {
    spare.reset();
    if (created_spare) env->DeleteFile(paths.spare);
  }
  return s;
}

}  // namespace remapfs
