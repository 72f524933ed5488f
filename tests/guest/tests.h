// The test registry: every test the guest can run, by name.
#pragma once

#include "guest.h"

namespace guest {

size_t test_count();
const TestCase& test_at(size_t i);
const char* test_suffix(size_t i);  // e.g. the virtio face ("legacy"/"modern"), or nullptr
bool test_exists(const char* name);

// Basic platform tests (tests_basic.cpp).
void test_serial(TestResult& r);
void test_memory(TestResult& r);
void test_timer(TestResult& r);
void test_smp(TestResult& r);
void test_cmdline(TestResult& r);

}  // namespace guest
