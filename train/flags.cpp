#include "train/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace ssm::train {

Flags::Flags(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

void Flags::add_flag(const std::string& name, const std::string& help,
                     const std::string& default_text,
                     std::variant<int64_t*, double*, std::string*, bool*> target) {
  if (find(name)) throw std::logic_error("Flags: --" + name + " defined twice");
  flags_.push_back({name, help, default_text, target});
}

void Flags::add(const std::string& name, int64_t* target, const std::string& help) {
  add_flag(name, help, std::to_string(*target), target);
}

void Flags::add(const std::string& name, double* target, const std::string& help) {
  std::ostringstream s;
  s << *target;
  add_flag(name, help, s.str(), target);
}

void Flags::add(const std::string& name, std::string* target, const std::string& help) {
  add_flag(name, help, target->empty() ? "\"\"" : *target, target);
}

void Flags::add(const std::string& name, bool* target, const std::string& help) {
  add_flag(name, help, *target ? "true" : "false", target);
}

const Flags::Flag* Flags::find(const std::string& name) const {
  for (const Flag& f : flags_)
    if (f.name == name) return &f;
  return nullptr;
}

void Flags::set(const Flag& flag, const std::string& value) const {
  const std::string where = program_ + ": --" + flag.name;
  if (auto* p = std::get_if<int64_t*>(&flag.target)) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno == ERANGE)
      throw std::invalid_argument(where + " expects an integer, got '" + value + "'");
    **p = v;
  } else if (auto* d = std::get_if<double*>(&flag.target)) {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v))
      throw std::invalid_argument(where + " expects a number, got '" + value + "'");
    **d = v;
  } else if (auto* s = std::get_if<std::string*>(&flag.target)) {
    **s = value;
  } else if (auto* b = std::get_if<bool*>(&flag.target)) {
    if (value == "true" || value == "1")
      **b = true;
    else if (value == "false" || value == "0")
      **b = false;
    else
      throw std::invalid_argument(where + " expects true or false, got '" + value + "'");
  }
}

bool Flags::parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage();
      return false;
    }
    if (arg.rfind("--", 0) != 0)
      throw std::invalid_argument(program_ + ": unexpected argument '" + arg +
                                  "' (flags start with --; see --help)");
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Flag* flag = find(name);
    if (!flag && !has_value && name.rfind("no-", 0) == 0) {
      const Flag* negated = find(name.substr(3));
      if (negated && std::holds_alternative<bool*>(negated->target)) {
        *std::get<bool*>(negated->target) = false;
        continue;
      }
    }
    if (!flag) throw std::invalid_argument(program_ + ": unknown flag --" + name + " (see --help)");
    if (!has_value) {
      if (std::holds_alternative<bool*>(flag->target)) {
        *std::get<bool*>(flag->target) = true;
        continue;
      }
      if (i + 1 >= argc) throw std::invalid_argument(program_ + ": --" + name + " needs a value");
      value = argv[++i];
    }
    set(*flag, value);
  }
  return true;
}

std::string Flags::usage() const {
  std::ostringstream s;
  s << "usage: " << program_ << " [flags]\n\n" << description_ << "\n\nflags:\n";
  for (const Flag& f : flags_) {
    const char* type = std::holds_alternative<int64_t*>(f.target)  ? "int"
                       : std::holds_alternative<double*>(f.target) ? "float"
                       : std::holds_alternative<bool*>(f.target)   ? "bool"
                                                                   : "string";
    std::string head = "  --" + f.name + " " + type;
    if (head.size() < 28) head.resize(28, ' ');
    s << head << " " << f.help << " (default: " << f.default_text << ")\n";
  }
  std::string help_head = "  --help";
  help_head.resize(28, ' ');
  s << help_head << " print this message\n";
  return s.str();
}

int run_program(int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

Device parse_device_flag(const std::string& program, const std::string& text) {
  Device dev;
  try {
    dev = parse_device(text);
  } catch (const std::exception& e) {
    throw UsageError(program + ": --device: " + e.what());
  }
  if (dev.is_cuda() && dev.index >= cuda_device_count())
    throw UsageError(program + ": --device " + text + " is not available (" +
                     std::to_string(cuda_device_count()) + " GPUs visible)");
  return dev;
}

} // namespace ssm::train
