-- nnunet.zip (lua/l_zip.c): round trip of stored and deflated entries, listing,
-- reading one entry, extraction that refuses unsafe names and symbolic links, keeps
-- identical files, refuses to overwrite different ones (nothing written) unless asked,
-- atomic writers (nothing left after an abort or a failed add), and a corrupt or
-- truncated archive giving an error that names the file.
local zip = require("nnunet.zip")
local fs = require("nnunet.fs")
local TL = dofile("tests/lua/testlib.lua")
local check, read, write = TL.check, TL.read, TL.write_file

local root = TL.temp_root("_zip")
assert(fs.mkdir(root .. "/src/sub"))

-- sources: a compressible text, binary bytes with every value, an empty file
local text = string.rep("nnU-Net zip round trip\n", 2000)
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local binary = table.concat(bytes):rep(17)
write(root .. "/src/a.txt", text)
write(root .. "/src/sub/b.bin", binary)
write(root .. "/src/empty", "")

-- 1. round trip
local archive = root .. "/out.zip"
do
  local w <close> = assert(zip.writer(archive))
  assert(w:add_file("Dataset001_X/a.txt", root .. "/src/a.txt"))
  assert(w:add_file("Dataset001_X/sub/b.bin", root .. "/src/sub/b.bin", "store"))
  assert(w:add_file("Dataset001_X/empty", root .. "/src/empty"))
  assert(w:add_data("Dataset001_X/generated.json", '{"x": 1}\n', "deflate"))
  -- refused names and duplicates leave the writer usable
  local ok, err = w:add_data("../evil", "x")
  check(not ok and err:find("'..' path component", 1, true) and err:find(archive, 1, true),
    "'..' refused naming the archive: %s", tostring(err))
  ok, err = w:add_data("/abs", "x")
  check(not ok and err:find("absolute", 1, true), "absolute name refused: %s", tostring(err))
  ok, err = w:add_data("Dataset001_X/a.txt", "again")
  check(not ok and err:find("added twice", 1, true), "duplicate refused: %s", tostring(err))
  ok, err = w:add_file("Dataset001_X/missing", root .. "/src/missing")
  check(not ok and err:find(root .. "/src/missing", 1, true), "missing source named: %s", tostring(err))
  check(w:count() == 4, "count %d", w:count())
  check(not fs.exists(archive), "nothing at the final path before commit")
  assert(w:commit())
end
check(fs.isfile(archive) and not fs.exists(archive .. ".tmp"), "committed archive, no .tmp left")
local entries = assert(zip.list(archive))
local names = {}
for i, e in ipairs(entries) do names[i] = e.name end
check(table.concat(names, ",") == "Dataset001_X/a.txt,Dataset001_X/sub/b.bin,Dataset001_X/empty,Dataset001_X/generated.json",
  "entries in order: %s", table.concat(names, ","))
check(entries[1].method == "deflate" and entries[1].compressed_size < entries[1].size, "a.txt deflated (%d of %d bytes)",
  entries[1].compressed_size, entries[1].size)
check(entries[2].method == "store" and entries[2].size == #binary and entries[2].compressed_size == #binary,
  "b.bin stored (%s, %d bytes)", entries[2].method, entries[2].compressed_size)
check(entries[1].mode == tonumber("100644", 8), "regular file mode 0644: %s", tostring(entries[1].mode))
check(assert(zip.read(archive, "Dataset001_X/sub/b.bin")) == binary, "read one entry back")
local none, nerr = zip.read(archive, "nope")
check(none == nil and nerr:find("no entry 'nope'", 1, true), "absent entry: %s", tostring(nerr))

-- the archive is a plain zip: the system's unzip (if present) agrees
if os.execute("command -v unzip >/dev/null 2>&1") then
  check(os.execute("unzip -tq " .. TL.sh(archive) .. " >/dev/null"), "unzip -t accepts the archive")
end

-- 2. extraction
local dest = root .. "/dest"
assert(fs.mkdir(dest))
local n, same = zip.extract(archive, dest)
check(n == 4 and same == 0, "4 files written, got %s %s", tostring(n), tostring(same))
check(read(dest .. "/Dataset001_X/a.txt") == text and read(dest .. "/Dataset001_X/sub/b.bin") == binary
  and read(dest .. "/Dataset001_X/empty") == "" and read(dest .. "/Dataset001_X/generated.json") == '{"x": 1}\n',
  "extracted bytes equal the sources")
-- again: identical files are left alone
n, same = zip.extract(archive, dest)
check(n == 0 and same == 4, "re-extract: nothing written, 4 identical (got %s %s)", tostring(n), tostring(same))
-- a changed file is a conflict: nothing written, the message names it
write(dest .. "/Dataset001_X/a.txt", "local edit")
os.remove(dest .. "/Dataset001_X/empty")
local bad, err = zip.extract(archive, dest)
check(bad == nil and err:find(dest .. "/Dataset001_X/a.txt", 1, true) and err:find("Nothing was extracted", 1, true),
  "conflict refused naming the file: %s", tostring(err))
check(read(dest .. "/Dataset001_X/a.txt") == "local edit" and not fs.exists(dest .. "/Dataset001_X/empty"),
  "after a refused extraction nothing changed")
n, same = zip.extract(archive, dest, { overwrite = true })
check(n == 2 and same == 2 and read(dest .. "/Dataset001_X/a.txt") == text, "overwrite replaces (got %s %s)",
  tostring(n), tostring(same))
local leftovers = {}
for _, name in ipairs(fs.listdir(dest .. "/Dataset001_X")) do
  if name:find(".part", 1, true) then leftovers[#leftovers + 1] = name end
end
check(#leftovers == 0, "no temporary files left: %s", table.concat(leftovers, ", "))

-- 3. unsafe archives are refused as a whole (written with the raw writer's names
-- bypassed: build them byte by byte as stored zips)
local function u16(v) return string.pack("<I2", v) end
local function u32(v) return string.pack("<I4", v) end
local function crc32(s)
  local crc = 0xFFFFFFFF
  for i = 1, #s do
    crc = crc ~ s:byte(i)
    for _ = 1, 8 do
      if crc & 1 == 1 then crc = (crc >> 1) ~ 0xEDB88320 else crc = crc >> 1 end
    end
  end
  return crc ~ 0xFFFFFFFF
end
-- files = { {name, data, mode (unix, optional)} }
local function raw_zip(path, files)
  local out, central, offset = {}, {}, 0
  for _, f in ipairs(files) do
    local name, data = f[1], f[2]
    local crc = crc32(data)
    local lh = "PK\3\4" .. u16(20) .. u16(0) .. u16(0) .. u16(0) .. u16(0) .. u32(crc) .. u32(#data) .. u32(#data)
      .. u16(#name) .. u16(0) .. name .. data
    out[#out + 1] = lh
    local attr = f[3] and (f[3] << 16) or 0
    central[#central + 1] = "PK\1\2" .. u16(3 << 8 | 20) .. u16(20) .. u16(0) .. u16(0) .. u16(0) .. u16(0)
      .. u32(crc) .. u32(#data) .. u32(#data) .. u16(#name) .. u16(0) .. u16(0) .. u16(0) .. u16(0) .. u32(attr)
      .. u32(offset) .. name
    offset = offset + #lh
  end
  local cd = table.concat(central)
  write(path, table.concat(out) .. cd .. "PK\5\6" .. u16(0) .. u16(0) .. u16(#files) .. u16(#files) .. u32(#cd)
    .. u32(offset) .. u16(0))
end
local evil_dest = root .. "/evil_dest"
assert(fs.mkdir(evil_dest))
local cases = {
  { "dotdot", { { "ok.txt", "fine" }, { "a/../../escape.txt", "bad" } }, "'..' path component" },
  { "absolute", { { "ok.txt", "fine" }, { "/tmp/escape.txt", "bad" } }, "absolute path" },
  { "backslash", { { "ok.txt", "fine" }, { "a\\..\\escape.txt", "bad" } }, "backslash" },
  { "symlink", { { "ok.txt", "fine" }, { "link", "/etc/passwd", tonumber("120777", 8) } }, "symbolic link" },
}
for _, c in ipairs(cases) do
  local p = root .. "/" .. c[1] .. ".zip"
  raw_zip(p, c[2])
  local r, e = zip.extract(p, evil_dest)
  check(r == nil and e:find(p, 1, true) and e:find(c[3], 1, true), "%s refused naming the archive: %s", c[1],
    tostring(e))
  check(not fs.exists(evil_dest .. "/ok.txt"), "%s: nothing extracted, not even the safe entry", c[1])
end
check(not fs.exists(root .. "/escape.txt"), "nothing escaped the destination")
-- the hand-made writer is a valid zip: a safe one extracts
raw_zip(root .. "/plain.zip", { { "x/y.txt", "hello" } })
check(zip.extract(root .. "/plain.zip", evil_dest) == 1 and read(evil_dest .. "/x/y.txt") == "hello",
  "hand-made stored zip extracts")
check(zip.name_problem("a/b/c.txt") == nil and zip.name_problem("dir/") == nil, "safe names")
check(zip.name_problem("a//b") and zip.name_problem("./a") and zip.name_problem(""), "unsafe names")

-- 4. corrupt and truncated archives, and a file that is no zip: errors name the file
local full = read(archive)
local truncated = root .. "/truncated.zip"
write(truncated, full:sub(1, #full - 30))
local notzip = root .. "/notzip.zip"
write(notzip, "this is not a zip archive at all")
for _, p in ipairs({ truncated, notzip, root .. "/absent.zip" }) do
  local l, e = zip.list(p)
  check(l == nil and e:find(p, 1, true), "list: error names '%s': %s", p, tostring(e))
  local x, xe = zip.extract(p, evil_dest)
  check(x == nil and xe:find(p, 1, true), "extract: error names '%s': %s", p, tostring(xe))
end
-- damaged entry data (CRC mismatch): the entry is named, its target is not written
local damaged = root .. "/damaged.zip"
raw_zip(damaged, { { "d/payload.txt", "abcdefgh" } })
local s = read(damaged)
local at = s:find("abcdefgh", 1, true)
write(damaged, s:sub(1, at - 1) .. "abcdefgX" .. s:sub(at + 8))
local dd = root .. "/damaged_dest"
assert(fs.mkdir(dd))
local dr, de = zip.extract(damaged, dd)
check(dr == nil and de:find(damaged, 1, true) and de:find("d/payload.txt", 1, true), "CRC error names entry: %s",
  tostring(de))
check(not fs.exists(dd .. "/d/payload.txt"), "damaged entry not written")

-- 5. an aborted or garbage-collected writer leaves nothing; an empty archive is valid
do
  local w = assert(zip.writer(root .. "/aborted.zip"))
  assert(w:add_data("x", "y"))
  w:abort()
  check(not fs.exists(root .. "/aborted.zip") and not fs.exists(root .. "/aborted.zip.tmp"), "abort leaves nothing")
  local ok = pcall(function()
    local w2 <close> = assert(zip.writer(root .. "/raised.zip"))
    assert(w2:add_data("x", "y"))
    error("boom")
  end)
  check(not ok and not fs.exists(root .. "/raised.zip"), "an error inside <close> scope leaves nothing")
  local e = assert(zip.writer(root .. "/empty.zip"))
  assert(e:commit())
  local l = zip.list(root .. "/empty.zip")
  check(l and #l == 0, "empty archive lists no entries")
end
-- a writer into a missing folder fails at creation or at commit, naming the archive
local missing = root .. "/no/such/folder/x.zip"
local nw, nerr2 = zip.writer(missing)
if nw then
  assert(nw:add_data("a", "b"))
  local ok, cerr = nw:commit()
  check(not ok and tostring(cerr):find(missing, 1, true), "commit into a missing folder names the archive: %s",
    tostring(cerr))
else
  check(nerr2:find(missing, 1, true), "writer error names the archive: %s", nerr2)
end

TL.finish("test_zip", root)
