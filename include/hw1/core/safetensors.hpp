// The safetensors format: an 8-byte little-endian header length, a JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
// little-endian data. F32 is native; F16 / BF16 / F64 (and integer types) are converted on read.
#pragma once
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "hw1/core/atomic_file.hpp"
#include "hw1/core/error.hpp"
#include "hw1/core/tensor.hpp"

namespace hw1 {

namespace detail {
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline float bf16_to_float(std::uint16_t h) {
  const std::uint32_t bits = std::uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline std::size_t dtype_size(const std::string& dt) {
  if (dt == "F64" || dt == "I64" || dt == "U64") return 8;
  if (dt == "F32" || dt == "I32" || dt == "U32") return 4;
  if (dt == "F16" || dt == "BF16" || dt == "I16" || dt == "U16") return 2;
  if (dt == "I8" || dt == "U8" || dt == "BOOL") return 1;
  return 0;
}
}  // namespace detail

class SafeTensors {
 public:
  struct Info {
    std::string dtype;
    Shape shape;
    std::size_t begin = 0, end = 0;
  };

  // Reads and validates a whole file; every problem is an hw1::Error naming the file. The header is checked
  // before the data is read (a header that does not fit the file allocates nothing for it).
  static SafeTensors read(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw Error(path + ": cannot open: no such file");
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, expected a .safetensors file");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    f.seekg(0, std::ios::end);
    const std::streamoff end = f.tellg();
    if (end < 0) throw Error(path + ": cannot read: not a regular file");
    const std::uint64_t file_size = std::uint64_t(end);
    f.seekg(0);
    unsigned char len[8] = {};
    if (file_size >= 8) f.read(reinterpret_cast<char*>(len), 8);
    const std::uint64_t n = header_length(len, file_size, path);
    std::string header(n, '\0');
    f.read(header.data(), std::streamsize(n));
    SafeTensors st = from_header(header, file_size - 8 - n, path);
    st.data_.resize(file_size - 8 - n);
    f.read(reinterpret_cast<char*>(st.data_.data()), std::streamsize(st.data_.size()));
    if (std::uint64_t(f.gcount()) != st.data_.size()) throw Error(path + ": truncated while reading tensor data");
    return st;
  }

  // The same checks on the bytes of a whole file in memory (`path` only labels errors): after either, every
  // tensor's shape, dtype and data_offsets agree and lie inside the data, so copy_to / tensor never read out of
  // bounds.
  static SafeTensors parse(const std::vector<unsigned char>& bytes, const std::string& path) {
    const std::uint64_t n = header_length(bytes.data(), bytes.size(), path);
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
    SafeTensors st = from_header(header, bytes.size() - 8 - n, path);
    st.data_.assign(bytes.begin() + 8 + std::ptrdiff_t(n), bytes.end());
    return st;
  }

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const Info& info(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw Error(path_ + ": has no tensor named '" + name + "'");
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& [k, v] : tensors_) out.push_back(k);
    return out;
  }

  // Whether copy_to converts this dtype (the others are read and validated, but cannot be converted).
  static bool convertible(const std::string& dt) {
    return dt == "F32" || dt == "F64" || dt == "I64" || dt == "I32" || dt == "U8" || dt == "I8" || dt == "F16" ||
           dt == "BF16";
  }

  // Copies tensor `name` into `out` (count = product of its shape), converting the element type.
  template <class T>
  void copy_to(const std::string& name, T* out) const {
    const Info& in = info(name);
    const unsigned char* p = bytes(name);
    const std::size_t count = (in.end - in.begin) / detail::dtype_size(in.dtype);
    auto load = [&](auto tag) {
      using S = decltype(tag);
      for (std::size_t i = 0; i < count; ++i) {
        S v;
        std::memcpy(&v, p + i * sizeof(S), sizeof(S));
        out[i] = T(v);
      }
    };
    const std::string& dt = in.dtype;
    if (dt == "F32") load(float{});
    else if (dt == "F64") load(double{});
    else if (dt == "I64") load(std::int64_t{});
    else if (dt == "I32") load(std::int32_t{});
    else if (dt == "U8") load(std::uint8_t{});
    else if (dt == "I8") load(std::int8_t{});
    else if (dt == "F16" || dt == "BF16") {
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = T(dt == "F16" ? detail::half_to_float(h) : detail::bf16_to_float(h));
      }
    } else {
      throw Error(path_ + ": tensor " + name + " has dtype " + dt + ", which cannot be converted");
    }
  }
  template <class T = float>
  HostTensor<T> tensor(const std::string& name) const {
    HostTensor<T> t = hw1::empty<T>(info(name).shape);
    copy_to(name, t.data());
    return t;
  }

  // A file another reader has parsed (hw1/core/pth.hpp): every Info already checked against `data`, so the rest of
  // hw1 (Model::load, the programs) reads a .pth through this one object.
  static SafeTensors from_parts(std::string path, std::map<std::string, Info> tensors, std::vector<unsigned char> data,
                                std::map<std::string, std::string> metadata = {}) {
    SafeTensors st;
    st.path_ = std::move(path);
    st.tensors_ = std::move(tensors);
    st.data_ = std::move(data);
    st.metadata = std::move(metadata);
    return st;
  }
  // The stored bytes of tensor `name` (info(name).end - info(name).begin of them), in its own dtype: the one
  // place that knows where the tensor data lies in data_ (copy_to reads through it too).
  const unsigned char* bytes(const std::string& name) const { return data_.data() + info(name).begin; }

  std::map<std::string, std::string> metadata;

 private:
  // The header length from a file's first 8 bytes (`len`, read only when file_size >= 8).
  static std::uint64_t header_length(const unsigned char* len, std::uint64_t file_size, const std::string& path) {
    if (file_size < 8) throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
    if (n > file_size - 8 || n > (std::uint64_t(100) << 20))
      throw Error(path + ": not a safetensors file or truncated (header length " + std::to_string(n) +
                  " exceeds the file size " + std::to_string(file_size) + ")");
    return n;
  }

  // Everything but the data: metadata and tensor entries, each checked against `data_size` data bytes.
  static SafeTensors from_header(const std::string& header, std::uint64_t data_size, const std::string& path) {
    SafeTensors st;
    st.path_ = path;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(header);
    } catch (const std::exception& e) {
      throw Error(path + ": corrupt safetensors header (invalid JSON: " + e.what() + ")");
    }
    if (!j.is_object()) throw Error(path + ": corrupt safetensors header (not a JSON object)");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it.value().is_object())
          for (auto m = it.value().begin(); m != it.value().end(); ++m)
            if (m.value().is_string()) st.metadata[m.key()] = m.value().get<std::string>();
        continue;
      }
      try {
        st.tensors_[it.key()] = parse_entry(it.value(), data_size);
      } catch (const Error& e) {
        throw Error(path + ": tensor " + it.key() + ": " + e.what());
      } catch (const std::exception& e) {
        throw Error(path + ": tensor " + it.key() + ": malformed header entry (" + e.what() + ")");
      }
    }
    return st;
  }

  // A header value for an error message: flat lists and scalars as written, cut at 80 characters; nested
  // values are not printed (json::dump recurses, and a 100 MB header may nest a million levels deep).
  static std::string brief(const nlohmann::json& v) {
    if (v.is_structured())
      for (const auto& e : v)
        if (e.is_structured()) return v.is_array() ? "(a nested list)" : "(an object)";
    if (v.is_object()) return "(an object)";
    std::string s = v.dump();
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
  }

  // One header entry {"dtype", "shape", "data_offsets"}, checked against `data_size` data bytes.
  static Info parse_entry(const nlohmann::json& v, std::uint64_t data_size) {
    if (!v.is_object()) throw Error("malformed header entry (not a JSON object)");
    Info info;
    const auto& dt = v.at("dtype");
    if (!dt.is_string()) throw Error("dtype is not a string");
    info.dtype = dt.get<std::string>();
    const std::size_t es = detail::dtype_size(info.dtype);
    if (es == 0) throw Error("unsupported dtype " + info.dtype);
    const auto& shape = v.at("shape");
    if (!shape.is_array()) throw Error("shape is not a list");
    // The size in bytes, checked for overflow at every step: it must fit in the file's data. A zero dimension
    // makes any product fit, so the product of the other dimensions is bounded too (no overflow later).
    std::uint64_t bytes = es, nonzero = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned())
        throw Error("shape " + brief(shape) + " has an entry that is not a non-negative integer");
      const std::uint64_t k = d.get<std::uint64_t>();
      if (k != 0 && bytes > data_size / k)
        throw Error("shape " + brief(shape) + " of " + info.dtype + " needs more bytes than the file holds (" +
                    std::to_string(data_size) + " data bytes)");
      if (k != 0 && nonzero > (std::uint64_t(1) << 48) / k)
        throw Error("shape " + brief(shape) + " is too large");
      bytes *= k;
      if (k != 0) nonzero *= k;
      info.shape.push_back(std::size_t(k));
    }
    const auto& off = v.at("data_offsets");
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error("data_offsets " + brief(off) + " is not a pair of non-negative integers");
    const std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
    if (end < begin || end - begin != bytes)
      throw Error("data_offsets [" + std::to_string(begin) + "," + std::to_string(end) + "] do not match shape " +
                  shape_str(info.shape) + " of " + info.dtype + " (" + std::to_string(bytes) + " bytes)");
    if (end > data_size)
      throw Error("data ends at byte " + std::to_string(end) + " but the file holds only " +
                  std::to_string(data_size) + " data bytes (truncated file)");
    info.begin = std::size_t(begin);
    info.end = std::size_t(end);
    return info;
  }

  std::string path_;
  std::map<std::string, Info> tensors_;
  std::vector<unsigned char> data_;  // the data after the header; Info::begin / end index it
};

// Collects tensors, then writes them in one go to `path` atomically and durably (hw1::AtomicFile), so an
// interrupted write or a crash never leaves a half-written file under the real name.
class SafeTensorsWriter {
 public:
  template <class T>
  void add(const std::string& name, const Shape& shape, const T* data) {
    std::size_t count = 1;
    for (auto d : shape) count *= d;
    Entry e{name, dtype_of<T>(), shape, std::vector<unsigned char>(count * sizeof(T))};
    if (count) std::memcpy(e.bytes.data(), data, count * sizeof(T));  // an empty vector's data() may be null
    entries_.push_back(std::move(e));
  }
  template <class E>
  void add(const std::string& name, const E& t) {
    add(name, shape_of(t), t.data());
  }
  // Bytes already in a safetensors dtype ("F16", "BF16", ...), kept as they are (hw1-convert).
  void add_raw(const std::string& name, const std::string& dtype, const Shape& shape, const unsigned char* bytes,
               std::size_t size) {
    entries_.push_back({name, dtype, shape, std::vector<unsigned char>(bytes, bytes + size)});
  }

  void write(const std::string& path) const {
    nlohmann::ordered_json j;
    if (!metadata.empty()) j["__metadata__"] = metadata;
    std::size_t off = 0;
    for (const auto& e : entries_) {
      j[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes.size()}}};
      off += e.bytes.size();
    }
    std::string header = j.dump();
    while (header.size() % 8) header.push_back(' ');
    AtomicFile f(path);
    const std::uint64_t n = header.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = (n >> (8 * i)) & 0xff;
    f.write(len, 8);
    f.write(header);
    for (const auto& e : entries_) f.write(e.bytes.data(), e.bytes.size());
    f.commit();
  }

  std::map<std::string, std::string> metadata;

 private:
  struct Entry {
    std::string name, dtype;
    Shape shape;
    std::vector<unsigned char> bytes;
  };
  template <class T>
  static std::string dtype_of() {
    if constexpr (std::is_same_v<T, float>) return "F32";
    else if constexpr (std::is_same_v<T, double>) return "F64";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "I64";
    else if constexpr (std::is_same_v<T, std::int32_t>) return "I32";
    else if constexpr (std::is_same_v<T, std::uint8_t>) return "U8";
    else static_assert(sizeof(T) == 0, "hw1::SafeTensorsWriter: unsupported element type");
  }
  std::vector<Entry> entries_;
};

}  // namespace hw1
