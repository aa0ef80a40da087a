// The set: MAIN + SPARE + DB bound by one UUID. This file knows the SPARE
// header and how a set is created.
//
// SPARE layout: a kSpareHeaderSize header, then slot_count slots of
// sector_size bytes. Header fields (little-endian): magic "RMAPSPAR",
// version u32, uuid[16], sector_size u32, slot_count u32, main_size u64,
// created_us i64, crc32c u32 of the whole header (with these four bytes
// zero); zeros to the end.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/backend.h"
#include "store/status.h"

namespace remapfs {

inline constexpr uint64_t kSpareHeaderSize = 4096;
inline constexpr uint32_t kSpareVersion = 1;
// Slots are numbered from 0 up, below kPendingSlot (remap_table.h), the
// number that marks a pending sector: 2^32 - 1 slots at most, so 2 TiB of
// 512-byte slots or 16 TiB of 4096-byte ones. A bigger SPARE is refused at
// create, not cut down silently.
inline constexpr uint32_t kMaxSlotCount = UINT32_MAX;

struct SpareHeader {
  std::string uuid;  // canonical 36-character text form
  uint32_t sector_size = 0;
  uint32_t slot_count = 0;
  uint64_t main_size = 0;
  int64_t created_us = 0;
};

// Encodes to exactly kSpareHeaderSize bytes.
std::string EncodeSpareHeader(const SpareHeader& h);
// Corruption if the magic, version, checksum or fields are wrong.
Status DecodeSpareHeader(std::string_view bytes, SpareHeader* h);
// True when the bytes start with the SPARE magic (a set lives there).
bool HasSpareMagic(std::string_view bytes);

uint64_t SlotOffset(uint32_t slot, uint32_t sector_size);

struct SetPaths {
  std::string main;
  std::string spare;
  std::string db;
};

struct CreateOptions {
  uint32_t sector_size = 4096;
  // Create SPARE as a regular file of this many bytes when it does not exist
  // (at least kSpareHeaderSize + sector_size); nullopt: SPARE must exist.
  std::optional<uint64_t> spare_size;
};

// InvalidArgument when two of the paths name one file (also through a link).
Status CheckDistinctParts(const SetPaths& paths);

// Makes a new set: reserves SPARE's space (Backend::Reserve), stamps MAIN
// and records its identity (identity.h), and makes every new name durable
// (the directories are synced). Refuses, modifying nothing, when: the sector
// size is not 512 or 4096, MAIN is empty or not a multiple of it, MAIN is
// stamped as another set's, SPARE cannot hold one slot or holds more than
// kMaxSlotCount, SPARE already holds a set, SPARE's space cannot be reserved, the DB exists, or two paths name
// one file.
Status CreateSet(Env* env, const SetPaths& paths, const CreateOptions& options);

// Where the DB lives when none is named: beside a regular-file SPARE, as
// SPARE + ".db". Empty for a block device (a DB needs a filesystem): the
// caller must then ask for an explicit path.
std::string DefaultDbPath(const std::string& spare);

// `path` made absolute (for the paths a DB records).
std::string AbsolutePath(const std::string& path);

// A fresh random UUID in text form.
std::string NewUuid();

}  // namespace remapfs
