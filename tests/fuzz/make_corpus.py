#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Usage: tests/fuzz/make_corpus.py [FUZZ_OPEN_BINARY]

With the fuzz_open binary (build-fuzz/tests/fuzz/fuzz_open) it also writes
fuzz_open's raw seed: a valid SPARE header and DB, both as raw bytes. The
seeds are committed; run this again only when an input format changes.
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- fuzz_parse: the text given to every parser ---------------------------
for name, text in {
    "sector": "5",
    "range_inclusive": "100-199",
    "range_counted": "100+8",
    "range_max": "18446744073709551614",
    "range_overflow": "18446744073709551615+1",
    "range_reversed": "9-3",
    "device": "spare",
    "op": "write",
    "size_plain": "4096",
    "size_mega": "64M",
    "size_giga_lower": "1g",
    "size_tera_overflow": "999999999999999T",
    "size_sixteen_digits": "1234567890123456",
}.items():
    write("fuzz_parse", name, text)

# --- fuzz_control: request lines --------------------------------------------
control = {
    "status": ['{"verb":"status"}'],
    "list": ['{"verb":"list","first":0,"end":64}'],
    "fault_then_remap": [
        '{"verb":"fault-add","rule":{"device":"main","first":3,"count":2,"op":"read"}}',
        '{"verb":"remap","sector":3}',
        '{"verb":"remap","sector":9}',
        '{"verb":"list"}',
        '{"verb":"fault-list"}',
        '{"verb":"unremap","sector":9}',
        '{"verb":"fault-remove","id":1}',
        '{"verb":"status"}',
    ],
    "spare_rules": [
        '{"verb":"fault-add","rule":{"device":"spare","first":0,"count":7,"op":"write","times":2}}',
        '{"verb":"remap","sector":1}',
        '{"verb":"remap","sector":2}',
        '{"verb":"fault-clear"}',
        '{"verb":"mark-pending","sector":4}',
        '{"verb":"unremap","sector":4}',
        '{"verb":"flush"}',
    ],
    "probability_rule": ['{"verb":"fault-add","rule":{"device":"main","first":0,"count":64,"op":"both",'
                         '"probability":0.5,"seed":7}}', '{"verb":"remap","sector":0}'],
    "delay_rule": ['{"verb":"fault-add","rule":{"device":"main","first":1,"delay_ms":5}}'],
    "bad_numbers": ['{"verb":"remap","sector":1e300}', '{"verb":"remap","sector":-1}',
                    '{"verb":"list","first":5,"end":2}',
                    '{"verb":"fault-add","rule":{"device":"main","first":1,"delay_ms":4294967296}}'],
    "bad_requests": ['[1,2]', '{"verb":7}', '{"verb":"nope"}', '{"verb":"remap"}', 'not json',
                     '{"verb":"fault-add","rule":{"device":"disk","first":1}}'],
}
for name, lines in control.items():
    write("fuzz_control", name, "\n".join(lines) + "\n")

# --- fuzz_engine: operation sequences ---------------------------------------
# Opcodes (fuzz_engine.cc, Step): 0 write(shape, a16, b16, seed), 1 read(shape,
# a16, b16), 2 flush, 3 remap(sector), 4 unremap(sector), 5 mark-pending
# (sector), 6 add rule(flags, first, count), 7 remove rule(pick), 8 clear
# rules, 9 reopen, 10 scan. Range shapes: 0 whole sectors (a: first, b: count
# - 1), 1 inside a sector, 2 anywhere, 3 512-byte pieces. Rule flags: bit 0
# spare, bits 1-2 op (0 read, 1 write, 2 both).
def W(shape, a, b, seed=1):
    return bytes([0, shape]) + struct.pack("<HH", a, b) + bytes([seed])


def R(shape, a, b):
    return bytes([1, shape]) + struct.pack("<HH", a, b)


FLUSH, CLEAR, REOPEN, SCAN = bytes([2]), bytes([8]), bytes([9]), bytes([10])


def REMAP(s): return bytes([3, s])
def UNREMAP(s): return bytes([4, s])
def PENDING(s): return bytes([5, s])
def RULE(spare, op, first, count): return bytes([6, (1 if spare else 0) | op << 1, first, count])
def UNRULE(pick): return bytes([7, pick])


MAIN_READ, MAIN_WRITE, BOTH = 0, 1, 2
engine = {
    "write_read_reopen": bytes([0]) + W(0, 0, 7) + R(0, 0, 7) + FLUSH + W(2, 700, 1500, 2) + REOPEN + SCAN,
    "write_fault_remap": bytes([0]) + RULE(False, MAIN_WRITE, 3, 1) + W(0, 0, 7) + R(0, 0, 7) + REMAP(10)
    + UNREMAP(3) + UNRULE(0) + UNREMAP(3) + FLUSH + SCAN,
    "read_fault_pending": bytes([0]) + RULE(False, MAIN_READ, 5, 1) + R(0, 4, 2) + W(1, 5 * 512 + 10, 20)
    + W(0, 5, 0, 3) + R(0, 4, 2) + SCAN,
    "spare_exhausted": bytes([0]) + RULE(True, MAIN_WRITE, 0, 2) + RULE(False, MAIN_WRITE, 0, 4)
    + RULE(False, MAIN_WRITE, 4, 4) + RULE(False, MAIN_WRITE, 8, 4) + W(0, 0, 7) + W(0, 8, 3) + CLEAR + SCAN,
    "big_sectors_partial": bytes([1]) + RULE(False, MAIN_WRITE, 2, 2) + W(3, 16, 2) + W(3, 25, 0, 4)
    + R(2, 8000, 9000) + RULE(True, MAIN_WRITE, 0, 1) + W(3, 17, 0, 5) + REOPEN + SCAN,
    "pending_forget": bytes([0]) + PENDING(7) + R(0, 7, 0) + UNREMAP(7) + R(0, 7, 0) + PENDING(7) + W(0, 7, 0, 6)
    + UNREMAP(7) + REOPEN + SCAN,
    "slot_read_fault": bytes([0]) + REMAP(1) + REMAP(2) + RULE(True, MAIN_READ, 0, 1) + R(0, 1, 1) + W(1, 512 + 3, 9)
    + UNREMAP(1) + UNRULE(0) + UNREMAP(1) + SCAN,
}
for name, data in engine.items():
    write("fuzz_engine", name, data)

# --- fuzz_open: SPARE header and DB -----------------------------------------
# Flags (fuzz_open.cc): bits 0-1 header (0 valid, 1 patched, 2 raw, 3 no
# SPARE), bits 2-3 DB (0 valid, 1 patched, 2 SQL, 3 raw), bits 4-5 SPARE size
# (0 as made, 1 header only, 2 a slot short, 3 longer), bit 6 MAIN longer,
# bit 7 I/O after an open. Then a u16-length section (header), then the rest
# (DB).
def OPEN(flags, header=b"", db=b""):
    if isinstance(db, str):
        db = db.encode()
    return bytes([flags]) + struct.pack("<H", len(header)) + header + db


def PATCH(off, data):
    return struct.pack("<HB", off, len(data)) + data


IO, SQL, DBPATCH, HPATCH = 0x80, 2 << 2, 1 << 2, 1
opens = {
    "valid": OPEN(IO),
    "valid_no_io": OPEN(0),
    "header_only_spare": OPEN(IO | 1 << 4),
    "short_spare": OPEN(IO | 2 << 4),
    "long_spare": OPEN(IO | 3 << 4),
    "main_resized": OPEN(IO | 0x40),
    "no_spare": OPEN(IO | 3),
    "header_uuid_patched": OPEN(IO | HPATCH, PATCH(12, b"\xff\xfe")),
    "header_slots_patched": OPEN(IO | HPATCH, PATCH(32, struct.pack("<I", 0xFFFFFFFF))),
    "db_header_patched": OPEN(IO | DBPATCH, db=PATCH(16, b"\x00\x01") + PATCH(68, b"\x00")),
    "db_page_patched": OPEN(IO | DBPATCH, db=PATCH(4096 + 100, b"\x0d\x00\x00\x00\x09")),
    "sql_table": OPEN(IO | SQL, db="INSERT INTO sectors VALUES(3,1),(4,NULL),(63,7);"
                      "INSERT INTO bad_slots VALUES(2);"
                      "INSERT INTO counters VALUES('remaps',5),('reads',-1);"),
    "sql_unclean": OPEN(IO | SQL, db="UPDATE set_info SET clean=0, last_error='commit failed';"
                        "INSERT INTO sectors VALUES(2,NULL);"),
    "sql_slot_twice": OPEN(IO | SQL, db="INSERT INTO sectors VALUES(3,1),(5,1)"),
    "sql_bad_and_mapped": OPEN(IO | SQL, db="INSERT INTO bad_slots VALUES(2);INSERT INTO sectors VALUES(9,2)"),
    "sql_out_of_range": OPEN(IO | SQL, db="INSERT INTO sectors VALUES(64,1),(-1,2),(5,-7),(6,8);"
                             "INSERT INTO bad_slots VALUES(-1),(8)"),
    "sql_rules": OPEN(IO | SQL, db="INSERT INTO fault_rules VALUES(1,'main',3,2,'read',0,1.0,0,0),"
                      "(2,'spare',0,1,'write',3,0.5,9,0),(3,'main',60,100,'both',0,1.0,0,0),"
                      "(4,'disk',0,1,'read',0,1.0,0,0)"),
    "sql_identity": OPEN(IO | SQL, db="UPDATE set_info SET slot_count=-1, sector_size=4294967808"),
    "sql_identity_main": OPEN(IO | SQL, db="UPDATE set_info SET main_size=-512"),
    "sql_types": OPEN(IO | SQL, db="INSERT INTO sectors VALUES(3,'abc'),(4,x'00ff'),(5,2.5);"
                      "UPDATE set_info SET uuid=NULL"),
    "sql_version": OPEN(IO | SQL, db="PRAGMA user_version=1"),
    "sql_app_id": OPEN(IO | SQL, db="PRAGMA application_id=7"),
    "sql_dropped": OPEN(IO | SQL, db="DROP TABLE counters; DROP TABLE fault_rules"),
    "sql_events": OPEN(IO | SQL, db="INSERT INTO events(time_us, kind, sector, slot, detail) "
                       "VALUES(1,'remapped',3,1,'x'),(2,'nonsense',-4,NULL,'');"),
    "sql_trigger": OPEN(IO | SQL, db="CREATE TRIGGER t AFTER INSERT ON sectors BEGIN "
                        "SELECT RAISE(ABORT, 'no'); END;"),
}
for name, data in opens.items():
    write("fuzz_open", name, data)

if len(sys.argv) > 1:
    path = os.path.join(CORPUS, "fuzz_open", "raw_valid_pair")
    env = dict(os.environ, REMAPFS_FUZZ_OPEN_SEED=path)
    subprocess.run([sys.argv[1]], env=env, check=True)
    print("wrote", path)
print("seeds written to", CORPUS)
