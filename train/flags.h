// flags.h: command-line flags for the trainers.
//
// Each flag is bound to a variable that already holds its default; --help prints every flag
// with its type, default and description. Accepted forms: --name value, --name=value, and for
// booleans --name, --name=true|false, --no-name. An unknown flag, a missing value or a value
// that does not parse (e.g. "--steps 1e3x") is an error naming the flag and what was expected.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "tensor/tensor.h"

namespace ssm::train {

class Flags {
 public:
  Flags(std::string program, std::string description);
  void add(const std::string& name, int64_t* target, const std::string& help);
  void add(const std::string& name, double* target, const std::string& help);
  void add(const std::string& name, std::string* target, const std::string& help);
  void add(const std::string& name, bool* target, const std::string& help);

  // Parses argv. Returns false when --help (or -h) was given: the usage has been printed and
  // the program should exit with status 0. Throws std::invalid_argument on a bad flag.
  bool parse(int argc, const char* const* argv);
  std::string usage() const;

 private:
  struct Flag {
    std::string name, help, default_text;
    std::variant<int64_t*, double*, std::string*, bool*> target;
  };
  void add_flag(const std::string& name, const std::string& help, const std::string& default_text,
                std::variant<int64_t*, double*, std::string*, bool*> target);
  void set(const Flag& flag, const std::string& value) const;
  const Flag* find(const std::string& name) const;

  std::string program_, description_;
  std::vector<Flag> flags_;
};

// A bad command line (a flag's value out of range, a missing argument): run_program() exits
// with status 2 for it.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A program's main: calls run(argc, argv) and turns an escaping exception into "error: ..." on
// stderr and an exit status, 2 for a UsageError, 1 for any other failure.
int run_program(int (*run)(int, char**), int argc, char** argv);

// The value of a --device flag ("cpu", "cuda", "cuda:N"), checked against the GPUs present;
// a UsageError naming `program` otherwise.
Device parse_device_flag(const std::string& program, const std::string& text);

} // namespace ssm::train
