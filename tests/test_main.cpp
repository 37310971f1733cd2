// The doctest entry point; every tests/test_*.cpp file adds its TEST_CASEs to this binary.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
