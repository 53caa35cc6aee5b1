// PyTorch checkpoints (.pth / .pt) without Python or LibTorch: the two formats torch.save writes, read into the
// same hw1::SafeTensors object the safetensors reader produces, so Model::load and every program share one path.
//  - zip (default since PyTorch 1.6): <top>/data.pkl (the pickle), <top>/data/<key> (one raw little-endian record
//    per storage, stored uncompressed), <top>/version, and from PyTorch 2 <top>/byteorder; <top> varies.
//    Read with Debian's minizip (libminizip-dev, unzip.h): well kept, in Debian, small, and it streams a record
//    with its CRC checked, where a zip reader by hand would be one more parser of untrusted bytes to maintain.
//  - legacy (_use_new_zipfile_serialization=False): pickles of the magic number 0x1950a86a20f9469cfc6c, the
//    protocol version 1001 and a sys-info dict (little_endian, type_sizes), then the object pickle, then a pickle
//    of the storage keys, then per storage in that order an 8-byte little-endian element count and the raw bytes.
// The pickle is run by a small interpreter of the protocol-2 opcodes torch.save emits. It builds values and never
// calls anything: a GLOBAL is looked up in an allow-list (collections.OrderedDict, torch._utils._rebuild_tensor_v2
// / _rebuild_parameter, the typed storage classes) and any other is refused by name, so a pickle that would run
// `os.system` is an error line, not a program. Stack, memo, nesting and every size are bounded; every storage is
// checked against its record, every tensor's view (offset, sizes, strides) against its storage.
#pragma once
#include <unzip.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "hw1/core/error.hpp"
#include "hw1/core/safetensors.hpp"

namespace hw1 {

namespace pth_detail {

// ---- values ----------------------------------------------------------------------------------------------------

struct Node;
using Ref = std::shared_ptr<Node>;
struct Node {
  enum Kind { none, boolean, integer, big_integer, real, str, bytes, tuple, list, dict, global, storage, tensor };
  Kind kind = none;
  std::int64_t i = 0;
  double f = 0;
  std::string s;           // str, bytes, big_integer (little-endian two's complement), global ("module.name")
  std::vector<Ref> items;  // tuple, list; dict: key, value, key, value ...
  int depth = 0;           // nesting below this node (bounded, so no pickle nests deep enough to overflow)
  // storage: its safetensors dtype, element size, record key, element count
  std::string dtype;
  std::size_t elem = 0;
  std::uint64_t numel = 0;
  // tensor: a view of a storage
  Ref base;
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> size, stride;
};

inline const char* kind_name(const Node& n) {
  switch (n.kind) {
    case Node::none: return "None";
    case Node::boolean: return "a bool";
    case Node::integer: case Node::big_integer: return "an int";
    case Node::real: return "a float";
    case Node::str: return "a string";
    case Node::bytes: return "bytes";
    case Node::tuple: return "a tuple";
    case Node::list: return "a list";
    case Node::dict: return "a dict";
    case Node::global: return "a Python class or function";
    case Node::storage: return "a storage";
    case Node::tensor: return "a tensor";
  }
  return "a value";
}

// The storage classes torch.save names, as safetensors dtypes.
inline bool storage_dtype(const std::string& global, std::string& dtype, std::size_t& elem) {
  static const std::map<std::string, std::pair<const char*, std::size_t>> m{
      {"torch.FloatStorage", {"F32", 4}},  {"torch.DoubleStorage", {"F64", 8}},  {"torch.HalfStorage", {"F16", 2}},
      {"torch.BFloat16Storage", {"BF16", 2}}, {"torch.LongStorage", {"I64", 8}}, {"torch.IntStorage", {"I32", 4}},
      {"torch.ShortStorage", {"I16", 2}},  {"torch.CharStorage", {"I8", 1}},    {"torch.ByteStorage", {"U8", 1}},
      {"torch.BoolStorage", {"BOOL", 1}}};
  const auto it = m.find(global);
  if (it == m.end()) return false;
  dtype = it->second.first;
  elem = it->second.second;
  return true;
}

// Refuses every global outside the allow-list, naming it; a class from a model library gets the hint to save a
// state_dict (torch.save(model) pickles the model's class first).
inline void check_global(const std::string& mod, const std::string& name) {
  const std::string full = mod + "." + name;
  std::string dt;
  std::size_t es;
  if (full == "collections.OrderedDict" || full == "torch._utils._rebuild_tensor_v2" ||
      full == "torch._utils._rebuild_parameter" || full == "torch._utils._rebuild_parameter_with_state" ||
      storage_dtype(full, dt, es))
    return;
  const bool model_like = mod.starts_with("torch.nn.") || mod.starts_with("torchvision.") ||
                          mod.starts_with("timm.") || mod == "__main__" || mod.starts_with("__torch__") ||
                          mod.starts_with("models.") || mod == "models" || mod.starts_with("model.");
  if (model_like)
    throw Error("refusing `" + full + "`: the file holds a pickled Python object (a whole model saved with "
                "torch.save(model)?), and hw1 reads tensors, it never runs pickled code; save the weights with "
                "torch.save(model.state_dict(), PATH) instead");
  throw Error("refusing `" + full + "`: hw1 reads tensors, it never runs pickled code (a checkpoint holds only "
              "dicts, lists, numbers, strings and tensors)");
}

// ---- the byte source -------------------------------------------------------------------------------------------

// Reads from a stream that holds `size` more bytes; every read past them is a truncated file.
class Source {
 public:
  Source(std::istream& in, std::uint64_t size) : in_(in), left_(size) {}
  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return left_; }
  unsigned char byte() {
    unsigned char c;
    read(&c, 1);
    return c;
  }
  void read(void* dst, std::uint64_t n) {
    if (n > left_)
      throw Error("truncated file (the pickle at byte " + std::to_string(pos_) + " needs " + std::to_string(n) +
                  " more bytes, " + std::to_string(left_) + " are left)");
    in_.read(static_cast<char*>(dst), std::streamsize(n));
    if (std::uint64_t(in_.gcount()) != n) throw Error("read error at pickle byte " + std::to_string(pos_));
    pos_ += n;
    left_ -= n;
  }
  std::string str(std::uint64_t n) {
    if (n > left_) read(nullptr, n);  // the truncation error
    std::string s(n, '\0');
    read(s.data(), n);
    return s;
  }
  std::uint64_t le(int bytes) {
    unsigned char b[8];
    read(b, std::uint64_t(bytes));
    std::uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | b[k];
    return v;
  }
  std::string line(std::size_t max) {  // protocol-0 text argument, up to '\n'
    std::string s;
    for (;;) {
      const char c = char(byte());
      if (c == '\n') return s;
      if (s.size() >= max) throw Error("a text argument longer than " + std::to_string(max) + " bytes in the pickle");
      s.push_back(c);
    }
  }

 private:
  std::istream& in_;
  std::uint64_t left_, pos_ = 0;
};

// ---- the interpreter -------------------------------------------------------------------------------------------

struct Limits {
  static constexpr std::size_t stack = 1 << 20, marks = 1 << 16, memo = 1 << 22, depth = 64, dims = 64;
};

// Every node made during one read (read_pth holds one): a pickle may link a container into itself (memo + APPEND,
// SETITEM, BUILD), a cycle of shared_ptrs that would never be freed, so the arena's destructor cuts every node's
// links once the read is over.
struct NodeArena {
  std::vector<std::weak_ptr<Node>> nodes;
  NodeArena* prev;
  static NodeArena*& current() {
    thread_local NodeArena* a = nullptr;
    return a;
  }
  NodeArena() : prev(current()) { current() = this; }
  NodeArena(const NodeArena&) = delete;
  NodeArena& operator=(const NodeArena&) = delete;
  ~NodeArena() {
    current() = prev;
    for (auto& w : nodes)
      if (Ref n = w.lock()) {
        n->items.clear();
        n->base.reset();
      }
  }
};

inline Ref make(Node::Kind k) {
  auto n = std::make_shared<Node>();
  n->kind = k;
  if (NodeArena* a = NodeArena::current()) a->nodes.push_back(n);
  return n;
}
inline Ref make_int(std::int64_t v) {
  Ref n = make(Node::integer);
  n->i = v;
  return n;
}

class Unpickler {
 public:
  explicit Unpickler(Source& src) : src_(src) {}

  Ref run() {
    for (;;) {
      const std::uint64_t at = src_.pos();
      const unsigned char op = src_.byte();
      try {
        if (step(op)) break;
      } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (pickle opcode 0x" + hex(op) + " at byte " + std::to_string(at) + ")");
      }
    }
    if (stack_.size() != 1 || !marks_.empty())
      throw Error("malformed pickle (STOP with " + std::to_string(stack_.size()) + " values on the stack)");
    return stack_.back();
  }

 private:
  static std::string hex(unsigned char c) {
    const char* d = "0123456789abcdef";
    return {d[c >> 4], d[c & 15]};
  }
  void push(Ref r) {
    if (stack_.size() >= Limits::stack) throw Error("pickle stack deeper than " + std::to_string(Limits::stack));
    stack_.push_back(std::move(r));
  }
  Ref pop() {
    if (stack_.size() <= base()) throw Error("malformed pickle (pops an empty stack)");
    Ref r = std::move(stack_.back());
    stack_.pop_back();
    return r;
  }
  Ref& top() {
    if (stack_.size() <= base()) throw Error("malformed pickle (reads an empty stack)");
    return stack_.back();
  }
  std::size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) throw Error("malformed pickle (no MARK)");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> out(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(m)),
                         std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }
  static void add_child(Node& parent, const Ref& child) {
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (std::size_t(parent.depth) > Limits::depth)
      throw Error("pickle nests values deeper than " + std::to_string(Limits::depth) + " levels");
  }
  static Ref make_tuple(std::vector<Ref> items) {
    Ref t = make(Node::tuple);
    for (const auto& c : items) add_child(*t, c);
    t->items = std::move(items);
    return t;
  }
  void memo_put(std::uint64_t idx) {
    if (memo_.size() >= Limits::memo && !memo_.count(idx))
      throw Error("pickle memo holds more than " + std::to_string(Limits::memo) + " values");
    memo_[idx] = top();
  }
  void memo_get(std::uint64_t idx) {
    const auto it = memo_.find(idx);
    if (it == memo_.end()) throw Error("malformed pickle (memo entry " + std::to_string(idx) + " was never stored)");
    push(it->second);
  }
  void set_items(Node& d, std::vector<Ref>& kv) {
    if (d.kind != Node::dict) throw Error(std::string("SETITEMS on ") + kind_name(d) + ", not a dict");
    if (kv.size() % 2) throw Error("malformed pickle (SETITEMS with an odd number of values)");
    for (auto& x : kv) add_child(d, x), d.items.push_back(std::move(x));
  }
  void append(Node& l, std::vector<Ref>& v) {
    if (l.kind != Node::list) throw Error(std::string("APPEND on ") + kind_name(l) + ", not a list");
    for (auto& x : v) add_child(l, x), l.items.push_back(std::move(x));
  }
  static std::int64_t as_int(const Ref& r, const char* what) {
    if (r->kind == Node::integer) return r->i;
    if (r->kind == Node::boolean) return r->i;
    throw Error(std::string(what) + " is " + kind_name(*r) + ", expected an int");
  }
  static std::vector<std::uint64_t> as_dims(const Ref& r, const char* what) {
    if (r->kind != Node::tuple) throw Error(std::string(what) + " is " + kind_name(*r) + ", expected a tuple");
    if (r->items.size() > Limits::dims)
      throw Error(std::string(what) + " has " + std::to_string(r->items.size()) + " dimensions (at most " +
                  std::to_string(Limits::dims) + ")");
    std::vector<std::uint64_t> out;
    for (const auto& d : r->items) {
      const std::int64_t v = as_int(d, what);
      if (v < 0) throw Error(std::string(what) + " holds the negative value " + std::to_string(v));
      out.push_back(std::uint64_t(v));
    }
    return out;
  }

  // ('storage', <storage class>, key, location, numel[, view_metadata]): the persistent id of every storage.
  Ref persistent(const Ref& pid) {
    if (pid->kind != Node::tuple || pid->items.size() < 5 || pid->items.size() > 6 ||
        pid->items[0]->kind != Node::str || pid->items[0]->s != "storage")
      throw Error("a persistent id that is not ('storage', class, key, location, size): not a PyTorch tensor file");
    const auto& it = pid->items;
    if (it[1]->kind != Node::global) throw Error("a storage whose class is " + std::string(kind_name(*it[1])));
    Ref s = make(Node::storage);
    if (!storage_dtype(it[1]->s, s->dtype, s->elem)) throw Error("unsupported storage class " + it[1]->s);
    if (it[2]->kind != Node::str || it[2]->s.empty() || it[2]->s.size() > 64)
      throw Error("a storage key that is not a short string");
    for (char c : it[2]->s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
        throw Error("a storage key with the character '" + std::string(1, c) + "'");
    s->s = it[2]->s;
    const std::int64_t n = as_int(it[4], "a storage size");
    if (n < 0) throw Error("a storage of negative size " + std::to_string(n));
    s->numel = std::uint64_t(n);
    if (it.size() == 6 && it[5]->kind != Node::none)
      throw Error("storage " + s->s + " is a view of another storage (PyTorch < 0.4's format), which hw1 does not read");
    // One storage node per key: tensors that share a storage share it here too.
    const auto prev = storages_.find(s->s);
    if (prev != storages_.end()) {
      if (prev->second->dtype != s->dtype || prev->second->numel != s->numel)
        throw Error("storage " + s->s + " is described twice with different types or sizes");
      return prev->second;
    }
    storages_[s->s] = s;
    return s;
  }

  Ref call(const Ref& f, const Ref& args) {
    if (f->kind != Node::global) throw Error(std::string("REDUCE calls ") + kind_name(*f) + ", not a class");
    if (args->kind != Node::tuple) throw Error("REDUCE with arguments that are not a tuple");
    const auto& a = args->items;
    if (f->s == "collections.OrderedDict") {
      if (!a.empty()) throw Error("collections.OrderedDict with arguments (torch.save gives none)");
      return make(Node::dict);
    }
    if (f->s == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || a.size() > 7) throw Error("_rebuild_tensor_v2 with " + std::to_string(a.size()) + " arguments");
      if (a[0]->kind != Node::storage) throw Error("_rebuild_tensor_v2 of " + std::string(kind_name(*a[0])));
      Ref t = make(Node::tensor);
      t->base = a[0];
      const std::int64_t off = as_int(a[1], "a storage offset");
      if (off < 0) throw Error("a negative storage offset");
      t->offset = std::uint64_t(off);
      t->size = as_dims(a[2], "a tensor size");
      t->stride = as_dims(a[3], "a tensor stride");
      if (t->size.size() != t->stride.size())
        throw Error("a tensor with " + std::to_string(t->size.size()) + " sizes and " +
                    std::to_string(t->stride.size()) + " strides");
      return t;
    }
    if (f->s == "torch._utils._rebuild_parameter" || f->s == "torch._utils._rebuild_parameter_with_state") {
      if (a.size() < 3 || a[0]->kind != Node::tensor) throw Error(f->s + " of something that is not a tensor");
      return a[0];
    }
    throw Error(f->s + " cannot be called (it names a storage type)");
  }

  bool step(unsigned char op) {
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned v = src_.byte();
        if (v > 5) throw Error("pickle protocol " + std::to_string(v) + " (at most 5 exists)");
        return false;
      }
      case 0x95: src_.le(8); return false;  // FRAME: a length hint
      case '.': return true;                // STOP
      case '(':                             // MARK
        if (marks_.size() >= Limits::marks) throw Error("more than " + std::to_string(Limits::marks) + " open MARKs");
        marks_.push_back(stack_.size());
        return false;
      case '0': pop(); return false;        // POP
      case '1': pop_mark(); return false;   // POP_MARK
      case '2': push(top()); return false;  // DUP
      case 'N': push(make(Node::none)); return false;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        Ref b = make(Node::boolean);
        b->i = op == 0x88;
        push(b);
        return false;
      }
      case 'K': push(make_int(src_.byte())); return false;                             // BININT1
      case 'M': push(make_int(std::int64_t(src_.le(2)))); return false;                // BININT2
      case 'J': push(make_int(std::int32_t(std::uint32_t(src_.le(4))))); return false;  // BININT
      case 0x8a: case 0x8b: {  // LONG1, LONG4
        const std::uint64_t n = op == 0x8a ? src_.byte() : src_.le(4);
        if (n > 1024) throw Error("an integer of " + std::to_string(n) + " bytes");
        const std::string b = src_.str(n);
        if (n <= 8) {
          std::uint64_t v = 0;
          for (std::size_t k = n; k-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[k]);
          if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) v |= ~std::uint64_t(0) << (8 * n);
          push(make_int(std::int64_t(v)));
        } else {
          Ref r = make(Node::big_integer);
          r->s = b;
          push(r);
        }
        return false;
      }
      case 'G': {  // BINFLOAT: big-endian double
        std::uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | src_.byte();
        Ref r = make(Node::real);
        std::memcpy(&r->f, &bits, 8);
        push(r);
        return false;
      }
      case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
        // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8
        const bool shortlen = op == 0x8c || op == 'U' || op == 'C', eight = op == 0x8d || op == 0x8e;
        const std::uint64_t n = shortlen ? src_.byte() : src_.le(eight ? 8 : 4);
        Ref r = make(op == 'X' || op == 0x8c || op == 0x8d ? Node::str : Node::bytes);
        if (op == 'T' || op == 'U') r->kind = Node::str;  // Python 2 str: text in every checkpoint
        r->s = src_.str(n);  // n is checked against the bytes left before anything is allocated
        push(r);
        return false;
      }
      case '}': push(make(Node::dict)); return false;       // EMPTY_DICT
      case ']': push(make(Node::list)); return false;       // EMPTY_LIST
      case ')': push(make(Node::tuple)); return false;      // EMPTY_TUPLE
      case 't': push(make_tuple(pop_mark())); return false;  // TUPLE
      case 0x85: case 0x86: case 0x87: {                     // TUPLE1..3
        const std::size_t n = op - 0x84u;
        if (stack_.size() < base() + n) throw Error("malformed pickle (TUPLE" + std::to_string(n) + " of too few values)");
        std::vector<Ref> items(stack_.end() - std::ptrdiff_t(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(make_tuple(std::move(items)));
        return false;
      }
      case 'l': {  // LIST
        Ref l = make(Node::list);
        auto v = pop_mark();
        append(*l, v);
        push(l);
        return false;
      }
      case 'd': {  // DICT
        Ref d = make(Node::dict);
        auto v = pop_mark();
        set_items(*d, v);
        push(d);
        return false;
      }
      case 'a': {  // APPEND
        std::vector<Ref> v{pop()};
        append(*top(), v);
        return false;
      }
      case 'e': {  // APPENDS
        auto v = pop_mark();
        append(*top(), v);
        return false;
      }
      case 's': {  // SETITEM
        Ref v = pop(), k = pop();
        std::vector<Ref> kv{k, v};
        set_items(*top(), kv);
        return false;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(*top(), kv);
        return false;
      }
      case 'q': memo_put(src_.byte()); return false;  // BINPUT
      case 'r': memo_put(src_.le(4)); return false;   // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); return false; // MEMOIZE
      case 'h': memo_get(src_.byte()); return false;  // BINGET
      case 'j': memo_get(src_.le(4)); return false;   // LONG_BINGET
      case 'c': {                                      // GLOBAL "module\nname\n"
        const std::string mod = src_.line(256), name = src_.line(256);
        check_global(mod, name);
        Ref g = make(Node::global);
        g->s = mod + "." + name;
        push(g);
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        Ref name = pop(), mod = pop();
        if (name->kind != Node::str || mod->kind != Node::str) throw Error("STACK_GLOBAL of non-strings");
        check_global(mod->s, name->s);
        Ref g = make(Node::global);
        g->s = mod->s + "." + name->s;
        push(g);
        return false;
      }
      case 'R': {  // REDUCE
        Ref args = pop(), f = pop();
        push(call(f, args));
        return false;
      }
      case 0x81: {  // NEWOBJ
        Ref args = pop(), cls = pop();
        push(call(cls, args));
        return false;
      }
      case 'b': {  // BUILD: the OrderedDict's attributes (a state_dict's _metadata); nothing else takes state
        Ref state = pop();
        const Ref& obj = top();
        if (obj->kind != Node::dict)
          throw Error(std::string("BUILD (setting the state) of ") + kind_name(*obj) + ", not of an OrderedDict");
        if (state->kind != Node::dict && state->kind != Node::tuple && state->kind != Node::none)
          throw Error(std::string("BUILD with state ") + kind_name(*state));
        add_child(*obj, state);
        obj->base = state;  // kept (the attributes are not tensors; nothing reads them)
        return false;
      }
      case 'Q': {  // BINPERSID
        Ref pid = pop();
        push(persistent(pid));
        return false;
      }
      default:
        throw Error("unsupported pickle opcode (not one torch.save writes)");
    }
  }

  Source& src_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Ref> memo_;
  std::map<std::string, Ref> storages_;
};

inline Ref unpickle(Source& src) { return Unpickler(src).run(); }

// ---- choosing the state_dict -----------------------------------------------------------------------------------

inline bool is_state_dict(const Node& n) {
  if (n.kind != Node::dict || n.items.empty()) return false;
  for (std::size_t k = 0; k < n.items.size(); k += 2)
    if (n.items[k]->kind != Node::str || n.items[k + 1]->kind != Node::tensor) return false;
  return true;
}

inline std::string str_keys(const Node& d) {
  std::string out;
  std::size_t shown = 0;
  for (std::size_t k = 0; k < d.items.size(); k += 2) {
    if (d.items[k]->kind != Node::str) continue;
    if (shown == 8) return out + ", ...";
    out += (shown++ ? ", '" : "'") + d.items[k]->s + "' (" + kind_name(*d.items[k + 1]) + ")";
  }
  return shown ? out : "none with a string name";
}

// The state_dict in `top`: top itself, the value under `key`, or the only value that is one.
inline const Node& select_state_dict(const Node& top, const std::string& key) {
  if (is_state_dict(top)) {
    if (!key.empty())
      throw Error("--pth-key " + key + " given, but the file holds a bare state_dict (its tensors are at the top)");
    return top;
  }
  if (top.kind != Node::dict)
    throw Error(std::string("holds ") + kind_name(top) + ", not a state_dict (a dict of named tensors) or a dict holding one");
  if (!key.empty()) {
    for (std::size_t k = 0; k < top.items.size(); k += 2)
      if (top.items[k]->kind == Node::str && top.items[k]->s == key) {
        if (!is_state_dict(*top.items[k + 1]))
          throw Error("the value under --pth-key '" + key + "' is " + kind_name(*top.items[k + 1]) +
                      ", not a state_dict (a dict of named tensors)");
        return *top.items[k + 1];
      }
    throw Error("has no key '" + key + "' (--pth-key); its keys: " + str_keys(top));
  }
  std::vector<std::size_t> found;
  for (std::size_t k = 0; k < top.items.size(); k += 2)
    if (top.items[k]->kind == Node::str && is_state_dict(*top.items[k + 1])) found.push_back(k);
  if (found.size() == 1) return *top.items[found[0] + 1];
  if (found.empty())
    throw Error("holds a dict with no state_dict in it (no value is a dict of named tensors); its keys: " + str_keys(top));
  std::string names;
  for (auto k : found) names += (names.empty() ? "'" : ", '") + top.items[k]->s + "'";
  throw Error("holds several state_dicts (under " + names + "): choose one with --pth-key");
}

inline bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return true;
  out = a * b;
  return false;
}

// Where a tensor's elements lie in its storage: checked (the last element it reaches is inside the storage),
// then copied out in row-major order. A contiguous view is one memcpy.
struct Entry {
  std::string name;
  const Node* t;
};
inline std::uint64_t checked_numel(const Entry& e) {
  const Node& t = *e.t;
  std::uint64_t n = 1, last = t.offset;
  bool empty = false;
  for (std::size_t d = 0; d < t.size.size(); ++d) {
    if (mul_overflows(n, t.size[d], n)) throw Error("tensor " + e.name + ": its sizes overflow");
    if (t.size[d] == 0) empty = true;
  }
  if (empty) return 0;
  for (std::size_t d = 0; d < t.size.size(); ++d) {
    std::uint64_t reach;
    if (mul_overflows(t.size[d] - 1, t.stride[d], reach) || last + reach < last)
      throw Error("tensor " + e.name + ": its strides overflow");
    last += reach;
  }
  if (last >= t.base->numel)
    throw Error("tensor " + e.name + " (offset " + std::to_string(t.offset) + ", size " + shape_str(t.size) +
                ", stride " + shape_str(t.stride) + ") reaches element " + std::to_string(last) + " of storage " +
                t.base->s + ", which holds " + std::to_string(t.base->numel));
  return n;
}

inline bool is_contiguous(const Node& t) {
  std::uint64_t expect = 1;
  for (std::size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expect) return false;
    expect *= t.size[d];
  }
  return true;
}

inline void gather(const Node& t, const unsigned char* storage, unsigned char* out) {
  const std::size_t es = t.base->elem, nd = t.size.size();
  if (is_contiguous(t)) {
    std::uint64_t n = 1;
    for (auto d : t.size) n *= d;
    std::memcpy(out, storage + t.offset * es, n * es);
    return;
  }
  // Odometer over all but the last dimension; the last one is a strided row.
  std::vector<std::uint64_t> idx(nd, 0);
  const std::uint64_t inner = t.size[nd - 1], istride = t.stride[nd - 1];
  for (;;) {
    std::uint64_t at = t.offset;
    for (std::size_t d = 0; d + 1 < nd; ++d) at += idx[d] * t.stride[d];
    for (std::uint64_t k = 0; k < inner; ++k, out += es) std::memcpy(out, storage + (at + k * istride) * es, es);
    std::ptrdiff_t d = std::ptrdiff_t(nd) - 2;
    for (; d >= 0; --d) {
      if (++idx[std::size_t(d)] < t.size[std::size_t(d)]) break;
      idx[std::size_t(d)] = 0;
    }
    if (d < 0) return;
  }
}

// The selected state_dict's tensors, each checked against its storage. `read_storage(storage node, out)` writes a
// storage's bytes (sizes already checked against its record) to out: straight into the result where one tensor is
// the whole storage (every tensor of a torchvision state_dict), else once into a buffer the views are copied from.
// A checkpoint's other storages (an optimizer's state) are never read.
template <class ReadStorage>
SafeTensors assemble(const std::string& path, const Node& sd, ReadStorage&& read_storage) {
  std::vector<Entry> entries;
  bool all_module = true;
  for (std::size_t k = 0; k < sd.items.size(); k += 2) {
    entries.push_back({sd.items[k]->s, sd.items[k + 1].get()});
    all_module = all_module && entries.back().name.starts_with("module.");
  }
  if (all_module)  // DataParallel / DistributedDataParallel wrap the model as `module`
    for (auto& e : entries) e.name.erase(0, 7);
  std::map<std::string, SafeTensors::Info> infos;
  std::uint64_t total = 0;
  std::vector<std::uint64_t> counts;
  std::map<const Node*, int> uses;
  for (const auto& e : entries) {
    const std::uint64_t n = checked_numel(e);
    std::uint64_t nb;
    if (mul_overflows(n, e.t->base->elem, nb) || total + nb < total) throw Error("tensor " + e.name + ": too large");
    SafeTensors::Info in;
    in.dtype = e.t->base->dtype;
    for (auto s : e.t->size) in.shape.push_back(std::size_t(s));
    in.begin = std::size_t(total);
    in.end = std::size_t(total + nb);
    if (!infos.emplace(e.name, in).second) throw Error("holds tensor " + e.name + " twice");
    counts.push_back(n);
    if (n) ++uses[e.t->base.get()];
    total += nb;
  }
  std::vector<unsigned char> data(total);
  std::map<const Node*, std::vector<unsigned char>> shared;
  for (std::size_t k = 0; k < entries.size(); ++k) {
    if (!counts[k]) continue;
    const Node& t = *entries[k].t;
    unsigned char* dst = data.data() + infos[entries[k].name].begin;
    if (uses[t.base.get()] == 1 && t.offset == 0 && counts[k] == t.base->numel && is_contiguous(t)) {
      read_storage(*t.base, dst);
      continue;
    }
    auto& buf = shared[t.base.get()];
    if (buf.empty()) {
      buf.resize(t.base->numel * t.base->elem);
      read_storage(*t.base, buf.data());
    }
    gather(t, buf.data(), dst);
  }
  return SafeTensors::from_parts(path, std::move(infos), std::move(data));
}

inline void collect_storages(const Node& sd, std::map<std::string, const Node*>& out) {
  for (std::size_t k = 1; k < sd.items.size(); k += 2) out[sd.items[k]->base->s] = sd.items[k]->base.get();
}

// ---- the two containers ----------------------------------------------------------------------------------------

inline constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                                 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

class Zip {
 public:
  explicit Zip(const std::string& path) : z_(unzOpen64(path.c_str())) {
    if (!z_)
      throw Error("not a readable zip archive (truncated, or its central directory is damaged)");
    try {
      list();
    } catch (...) {  // the destructor does not run for a constructor that throws
      unzClose(z_);
      throw;
    }
  }
  ~Zip() { unzClose(z_); }
  Zip(const Zip&) = delete;
  Zip& operator=(const Zip&) = delete;

  struct Rec {
    unz64_file_pos pos;
    std::uint64_t size, packed;
    unsigned long method;
  };

 private:
  void list() {
    int rc = unzGoToFirstFile(z_);
    while (rc == UNZ_OK) {
      char name[1024];
      unz_file_info64 fi;
      if (unzGetCurrentFileInfo64(z_, &fi, name, sizeof name, nullptr, 0, nullptr, 0) != UNZ_OK)
        throw Error("a damaged zip directory entry");
      unz64_file_pos pos;
      unzGetFilePos64(z_, &pos);
      if (entries_.size() > 1000000) throw Error("a zip archive of more than a million records");
      entries_[name] = {pos, fi.uncompressed_size, fi.compressed_size, fi.compression_method};
      rc = unzGoToNextFile(z_);
    }
    if (rc != UNZ_END_OF_LIST_OF_FILE) throw Error("a damaged zip directory (minizip error " + std::to_string(rc) + ")");
  }

 public:
  const std::map<std::string, Rec>& entries() const { return entries_; }
  const Rec* find(const std::string& name) const {
    const auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // Reads record `name` whole into `out` (its size already checked by the caller); the CRC is checked.
  void read(const std::string& name, unsigned char* out, std::uint64_t size) {
    const Rec* r = find(name);
    if (!r) throw Error("has no record " + name);
    if (r->method != 0 && r->size / 1100 > r->packed)
      throw Error("record " + name + " claims " + std::to_string(r->size) + " bytes from " + std::to_string(r->packed));
    if (unzGoToFilePos64(z_, &r->pos) != UNZ_OK || unzOpenCurrentFile(z_) != UNZ_OK)
      throw Error("cannot open record " + name + " (damaged or unsupported compression)");
    std::uint64_t got = 0;
    while (got < size) {
      const unsigned chunk = unsigned(std::min<std::uint64_t>(size - got, 1u << 30));
      const int n = unzReadCurrentFile(z_, out + got, chunk);
      if (n <= 0) {
        unzCloseCurrentFile(z_);
        throw Error("record " + name + " is truncated or damaged (read " + std::to_string(got) + " of " +
                    std::to_string(size) + " bytes)");
      }
      got += std::uint64_t(n);
    }
    unsigned char extra;
    const int more = unzReadCurrentFile(z_, &extra, 1);
    const int close = unzCloseCurrentFile(z_);
    if (more != 0) throw Error("record " + name + " holds more than the " + std::to_string(size) + " bytes expected");
    if (close == UNZ_CRCERROR) throw Error("record " + name + " fails its CRC check (damaged file)");
    if (close != UNZ_OK) throw Error("record " + name + " cannot be read (minizip error " + std::to_string(close) + ")");
  }

 private:
  unzFile z_;
  std::map<std::string, Rec> entries_;
};

inline SafeTensors read_zip(const std::string& path, const std::string& key) {
  Zip zip(path);
  std::string top;
  for (const auto& [name, rec] : zip.entries()) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
      if (!top.empty()) throw Error("a zip archive with two data.pkl records (" + top + "/data.pkl, " + name + ")");
      top = name.substr(0, slash);
    }
  }
  if (top.empty()) throw Error("a zip archive without a <folder>/data.pkl record: not a PyTorch checkpoint");
  if (const auto* bo = zip.find(top + "/byteorder")) {
    if (bo->size > 16) throw Error("record " + top + "/byteorder is " + std::to_string(bo->size) + " bytes");
    std::string order(bo->size, '\0');
    zip.read(top + "/byteorder", reinterpret_cast<unsigned char*>(order.data()), bo->size);
    if (order != "little") throw Error("written on a '" + order + "'-endian machine; hw1 reads little-endian files only");
  }
  const auto* pk = zip.find(top + "/data.pkl");
  if (pk->size > (std::uint64_t(1) << 30)) throw Error("data.pkl is " + std::to_string(pk->size) + " bytes (at most 1 GiB)");
  std::string pickle(pk->size, '\0');
  zip.read(top + "/data.pkl", reinterpret_cast<unsigned char*>(pickle.data()), pk->size);
  std::istringstream in(pickle);
  Source src(in, pickle.size());
  const Ref obj = unpickle(src);
  const Node& sd = select_state_dict(*obj, key);
  std::map<std::string, const Node*> needed;
  collect_storages(sd, needed);
  for (const auto& [k, s] : needed) {
    const std::string rec = top + "/data/" + k;
    const auto* r = zip.find(rec);
    if (!r) throw Error("has no record " + rec + " (storage " + k + " of the state_dict)");
    std::uint64_t nb = 0;
    const bool too_big = mul_overflows(s->numel, s->elem, nb);
    if (too_big || nb != r->size)
      throw Error("record " + rec + " holds " + std::to_string(r->size) + " bytes, the pickle says " +
                  std::to_string(s->numel) + " " + s->dtype + " elements (" +
                  (too_big ? std::string("more than 2^64") : std::to_string(nb)) + " bytes)");
  }
  return assemble(path, sd, [&](const Node& s, unsigned char* out) { zip.read(top + "/data/" + s.s, out, s.numel * s.elem); });
}

inline SafeTensors read_legacy(const std::string& path, const std::string& key, std::uint64_t file_size) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(std::string("cannot open: ") + std::strerror(errno));
  std::uint64_t used = 0;
  auto next = [&]() {
    Source src(f, file_size - used);
    Ref r = unpickle(src);
    used += src.pos();
    return r;
  };
  next();  // the magic number (checked by the caller)
  const Ref version = next();
  if (version->kind != Node::integer || version->i != 1001)
    throw Error("legacy format of protocol version " +
                (version->kind == Node::integer ? std::to_string(version->i) : std::string("?")) + ", hw1 reads 1001");
  const Ref info = next();
  bool little = false;
  if (info->kind == Node::dict)
    for (std::size_t k = 0; k < info->items.size(); k += 2)
      if (info->items[k]->kind == Node::str && info->items[k]->s == "little_endian")
        little = info->items[k + 1]->kind == Node::boolean && info->items[k + 1]->i == 1;
  if (!little) throw Error("written on a big-endian machine (sys_info little_endian is not True); hw1 reads little-endian files only");
  const Ref obj = next();
  const Ref keys = next();
  if (keys->kind != Node::list) throw Error("legacy format without its list of storage keys");
  const Node& sd = select_state_dict(*obj, key);
  std::map<std::string, const Node*> needed;
  collect_storages(sd, needed);
  // Every storage key the object pickle named, with its type: the records follow in the key list's order.
  std::map<std::string, std::uint64_t> at;  // where each storage's bytes begin
  std::map<std::string, const Node*> all;
  std::set<std::string> listed;
  std::vector<const Node*> stack{obj.get()};
  std::set<const Node*> seen;
  while (!stack.empty()) {  // the storages anywhere in the object (an optimizer's too: their records are skipped)
    const Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    if (n->kind == Node::tensor) all[n->base->s] = n->base.get();
    for (const auto& c : n->items) stack.push_back(c.get());
    if (n->kind == Node::dict && n->base) stack.push_back(n->base.get());
  }
  for (const auto& k : keys->items) {
    if (k->kind != Node::str) throw Error("a storage key that is not a string in the key list");
    const auto it = all.find(k->s);
    if (it == all.end()) throw Error("storage " + k->s + " is listed but no tensor uses it");
    if (!listed.insert(k->s).second) throw Error("storage " + k->s + " is listed twice");
    const Node& s = *it->second;
    unsigned char cnt[8];
    if (file_size - used < 8) throw Error("truncated file (storage " + k->s + " is missing)");
    f.read(reinterpret_cast<char*>(cnt), 8);
    used += 8;
    std::uint64_t n = 0;
    for (int b = 7; b >= 0; --b) n = (n << 8) | cnt[b];
    if (n != s.numel)
      throw Error("storage " + k->s + " holds " + std::to_string(n) + " elements, the pickle says " + std::to_string(s.numel));
    std::uint64_t nb;
    if (mul_overflows(n, s.elem, nb) || nb > file_size - used)
      throw Error("truncated file (storage " + k->s + " needs " + std::to_string(n) + " x " + std::to_string(s.elem) +
                  " bytes, " + std::to_string(file_size - used) + " are left)");
    at[k->s] = used;
    f.seekg(std::streamoff(nb), std::ios::cur);
    used += nb;
  }
  for (const auto& [k, s] : needed)
    if (!at.count(k)) throw Error("storage " + k + " of the state_dict is not in the file's key list");
  return assemble(path, sd, [&](const Node& s, unsigned char* out) {
    const std::uint64_t nb = s.numel * s.elem;
    f.seekg(std::streamoff(at.at(s.s)));
    f.read(reinterpret_cast<char*>(out), std::streamsize(nb));
    if (std::uint64_t(f.gcount()) != nb) throw Error("read error in storage " + s.s);
  });
}

}  // namespace pth_detail

enum class WeightsFormat { safetensors, pth_zip, pth_legacy, unknown };

// By content: a zip archive, the legacy magic, or a safetensors header length (anything else is unknown).
inline WeightsFormat weights_format(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char b[15] = {};
  f.read(reinterpret_cast<char*>(b), 15);
  const auto n = f.gcount();
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return WeightsFormat::pth_zip;
  if (n >= 15 && std::memcmp(b, pth_detail::kLegacyMagic, 15) == 0) return WeightsFormat::pth_legacy;
  if (n >= 9 && b[8] == '{') return WeightsFormat::safetensors;
  return WeightsFormat::unknown;
}

// Reads a torch.save file's state_dict (a bare one, the one under `key`, or the only one in a dict) as named
// tensors. Every problem is one hw1::Error line naming the file.
inline SafeTensors read_pth(const std::string& path, const std::string& key = "") {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": cannot open: no such file");
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, expected a .pth file");
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot open: " + ec.message());
  try {
    pth_detail::NodeArena arena;
    switch (weights_format(path)) {
      case WeightsFormat::pth_zip: return pth_detail::read_zip(path, key);
      case WeightsFormat::pth_legacy: return pth_detail::read_legacy(path, key, size);
      default:
        throw Error("not a PyTorch checkpoint (neither torch.save's zip archive nor its legacy format)");
    }
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

// Any weights file hw1 reads: a .pth / .pt (by its content; by its name when the content is neither format) or
// safetensors. `pth_key` picks the state_dict inside a .pth checkpoint dict (--pth-key).
inline SafeTensors read_weights(const std::string& path, const std::string& pth_key = "") {
  const WeightsFormat wf = weights_format(path);
  const std::string ext = std::filesystem::path(path).extension().string();
  if (wf == WeightsFormat::pth_zip || wf == WeightsFormat::pth_legacy ||
      (wf == WeightsFormat::unknown && (ext == ".pth" || ext == ".pt" || ext == ".bin" || ext == ".ckpt" || ext == ".tar")))
    return read_pth(path, pth_key);
  if (!pth_key.empty()) throw Error(path + ": --pth-key " + pth_key + " given, but this is not a .pth file");
  return SafeTensors::read(path);
}

}  // namespace hw1
