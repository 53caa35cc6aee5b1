// EXPECT-ERROR: no member \(or more than one\) of this name
// A member looked up by a name the member list does not have is a compile error, not a run-time surprise.
#include <hw1/models.hpp>

int main() {
  hw1::ResNet50<10> net;
  net.net.get<"fc8">();
  return 0;
}
