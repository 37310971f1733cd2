// byte_text.h: bytes to terminal text, for printing what a byte-level model generates.
//
// Printable ASCII, newline and tab pass as they are, complete UTF-8 sequences pass as they
// are, any other byte becomes \xNN. Bytes arrive one at a time (as they are sampled), so an
// unfinished UTF-8 sequence waits for its continuation bytes; a broken one is escaped.
#pragma once

#include <cstdio>
#include <string>

namespace ssm::train {

class ByteText {
 public:
  std::string push(unsigned char byte) {
    std::string out;
    if (!pending_.empty()) {
      if (continues(byte)) {
        pending_ += static_cast<char>(byte);
        if (pending_.size() == length_) out.swap(pending_);
        return out;
      }
      out = flush(); // a broken sequence: escape it, then read `byte` afresh
    }
    if (byte == '\n' || byte == '\t' || (byte >= 0x20 && byte < 0x7f)) {
      out += static_cast<char>(byte);
    } else if (byte >= 0xc2 && byte <= 0xf4) { // a lead byte of a 2-, 3- or 4-byte sequence
      pending_ = std::string(1, static_cast<char>(byte));
      length_ = byte < 0xe0 ? 2 : byte < 0xf0 ? 3 : 4;
    } else {
      out += escape(byte);
    }
    return out;
  }
  // The unfinished sequence, escaped (call at the end of the text).
  std::string flush() {
    std::string out;
    for (char c : pending_) out += escape(static_cast<unsigned char>(c));
    pending_.clear();
    return out;
  }
  static std::string text(const std::string& bytes) {
    ByteText printer;
    std::string out;
    for (char c : bytes) out += printer.push(static_cast<unsigned char>(c));
    return out + printer.flush();
  }

 private:
  static std::string escape(unsigned char byte) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", byte);
    return buf;
  }
  // Whether `byte` may follow pending_. The first continuation byte's range depends on the
  // lead byte (this rules out overlong forms, surrogates and code points above U+10FFFF).
  bool continues(unsigned char byte) const {
    unsigned char lo = 0x80, hi = 0xbf;
    if (pending_.size() == 1) {
      const unsigned char lead = static_cast<unsigned char>(pending_[0]);
      if (lead == 0xe0) lo = 0xa0;
      if (lead == 0xed) hi = 0x9f;
      if (lead == 0xf0) lo = 0x90;
      if (lead == 0xf4) hi = 0x8f;
    }
    return byte >= lo && byte <= hi;
  }
  std::string pending_;
  size_t length_ = 0;
};

} // namespace ssm::train
