// Builders of torch.save files byte by byte (a protocol-2 pickle writer, the state_dict pickle Module.state_dict()
// produces, the legacy format's layout, a zip writer over minizip's zip.h), shared by the .pth reader's unit tests
// (tests/core/test_pth.cpp) and its fuzz harness's seed corpus (tests/fuzz/fuzz_pth.cpp).
#pragma once
#include <zip.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hw1/core/pth.hpp"

namespace hw1::test::pth {

// ---- a pickle writer (protocol 2, the opcodes torch.save emits) ----
struct Pickle {
  std::string b = "\x80\x02";
  static std::string le(std::uint64_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
    return s;
  }
  Pickle& op(char c) { return b.push_back(c), *this; }
  Pickle& mark() { return op('('); }
  Pickle& str(const std::string& s) { return b += 'X' + le(s.size(), 4) + s, *this; }
  Pickle& integer(std::int64_t v) {
    if (v >= 0 && v < 256) return b += 'K' + le(std::uint64_t(v), 1), *this;
    return b += "\x8a\x08" + le(std::uint64_t(v), 8), *this;  // LONG1
  }
  Pickle& global(const std::string& m, const std::string& n) { return b += 'c' + m + '\n' + n + '\n', *this; }
  Pickle& tuple(const std::vector<std::int64_t>& v) {
    mark();
    for (auto x : v) integer(x);
    return op('t');
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  // _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()); `legacy`: the 6-field pid.
  Pickle& tensor(const std::string& cls, const std::string& key, std::uint64_t numel, std::uint64_t offset,
                 const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride, bool legacy = false) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", cls).str(key).str("cpu").integer(std::int64_t(numel));
    if (legacy) op('N');
    op('t').op('Q');
    integer(std::int64_t(offset)).tuple(size).tuple(stride).op('\x89').ordered_dict();
    return op('t').op('R');
  }
  std::string done() { return b + '.'; }
};

struct TensorSpec {
  std::string name, cls, key;
  std::uint64_t numel, offset;
  std::vector<std::int64_t> size, stride;
};
struct Record {
  std::string name, bytes;
};

// An OrderedDict of the tensors, with a `_metadata` attribute (BUILD), as Module.state_dict() pickles.
inline std::string state_dict_pickle(const std::vector<TensorSpec>& ts, bool legacy, const std::string& prefix = "",
                              bool body_only = false) {
  Pickle p;
  if (body_only) p.b.clear();
  p.ordered_dict().op('q').b += '\x01';
  p.mark();
  for (const auto& t : ts) p.str(prefix + t.name).tensor(t.cls, t.key, t.numel, t.offset, t.size, t.stride, legacy);
  p.op('u');
  p.op('}').str("_metadata").ordered_dict().str("").op('}').str("version").integer(1).op('s').op('s').op('s').op('b');
  return body_only ? p.b : p.done();
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// The legacy format: magic, protocol 1001, sys_info, the object, the storage keys, then count + bytes per storage.
inline std::string legacy_file(const std::string& object, const std::vector<std::pair<std::string, std::string>>& storages,
                        const std::vector<std::size_t>& elem, bool little = true) {
  std::string f(reinterpret_cast<const char*>(hw1::pth_detail::kLegacyMagic), 15);
  f += std::string("\x80\x02M\xe9\x03.", 6);
  Pickle info;
  info.op('}').mark().str("protocol_version").integer(1001).str("little_endian").op(little ? '\x88' : '\x89');
  info.str("type_sizes").op('}').mark().str("short").integer(2).str("int").integer(4).str("long").integer(4).op('u');
  info.op('u');
  f += info.done() + object;
  Pickle keys;
  keys.op(']').mark();
  for (const auto& s : storages) keys.str(s.first);
  keys.op('e');
  f += keys.done();
  for (std::size_t i = 0; i < storages.size(); ++i)
    f += Pickle::le(storages[i].second.size() / elem[i], 8) + storages[i].second;
  return f;
}

// A zip archive of the records (stored, as torch.save writes them); throws when minizip fails.
inline void write_zip_file(const std::filesystem::path& path, const std::vector<Record>& recs) {
  zipFile z = zipOpen64(path.c_str(), APPEND_STATUS_CREATE);
  if (!z) throw std::runtime_error("zipOpen64 " + path.string());
  for (const auto& r : recs) {
    zip_fileinfo zi{};
    if (zipOpenNewFileInZip64(z, r.name.c_str(), &zi, nullptr, 0, nullptr, 0, nullptr, 0, 0, 0) != ZIP_OK ||
        zipWriteInFileInZip(z, r.bytes.data(), unsigned(r.bytes.size())) != ZIP_OK || zipCloseFileInZip(z) != ZIP_OK)
      throw std::runtime_error("writing " + r.name + " into " + path.string());
  }
  if (zipClose(z, nullptr) != ZIP_OK) throw std::runtime_error("zipClose " + path.string());
}

}  // namespace hw1::test::pth
