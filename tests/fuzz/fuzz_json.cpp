// fuzz_json.cpp: libFuzzer target for the JSON parser and writer (build: make fuzz; how to
// run it and the results so far: docs/fuzzing.md).
//
// Every input goes to Json::parse. Rejections (std::invalid_argument) are the expected answer
// to most inputs and are ignored. For an input that parses, the writer must round-trip:
//     parse(dump(v)) == v,  dump(parse(dump(v))) == dump(v),  dump(parse(dump(v, 2))) == dump(v)
// and the typed accessors must answer or throw std::invalid_argument / std::out_of_range.
// A crash, a sanitizer report, a leak, an uncaught exception or a broken round trip is a bug.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "data/json.h"

using ssm::Json;

// Calls every typed getter on each member of an object (and each element of an array),
// descending into containers; only the documented exceptions may come out.
static void exercise_accessors(const Json& value) {
  const auto try_all = [](const Json& parent, const std::string& key) {
    try {
      parent.get_int(key);
    } catch (const std::invalid_argument&) {
    }
    try {
      parent.get_double(key);
    } catch (const std::invalid_argument&) {
    }
    try {
      parent.get_string(key);
    } catch (const std::invalid_argument&) {
    }
    try {
      parent.get_bool(key, false);
    } catch (const std::invalid_argument&) {
    }
    try {
      parent.at(key + "?");
    } catch (const std::out_of_range&) {
    }
  };
  if (value.is_object()) {
    for (const auto& [key, member] : value.as_object()) {
      try_all(value, key);
      exercise_accessors(member);
    }
  } else if (value.is_array()) {
    for (const Json& element : value.as_array()) {
      try {
        element.as_int();
      } catch (const std::invalid_argument&) {
      }
      exercise_accessors(element);
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  Json value;
  try {
    value = Json::parse(text, "fuzz");
  } catch (const std::invalid_argument&) {
    return 0;
  }
  const std::string compact = value.dump();
  const Json again = Json::parse(compact, "fuzz: compact");
  if (!(again == value) || again.dump() != compact) __builtin_trap();
  if (Json::parse(value.dump(2), "fuzz: pretty").dump() != compact) __builtin_trap();
  exercise_accessors(value);
  return 0;
}
