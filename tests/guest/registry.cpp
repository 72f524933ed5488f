// The list of tests, in the order `tests=all` runs them.
#include "tests.h"

namespace guest {

namespace {
const TestCase kTests[] = {
    {"serial", test_serial}, {"memory", test_memory}, {"timer", test_timer},
    {"smp", test_smp},       {"cmdline", test_cmdline},
};
}  // namespace

size_t test_count() { return sizeof kTests / sizeof kTests[0]; }
const TestCase& test_at(size_t i) { return kTests[i]; }
const char* test_suffix(size_t) { return nullptr; }
bool test_exists(const char* name) {
  for (const auto& t : kTests) {
    if (strlen(t.name) == strlen(name) && memcmp(t.name, name, strlen(name)) == 0) return true;
  }
  return false;
}

}  // namespace guest
