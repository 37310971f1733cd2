// json.h: a JSON value, a strict RFC 8259 parser and a writer.
//
// Used for safetensors headers, Hugging Face config.json / adapter_config.json files,
// checkpoint metadata and metrics JSONL logs, so the API aims at reading config keys with
// clear errors:
//
//     Json config = load_json_file("config.json");
//     int64_t d_model = config.get_int("hidden_size");
//       // throws "config.json: missing key 'hidden_size'"
//       // or     "config.json: key 'hidden_size': expected an integer, found string \"32\""
//
// Values: null, bool, number, string, array, object. Objects keep their keys in insertion
// (file) order. Numbers are doubles; a number written as an integer literal that fits in
// int64 also keeps its exact integer value, so 64-bit seeds and counters survive a round
// trip. as_int() accepts a number only when it is exactly an integer.
//
// Parser, strict RFC 8259: exactly one value, surrounded by optional whitespace; no leading
// zeros, no '+' sign, no trailing commas, no comments, no NaN/Infinity, no raw control
// characters (< 0x20) inside strings; \uXXXX escapes (surrogate pairs joined) become UTF-8;
// other bytes, including invalid UTF-8, pass through unchanged. Two choices beyond the RFC:
// duplicate keys in one object are an error (RFC: names "SHOULD be unique"), and nesting
// deeper than kJsonMaxDepth is an error (keeps the recursive parser off the end of the
// stack). Numbers too large for a double are an error; numbers too small become 0.
// Errors name the byte offset and what was expected:
//     "adapter_config.json: invalid JSON at byte 41: expected ',' or '}' in object, found 'x'"
//
// Writer: dump() is compact, dump(2) pretty-prints with 2-space indents. Integers print
// without exponent; other doubles print with the fewest digits (up to 17) that parse back
// to the same double. NaN and infinity have no JSON form and throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ssm {

constexpr int kJsonMaxDepth = 256;

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>; // insertion order

  Json() = default; // null
  Json(std::nullptr_t) {}
  Json(bool value) : type_(Type::Bool), bool_(value) {}
  Json(double value) : type_(Type::Number), number_(value) {}
  Json(int value) : Json(static_cast<int64_t>(value)) {}
  Json(int64_t value);
  Json(uint64_t value); // exact up to INT64_MAX, the nearest double beyond
  Json(const char* value) : type_(Type::String), string_(value) {}
  Json(std::string value) : type_(Type::String), string_(std::move(value)) {}
  Json(Array values) : type_(Type::Array), array_(std::move(values)) {}
  // Throws if two members share a key.
  Json(Object members);

  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  // ---- parsing and writing ---------------------------------------------------------------
  // `name` (a file name, usually) starts every error message and every later accessor error.
  static Json parse(const std::string& text, const std::string& name = "json");
  // indent < 0: one line, no spaces. indent >= 0: one member per line, nested by `indent`.
  std::string dump(int indent = -1) const;

  // ---- type ------------------------------------------------------------------------------
  Type type() const { return type_; }
  const char* type_name() const; // "null", "bool", "number", "string", "array", "object"
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_integer() const; // a number that is exactly an int64
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // ---- scalar access: each throws std::invalid_argument naming the found type ------------
  bool as_bool() const;
  double as_double() const;
  int64_t as_int() const; // only when is_integer()
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;

  // ---- arrays and objects ----------------------------------------------------------------
  size_t size() const; // elements of an array, members of an object
  const Json& at(size_t index) const;
  void push_back(Json value);

  bool contains(const std::string& key) const;
  const Json* find(const std::string& key) const; // nullptr when absent
  const Json& at(const std::string& key) const;   // std::out_of_range when absent
  // Replaces the value of an existing key in place, or appends a new member. A null value
  // becomes an empty object first.
  void set(const std::string& key, Json value);

  // Typed member access: at(key) plus the type check, with the key in the error message.
  bool get_bool(const std::string& key) const;
  double get_double(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  // Same, returning `fallback` when the key is absent or null (HF configs write null for
  // "use the default").
  bool get_bool(const std::string& key, bool fallback) const;
  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

  // Where this value came from, for messages: "config.json", "config.json: lora.modules[2]".
  // Set by the parser on arrays and objects; empty for scalars and for values built in code.
  const std::string& where() const { return where_; }

  bool operator==(const Json& other) const; // numbers compare as doubles
  bool operator!=(const Json& other) const { return !(*this == other); }

 private:
  friend class JsonParser;

  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  bool has_int_ = false; // integer_ holds the exact value (number_ is its nearest double)
  int64_t integer_ = 0;
  std::string string_;
  Array array_;
  Object object_;
  std::string where_;

  [[noreturn]] void type_error(const char* expected, const std::string& context) const;
  // at(key), checked with `has_type`; the error names the key and `expected`.
  const Json& member(const std::string& key, const char* expected,
                     bool (Json::*has_type)() const) const;
  void dump_to(std::string& out, int indent, int depth) const;
};

// Reads and parses a whole file; errors start with the path.
Json load_json_file(const std::string& path);
// Writes dump(indent) plus a newline through write_file_atomic.
void save_json_file(const std::string& path, const Json& value, int indent = 2);
// One value per non-blank line (JSONL, as the metrics logs); errors name the line number.
std::vector<Json> parse_json_lines(const std::string& text, const std::string& name = "jsonl");

} // namespace ssm
