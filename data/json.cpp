// json.cpp: the JSON value, its recursive-descent parser and its writer (see json.h).
//
// Grammar (RFC 8259, section 2-7), one function per rule:
//     value  = object / array / string / number / "true" / "false" / "null"
//     object = "{" [ string ":" value *( "," string ":" value ) ] "}"
//     array  = "[" [ value *( "," value ) ] "]"
//     number = [ "-" ] ( "0" / [1-9] *digit ) [ "." 1*digit ] [ ( "e" / "E" ) [ "+" / "-" ] 1*digit
//     ] string = '"' *( unescaped byte >= 0x20 except '"' and '\' / escape ) '"'
// with optional whitespace (space, tab, LF, CR) around every token.
#include "data/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

#include "data/atomic_file.h"

namespace ssm {

// ---- construction --------------------------------------------------------------------------

Json::Json(int64_t value)
    : type_(Type::Number), number_(static_cast<double>(value)), has_int_(true), integer_(value) {}

Json::Json(uint64_t value) : type_(Type::Number), number_(static_cast<double>(value)) {
  if (value <= static_cast<uint64_t>(INT64_MAX)) {
    has_int_ = true;
    integer_ = static_cast<int64_t>(value);
  }
}

Json::Json(Object members) : type_(Type::Object) {
  std::unordered_set<std::string> keys;
  for (const auto& member : members)
    if (!keys.insert(member.first).second)
      throw std::invalid_argument("Json: duplicate key '" + member.first + "' in object");
  object_ = std::move(members);
}

// ---- parser --------------------------------------------------------------------------------

// A short, printable description of the byte at `pos` for "found ..." in messages.
static std::string describe_byte(const std::string& text, size_t pos) {
  if (pos >= text.size()) return "end of input";
  const unsigned char c = static_cast<unsigned char>(text[pos]);
  if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  static const char* hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
}

// True when a number literal whose value is out of double range is tiny (it underflows to 0)
// rather than huge. The decimal exponent of the first significant digit decides:
//     literal d1 d2 ... . f1 f2 ... e E, first non-zero digit at position p of the digit string
//     (integer digits then fraction digits) -> |value| ~ 10^(n_integer_digits - 1 - p + E).
static bool literal_underflows(const std::string& literal) {
  size_t n_integer_digits = 0, digit_index = 0, first_nonzero = std::string::npos;
  bool in_fraction = false;
  size_t i = literal[0] == '-' ? 1 : 0;
  for (; i < literal.size() && literal[i] != 'e' && literal[i] != 'E'; ++i) {
    if (literal[i] == '.') {
      in_fraction = true;
      continue;
    }
    if (!in_fraction) ++n_integer_digits;
    if (literal[i] != '0' && first_nonzero == std::string::npos) first_nonzero = digit_index;
    ++digit_index;
  }
  // The exponent saturates: any |E| beyond 10^9 is as good as infinite here.
  int64_t exponent = 0;
  if (i < literal.size()) {
    ++i;
    bool negative = false;
    if (literal[i] == '+' || literal[i] == '-') negative = literal[i++] == '-';
    for (; i < literal.size(); ++i)
      if (exponent < 1000000000) exponent = exponent * 10 + (literal[i] - '0');
    if (negative) exponent = -exponent;
  }
  const int64_t magnitude =
      static_cast<int64_t>(n_integer_digits) - 1 - static_cast<int64_t>(first_nonzero) + exponent;
  return magnitude < 0;
}

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& name) : text_(text), name_(name) {}

  Json parse_document() {
    skip_whitespace();
    Json value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("expected end of input after the value");
    return value;
  }

 private:
  const std::string& text_;
  const std::string& name_;
  size_t pos_ = 0;
  std::string path_; // location of the value being parsed: "", "lora", "lora.modules[2]"

  [[noreturn]] void fail(const std::string& expected) const {
    throw std::invalid_argument(name_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " +
                                expected + ", found " + describe_byte(text_, pos_));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  // The next byte, or '\0' at the end (no token starts with '\0', so it never matches).
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                         text_[pos_] == '\r'))
      ++pos_;
  }

  void expect(char c, const char* what) {
    if (peek() != c) fail(what);
    ++pos_;
  }

  std::string where() const { return path_.empty() ? name_ : name_ + ": " + path_; }

  Json parse_value(int depth) {
    if (at_end()) fail("expected a value");
    switch (text_[pos_]) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Json(parse_string());
      case 't': parse_literal("true"); return Json(true);
      case 'f': parse_literal("false"); return Json(false);
      case 'n': parse_literal("null"); return Json();
      default:
        if (text_[pos_] == '-' || (text_[pos_] >= '0' && text_[pos_] <= '9')) return parse_number();
        fail("expected a value (object, array, string, number, true, false or null)");
    }
  }

  void parse_literal(const char* word) {
    const size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) != 0) fail(std::string("expected '") + word + "'");
    pos_ += n;
  }

  void check_depth(int depth) const {
    if (depth > kJsonMaxDepth)
      fail("nesting deeper than " + std::to_string(kJsonMaxDepth) + " levels is not accepted");
  }

  Json parse_array(int depth) {
    check_depth(depth);
    Json result = Json::array();
    result.where_ = where();
    ++pos_; // '['
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return result;
    }
    const size_t path_length = path_.size();
    while (true) {
      path_ += "[" + std::to_string(result.array_.size()) + "]";
      result.array_.push_back(parse_value(depth));
      path_.resize(path_length);
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        skip_whitespace();
        continue;
      }
      expect(']', "expected ',' or ']' in array");
      return result;
    }
  }

  Json parse_object(int depth) {
    check_depth(depth);
    Json result = Json::object();
    result.where_ = where();
    ++pos_; // '{'
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return result;
    }
    std::unordered_set<std::string> keys;
    const size_t path_length = path_.size();
    while (true) {
      if (peek() != '"') fail("expected a string key in object");
      const size_t key_pos = pos_;
      std::string key = parse_string();
      if (!keys.insert(key).second) {
        pos_ = key_pos;
        fail("expected unique keys in object, '" + key + "' appears twice (duplicate key)");
      }
      skip_whitespace();
      expect(':', "expected ':' after object key");
      skip_whitespace();
      path_ += (path_.empty() ? "" : ".") + key;
      Json value = parse_value(depth);
      path_.resize(path_length);
      result.object_.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        skip_whitespace();
        continue;
      }
      expect('}', "expected ',' or '}' in object");
      return result;
    }
  }

  Json parse_number() {
    const size_t start = pos_;
    bool integral = true;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') fail("expected no leading zeros in a number");
    } else if (peek() >= '1' && peek() <= '9') {
      skip_digits();
    } else {
      fail("expected a digit");
    }
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit after '.'");
      skip_digits();
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a digit in the exponent");
      skip_digits();
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    Json result;
    result.type_ = Json::Type::Number;
    const auto parsed = std::from_chars(first, last, result.number_);
    if (parsed.ec == std::errc::result_out_of_range) {
      const std::string literal(first, last);
      if (!literal_underflows(literal)) {
        pos_ = start;
        fail("expected a number within double range (about 1.8e308), not " + literal);
      }
      result.number_ = literal[0] == '-' ? -0.0 : 0.0;
    }
    if (integral) {
      const auto exact = std::from_chars(first, last, result.integer_);
      result.has_int_ = exact.ec == std::errc() && exact.ptr == last;
    }
    return result;
  }

  void skip_digits() {
    while (!at_end() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
  }

  uint32_t parse_hex4() {
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        fail("expected 4 hex digits after \\u");
      value = value * 16 + digit;
      ++pos_;
    }
    return value;
  }

  // UTF-8 (RFC 3629): 1 byte below 0x80, 2 below 0x800, 3 below 0x10000, else 4.
  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // \uXXXX, with a UTF-16 surrogate pair \uD8xx\uDCxx joined into one code point:
  //     cp = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
  uint32_t parse_unicode_escape() {
    const size_t escape_pos = pos_ - 2;
    const uint32_t unit = parse_hex4();
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      pos_ = escape_pos;
      fail("expected a high surrogate before a low one, not a lone \\u escape of a low surrogate");
    }
    if (unit < 0xd800 || unit > 0xdbff) return unit;
    if (text_.compare(pos_, 2, "\\u") != 0)
      fail("expected a \\u low surrogate after the high surrogate");
    pos_ += 2;
    const uint32_t low = parse_hex4();
    if (low < 0xdc00 || low > 0xdfff) {
      pos_ -= 6;
      fail("expected a low surrogate (\\uDC00-\\uDFFF) after the high surrogate");
    }
    return 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
  }

  std::string parse_string() {
    ++pos_; // opening quote
    std::string out;
    while (true) {
      if (at_end()) fail("expected '\"' to close the string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("expected no raw control characters in a string (escape them)");
      ++pos_;
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      const char e = peek();
      if (at_end()) fail("expected an escape character after '\\'");
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(out, parse_unicode_escape()); break;
        default: --pos_; fail("expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u after '\\'");
      }
    }
  }
};

Json Json::parse(const std::string& text, const std::string& name) {
  return JsonParser(text, name).parse_document();
}

// ---- writer --------------------------------------------------------------------------------

static void append_escaped(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// Integers (exact int64, or integral doubles below 2^53 where every integer is exact) print
// as digits; other doubles in the shortest form that reads back to the same double
// (std::to_chars without a precision guarantees that).
static void append_number(std::string& out, double number, bool has_int, int64_t integer) {
  if (has_int) {
    out += std::to_string(integer);
    return;
  }
  if (!std::isfinite(number))
    throw std::invalid_argument("Json::dump: " + std::to_string(number) +
                                " has no JSON representation (NaN and infinity are not JSON)");
  if (number == std::trunc(number) && std::fabs(number) < 9007199254740992.0) {
    out += std::to_string(static_cast<int64_t>(number));
    return;
  }
  char buffer[64];
  const auto printed = std::to_chars(buffer, buffer + sizeof buffer, number);
  out.append(buffer, printed.ptr);
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  const bool pretty = indent >= 0;
  auto newline = [&](int level) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  };
  switch (type_) {
    case Type::Null: out += "null"; return;
    case Type::Bool: out += bool_ ? "true" : "false"; return;
    case Type::Number: append_number(out, number_, has_int_, integer_); return;
    case Type::String: append_escaped(out, string_); return;
    case Type::Array:
      out += '[';
      for (size_t i = 0; i < array_.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        array_[i].dump_to(out, indent, depth + 1);
      }
      if (!array_.empty()) newline(depth);
      out += ']';
      return;
    case Type::Object:
      out += '{';
      for (size_t i = 0; i < object_.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        append_escaped(out, object_[i].first);
        out += pretty ? ": " : ":";
        object_[i].second.dump_to(out, indent, depth + 1);
      }
      if (!object_.empty()) newline(depth);
      out += '}';
      return;
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// ---- type checks and access ----------------------------------------------------------------

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null: return "null";
    case Type::Bool: return "bool";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

bool Json::is_integer() const {
  if (type_ != Type::Number) return false;
  // Beyond 2^53 a double is an integer but may not be the integer that was written.
  return has_int_ || (number_ == std::trunc(number_) && std::fabs(number_) <= 9007199254740992.0);
}

// "string \"abc\"", "number 2.5", "array": the found value, short enough for one line.
static std::string describe_value(const Json& v) {
  std::string text = v.type_name();
  if (v.is_bool() || v.is_number() || v.is_string()) {
    std::string shown =
        v.is_number() && !std::isfinite(v.as_double()) ? std::to_string(v.as_double()) : v.dump();
    if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
    text += " " + shown;
  }
  return text;
}

void Json::type_error(const char* expected, const std::string& context) const {
  throw std::invalid_argument(context + "expected " + expected + ", found " +
                              describe_value(*this));
}

// "config.json: " for a parsed container, "" for values built in code.
static std::string prefix(const Json& v) { return v.where().empty() ? "" : v.where() + ": "; }

bool Json::as_bool() const {
  if (!is_bool()) type_error("a bool", prefix(*this));
  return bool_;
}

double Json::as_double() const {
  if (!is_number()) type_error("a number", prefix(*this));
  return number_;
}

int64_t Json::as_int() const {
  if (!is_integer()) type_error("an integer", prefix(*this));
  return has_int_ ? integer_ : static_cast<int64_t>(number_);
}

const std::string& Json::as_string() const {
  if (!is_string()) type_error("a string", prefix(*this));
  return string_;
}

const Json::Array& Json::as_array() const {
  if (!is_array()) type_error("an array", prefix(*this));
  return array_;
}

Json::Array& Json::as_array() {
  if (!is_array()) type_error("an array", prefix(*this));
  return array_;
}

const Json::Object& Json::as_object() const {
  if (!is_object()) type_error("an object", prefix(*this));
  return object_;
}

size_t Json::size() const {
  if (is_array()) return array_.size();
  if (is_object()) return object_.size();
  type_error("an array or object", prefix(*this));
}

const Json& Json::at(size_t index) const {
  const Array& values = as_array();
  if (index >= values.size())
    throw std::out_of_range(prefix(*this) + "index " + std::to_string(index) +
                            " is out of range for an array of " + std::to_string(values.size()));
  return values[index];
}

void Json::push_back(Json value) {
  if (is_null()) *this = array();
  as_array().push_back(std::move(value));
}

const Json* Json::find(const std::string& key) const {
  for (const auto& member : as_object())
    if (member.first == key) return &member.second;
  return nullptr;
}

bool Json::contains(const std::string& key) const { return find(key) != nullptr; }

const Json& Json::at(const std::string& key) const {
  const Json* value = find(key);
  if (!value) throw std::out_of_range(prefix(*this) + "missing key '" + key + "'");
  return *value;
}

void Json::set(const std::string& key, Json value) {
  if (is_null()) *this = object();
  if (!is_object()) type_error("an object", prefix(*this));
  for (auto& member : object_)
    if (member.first == key) {
      member.second = std::move(value);
      return;
    }
  object_.emplace_back(key, std::move(value));
}

const Json& Json::member(const std::string& key, const char* expected,
                         bool (Json::*has_type)() const) const {
  const Json& value = at(key);
  if (!(value.*has_type)()) value.type_error(expected, prefix(*this) + "key '" + key + "': ");
  return value;
}

bool Json::get_bool(const std::string& key) const {
  return member(key, "a bool", &Json::is_bool).bool_;
}
double Json::get_double(const std::string& key) const {
  return member(key, "a number", &Json::is_number).number_;
}
int64_t Json::get_int(const std::string& key) const {
  return member(key, "an integer", &Json::is_integer).as_int();
}
const std::string& Json::get_string(const std::string& key) const {
  return member(key, "a string", &Json::is_string).string_;
}

// Absent or null keys take the fallback; present ones go through the checked getter.
static bool absent(const Json& object, const std::string& key) {
  const Json* value = object.find(key);
  return !value || value->is_null();
}

bool Json::get_bool(const std::string& key, bool fallback) const {
  return absent(*this, key) ? fallback : get_bool(key);
}
double Json::get_double(const std::string& key, double fallback) const {
  return absent(*this, key) ? fallback : get_double(key);
}
int64_t Json::get_int(const std::string& key, int64_t fallback) const {
  return absent(*this, key) ? fallback : get_int(key);
}
std::string Json::get_string(const std::string& key, const std::string& fallback) const {
  return absent(*this, key) ? fallback : get_string(key);
}

bool Json::operator==(const Json& other) const {
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::Null: return true;
    case Type::Bool: return bool_ == other.bool_;
    case Type::Number:
      if (has_int_ && other.has_int_) return integer_ == other.integer_;
      return number_ == other.number_;
    case Type::String: return string_ == other.string_;
    case Type::Array: return array_ == other.array_;
    case Type::Object: return object_ == other.object_;
  }
  return false;
}

// ---- files ---------------------------------------------------------------------------------

Json load_json_file(const std::string& path) { return Json::parse(read_file(path), path); }

void save_json_file(const std::string& path, const Json& value, int indent) {
  write_file_atomic(path, value.dump(indent) + "\n");
}

std::vector<Json> parse_json_lines(const std::string& text, const std::string& name) {
  std::vector<Json> values;
  size_t start = 0, line_number = 1;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string::npos)
      values.push_back(Json::parse(line, name + " line " + std::to_string(line_number)));
    start = end + 1;
    ++line_number;
  }
  return values;
}

} // namespace ssm
