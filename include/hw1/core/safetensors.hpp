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

  // Reads and validates a whole file; every problem is an hw1::Error naming the file.
  static SafeTensors read(const std::string& path) {
    SafeTensors st;
    st.path_ = path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw Error(path + ": cannot open: no such file");
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, expected a .safetensors file");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    f.seekg(0, std::ios::end);
    const std::uint64_t file_size = std::uint64_t(f.tellg());
    f.seekg(0);
    if (file_size < 8) throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
    unsigned char len_bytes[8];
    f.read(reinterpret_cast<char*>(len_bytes), 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
    if (n > file_size - 8 || n > (std::uint64_t(100) << 20))
      throw Error(path + ": not a safetensors file or truncated (header length " + std::to_string(n) +
                  " exceeds the file size " + std::to_string(file_size) + ")");
    std::string header(n, '\0');
    f.read(header.data(), std::streamsize(n));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(header);
    } catch (const std::exception& e) {
      throw Error(path + ": corrupt safetensors header (invalid JSON: " + e.what() + ")");
    }
    if (!j.is_object()) throw Error(path + ": corrupt safetensors header (not a JSON object)");
    const std::uint64_t data_size = file_size - 8 - n;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it.value().is_object())
          for (auto m = it.value().begin(); m != it.value().end(); ++m)
            if (m.value().is_string()) st.metadata[m.key()] = m.value().get<std::string>();
        continue;
      }
      try {
        Info info;
        info.dtype = it.value().at("dtype").get<std::string>();
        for (auto d : it.value().at("shape")) info.shape.push_back(d.get<std::size_t>());
        info.begin = it.value().at("data_offsets").at(0).get<std::size_t>();
        info.end = it.value().at("data_offsets").at(1).get<std::size_t>();
        const std::size_t es = detail::dtype_size(info.dtype);
        if (es == 0) throw Error("unsupported dtype " + info.dtype);
        std::size_t count = 1;
        for (auto d : info.shape) count *= d;
        if (info.end < info.begin || info.end - info.begin != count * es)
          throw Error("data_offsets [" + std::to_string(info.begin) + "," + std::to_string(info.end) +
                      "] do not match shape " + shape_str(info.shape) + " of " + info.dtype);
        if (info.end > data_size)
          throw Error("data ends at byte " + std::to_string(info.end) + " but the file holds only " +
                      std::to_string(data_size) + " data bytes (truncated file)");
        st.tensors_[it.key()] = info;
      } catch (const Error& e) {
        throw Error(path + ": tensor " + it.key() + ": " + e.what());
      } catch (const std::exception& e) {
        throw Error(path + ": tensor " + it.key() + ": malformed header entry (" + e.what() + ")");
      }
    }
    st.data_.resize(data_size);
    f.read(reinterpret_cast<char*>(st.data_.data()), std::streamsize(data_size));
    if (std::uint64_t(f.gcount()) != data_size) throw Error(path + ": truncated while reading tensor data");
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
  std::string path_;
  std::map<std::string, Info> tensors_;
  std::vector<unsigned char> data_;
};

// Collects tensors, then writes them in one go to `path` atomically (a temporary file renamed into place), so
// an interrupted write never leaves a half-written file under the real name.
class SafeTensorsWriter {
 public:
  template <class T>
  void add(const std::string& name, const Shape& shape, const T* data) {
    std::size_t count = 1;
    for (auto d : shape) count *= d;
    Entry e{name, dtype_of<T>(), shape, std::vector<unsigned char>(count * sizeof(T))};
    std::memcpy(e.bytes.data(), data, count * sizeof(T));
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
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      if (!f) throw Error(path + ": cannot write: " + std::strerror(errno));
      const std::uint64_t n = header.size();
      unsigned char len[8];
      for (int i = 0; i < 8; ++i) len[i] = (n >> (8 * i)) & 0xff;
      f.write(reinterpret_cast<const char*>(len), 8);
      f.write(header.data(), std::streamsize(header.size()));
      for (const auto& e : entries_) f.write(reinterpret_cast<const char*>(e.bytes.data()), std::streamsize(e.bytes.size()));
      f.flush();
      if (!f) {
        std::remove(tmp.c_str());
        throw Error(path + ": write failed: " + std::strerror(errno));
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::remove(tmp.c_str());
      throw Error(path + ": cannot move the written file into place: " + ec.message());
    }
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
