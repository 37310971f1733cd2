// test_json.cpp: the JSON parser and writer: values, escapes, numbers, round trips, typed
// access errors, and malformed inputs that must be rejected with a useful message.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "data/json.h"

using namespace ssm;

// The message of the std::invalid_argument that parsing `text` throws ("" when it parses).
static std::string parse_error(const std::string& text) {
  try {
    Json::parse(text, "doc.json");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("json: parses every kind of value") {
  const Json v = Json::parse(
      R"( {"n": null, "t": true, "f": false, "i": 42, "x": -2.5, "s": "hi",
           "a": [1, [2, {}], []], "o": {"k": "v"}} )");
  REQUIRE(v.is_object());
  CHECK(v.size() == 8);
  CHECK(v.at("n").is_null());
  CHECK(v.get_bool("t") == true);
  CHECK(v.get_bool("f") == false);
  CHECK(v.get_int("i") == 42);
  CHECK(v.get_double("x") == -2.5);
  CHECK(v.get_string("s") == "hi");
  const Json& a = v.at("a");
  REQUIRE(a.is_array());
  CHECK(a.size() == 3);
  CHECK(a.at(0).as_int() == 1);
  CHECK(a.at(1).at(0).as_int() == 2);
  CHECK(a.at(1).at(1).is_object());
  CHECK(a.at(1).at(1).size() == 0);
  CHECK(a.at(2).size() == 0);
  CHECK(v.at("o").get_string("k") == "v");
  CHECK(Json::parse("7").as_int() == 7);
  CHECK(Json::parse("\"top\"").as_string() == "top");
}

TEST_CASE("json: objects keep key order") {
  const Json v = Json::parse(R"({"zeta": 1, "alpha": 2, "mid": 3})");
  const auto& members = v.as_object();
  REQUIRE(members.size() == 3);
  CHECK(members[0].first == "zeta");
  CHECK(members[1].first == "alpha");
  CHECK(members[2].first == "mid");
  CHECK(v.dump() == R"({"zeta":1,"alpha":2,"mid":3})");
}

TEST_CASE("json: string escapes, \\u and surrogate pairs become UTF-8") {
  const Json v = Json::parse(R"("q\" b\\ s\/ \b\f\n\r\t")");
  CHECK(v.as_string() == "q\" b\\ s/ \b\f\n\r\t");
  CHECK(Json::parse(R"("\u0041\u00e9\u20AC")").as_string() == "A\xc3\xa9\xe2\x82\xac"); // A é €
  // U+1F600 (grinning face) as the surrogate pair D83D DE00 -> F0 9F 98 80.
  CHECK(Json::parse(R"("\ud83d\ude00")").as_string() == "\xf0\x9f\x98\x80");
  CHECK(Json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
  // Raw UTF-8 and even invalid UTF-8 pass through unchanged.
  CHECK(Json::parse("\"\xc3\xa9\xff\"").as_string() == "\xc3\xa9\xff");
  // The writer escapes quotes, backslashes and control characters, nothing else.
  CHECK(Json(std::string("a\"b\\c\n\x01\xc3\xa9", 9)).dump() ==
        "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
}

TEST_CASE("json: numbers") {
  CHECK(Json::parse("0").as_int() == 0);
  CHECK(Json::parse("-17").as_int() == -17);
  CHECK(Json::parse("1e3").as_double() == 1000);
  CHECK(Json::parse("1E+3").as_int() == 1000); // integral, so as_int accepts it
  CHECK(Json::parse("2.5e-3").as_double() == 0.0025);
  CHECK(Json::parse("-0.125").as_double() == -0.125);
  CHECK(Json::parse("1e-400").as_double() == 0); // underflows to zero
  // int64 literals keep their exact value even beyond 2^53.
  CHECK(Json::parse("9007199254740993").as_int() == 9007199254740993LL);
  CHECK(Json::parse("-9223372036854775808").as_int() == INT64_MIN);
  CHECK(Json::parse("9223372036854775807").dump() == "9223372036854775807");
  // Beyond int64 the literal is only a double: not an exact integer any more.
  const Json big = Json::parse("123456789012345678901234567890");
  CHECK(big.as_double() == doctest::Approx(1.2345678901234568e29));
  CHECK_FALSE(big.is_integer());
  CHECK_THROWS_AS(big.as_int(), std::invalid_argument);
  CHECK_FALSE(Json::parse("2.5").is_integer());
  CHECK_THROWS_WITH(Json::parse("2.5").as_int(), "expected an integer, found number 2.5");
}

TEST_CASE("json: writer prints integers plainly and doubles so they round-trip") {
  CHECK(Json(3.0).dump() == "3");
  CHECK(Json(-1e15).dump() == "-1000000000000000");
  CHECK(Json(int64_t{1} << 62).dump() == "4611686018427387904");
  CHECK(Json(0.1).dump() == "0.1");
  CHECK(Json(1.0 / 3.0).dump() == "0.3333333333333333");
  for (double x : {0.1, 1.0 / 3.0, 6.02214076e23, -1.5e-300, 5e-324, 1.7976931348623157e308,
                   3.141592653589793, 1e21, 123456.789}) {
    INFO(x);
    CHECK(Json::parse(Json(x).dump()).as_double() == x);
  }
  CHECK_THROWS_WITH_AS(Json(std::nan("")).dump(), doctest::Contains("no JSON representation"),
                       std::invalid_argument);
  CHECK_THROWS_AS(Json(INFINITY).dump(), std::invalid_argument);
}

TEST_CASE("json: compact and pretty output, and round trips") {
  Json v = Json::object();
  v.set("name", "mamba");
  v.set("layers", 2);
  v.set("sizes", Json(Json::Array{Json(32), Json(64)}));
  v.set("empty", Json::array());
  v.set("nested", Json(Json::Object{{"ok", Json(true)}, {"none", Json()}}));
  v.set("layers", 3); // replaces in place, keeps the position
  CHECK(
      v.dump() ==
      R"({"name":"mamba","layers":3,"sizes":[32,64],"empty":[],"nested":{"ok":true,"none":null}})");
  CHECK(v.dump(2) ==
        "{\n"
        "  \"name\": \"mamba\",\n"
        "  \"layers\": 3,\n"
        "  \"sizes\": [\n"
        "    32,\n"
        "    64\n"
        "  ],\n"
        "  \"empty\": [],\n"
        "  \"nested\": {\n"
        "    \"ok\": true,\n"
        "    \"none\": null\n"
        "  }\n"
        "}");
  CHECK(Json::parse(v.dump()) == v);
  CHECK(Json::parse(v.dump(2)) == v);
  CHECK(Json::parse(v.dump(4)).dump() == v.dump());
  const std::string text = R"({"a":[1,2.5,-3e-7,"\u00e9\n",true,null,{}],"b":{"c":[]}})";
  CHECK(Json::parse(text).dump() == R"({"a":[1,2.5,-3e-07,"é\n",true,null,{}],"b":{"c":[]}})");
}

TEST_CASE("json: typed access names the source, the key and the found type") {
  const Json config =
      Json::parse(R"({"hidden_size": "32", "lora": {"r": 8.5}, "d": null})", "config.json");
  CHECK_THROWS_WITH_AS(config.get_int("num_layers"), "config.json: missing key 'num_layers'",
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(config.get_int("hidden_size"),
                       "config.json: key 'hidden_size': expected an integer, found string \"32\"",
                       std::invalid_argument);
  CHECK_THROWS_WITH(config.at("lora").get_int("r"),
                    "config.json: lora: key 'r': expected an integer, found number 8.5");
  CHECK_THROWS_WITH(config.at("lora").get_string("missing"),
                    "config.json: lora: missing key 'missing'");
  CHECK_THROWS_WITH(config.get_bool("lora"),
                    "config.json: key 'lora': expected a bool, found object");
  CHECK_THROWS_WITH(config.at("lora").at(0), "config.json: lora: expected an array, found object");
  CHECK(config.contains("lora"));
  CHECK_FALSE(config.contains("r"));
  CHECK(config.find("nope") == nullptr);
  // Fallback getters: absent or null -> fallback; present with the wrong type still throws.
  CHECK(config.get_int("num_layers", 4) == 4);
  CHECK(config.get_double("d", 0.5) == 0.5);
  CHECK(config.get_string("missing", "x") == "x");
  CHECK_THROWS_AS(config.get_int("hidden_size", 4), std::invalid_argument);
  const Json list = Json::parse(R"({"modules": [1, {"a": 1}]})", "adapter_config.json");
  CHECK_THROWS_WITH(list.at("modules").at(1).get_int("b"),
                    "adapter_config.json: modules[1]: missing key 'b'");
  CHECK_THROWS_WITH_AS(list.at("modules").at(5),
                       "adapter_config.json: modules: index 5 is out of range for an array of 2",
                       std::out_of_range);
  CHECK_THROWS_AS(Json::object().at("x"), std::out_of_range);
}

TEST_CASE("json: malformed inputs are rejected with the byte offset and what was expected") {
  struct Case {
    const char* text;
    const char* message_part;
  };
  const Case cases[] = {
      {"", "byte 0: expected a value"},
      {"   ", "byte 3: expected a value"},
      {"{\"a\": 1,}", "byte 8: expected a string key in object, found '}'"},
      {"[1, 2,]", "byte 6: expected a value"},
      {"[1 2]", "byte 3: expected ',' or ']' in array, found '2'"},
      {"{\"a\" 1}", "byte 5: expected ':' after object key"},
      {"{'a': 1}", "expected a string key in object, found '''"},
      {"01", "byte 1: expected no leading zeros"},
      {"-", "byte 1: expected a digit"},
      {"+1", "byte 0: expected a value"},
      {"1.", "byte 2: expected a digit after '.'"},
      {".5", "byte 0: expected a value"},
      {"1e", "byte 2: expected a digit in the exponent"},
      {"1e999", "expected a number within double range"},
      {"NaN", "expected a value"},
      {"tru", "expected 'true'"},
      {"nul", "expected 'null'"},
      {"\"abc", "expected '\"' to close the string"},
      {"\"a\tb\"", "byte 2: expected no raw control characters in a string"},
      {"\"\\x\"", "byte 2: expected one of"},
      {"\"\\u12g4\"", "expected 4 hex digits after \\u"},
      {"\"\\ud83d\"", "expected a \\u low surrogate after the high surrogate"},
      {"\"\\ud83d\\u0041\"", "expected a low surrogate"},
      {"\"\\ude00\"", "lone \\u escape of a low surrogate"},
      {"{\"a\": 1, \"a\": 2}", "byte 9: expected unique keys in object, 'a' appears twice"},
      {"{} {}", "byte 3: expected end of input after the value, found '{'"},
      {"[1] x", "expected end of input"},
      {"[1, /* c */ 2]", "expected a value"},
      {"\x01", "found byte 0x01"},
  };
  for (const Case& c : cases) {
    INFO("input: " << c.text);
    const std::string message = parse_error(c.text);
    CHECK(message.rfind("doc.json: invalid JSON at byte ", 0) == 0);
    CHECK(message.find(c.message_part) != std::string::npos);
    if (message.find(c.message_part) == std::string::npos) MESSAGE("message: " << message);
  }
}

TEST_CASE("json: the nesting depth limit") {
  const std::string ok = std::string(kJsonMaxDepth, '[') + std::string(kJsonMaxDepth, ']');
  CHECK(Json::parse(ok).is_array());
  const std::string deep =
      std::string(kJsonMaxDepth + 1, '[') + std::string(kJsonMaxDepth + 1, ']');
  CHECK(parse_error(deep).find("nesting deeper than 256") != std::string::npos);
  // Far deeper input fails at the limit instead of exhausting the stack.
  CHECK(parse_error(std::string(1000000, '[')).find("nesting deeper") != std::string::npos);
  CHECK(parse_error(std::string(100000, '{')).find("expected a string key") != std::string::npos);
}

TEST_CASE("json: building values in code") {
  Json v;
  v.push_back(1);
  v.push_back("two");
  CHECK(v.dump() == R"([1,"two"])");
  Json o;
  o.set("k", Json(uint64_t{18446744073709551615ull}));
  // Beyond int64 the value is the nearest double, 2^64, printed in its shortest exact form.
  CHECK(o.dump() == R"({"k":18446744073709551616})");
  CHECK_FALSE(o.at("k").is_integer());
  CHECK_THROWS_WITH_AS(Json(Json::Object{{"a", Json(1)}, {"a", Json(2)}}),
                       "Json: duplicate key 'a' in object", std::invalid_argument);
  CHECK_THROWS_AS(Json(3).set("k", 1), std::invalid_argument);
  CHECK(Json(1) == Json(1.0));
  CHECK(Json("a") != Json(1));
}

TEST_CASE("json: JSONL and files") {
  const std::vector<Json> lines =
      parse_json_lines("{\"step\": 1, \"loss\": 2.5}\n\n{\"step\": 2, \"loss\": 2.25}\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].get_double("loss") == 2.25);
  CHECK_THROWS_WITH(parse_json_lines("{}\n{\"a\":}\n", "metrics.jsonl"),
                    doctest::Contains("metrics.jsonl line 2: invalid JSON at byte 5"));

  const std::string path = (std::filesystem::temp_directory_path() /
                            ("test_json_" + std::to_string(::getpid()) + ".json"))
                               .string();
  Json v = Json::object();
  v.set("lr", 0.001);
  save_json_file(path, v);
  CHECK(load_json_file(path) == v);
  std::remove(path.c_str());
  CHECK_THROWS_WITH_AS(load_json_file(path),
                       doctest::Contains((path + ": open for reading failed").c_str()),
                       std::runtime_error);
}
