// Errors are exceptions with a sentence a user can act on.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>
#include <sstream>
#include <cstddef>

namespace hw1 {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A wrong command line (the programs exit with status 2 and print their usage).
struct UsageError : Error {
  using Error::Error;
};

// "[2,3,67,45]"
template <class Shape>
std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << '[';
  bool first = true;
  for (auto d : s) {
    if (!first) o << ',';
    o << d;
    first = false;
  }
  o << ']';
  return o.str();
}

}  // namespace hw1
