// hf_check.cpp: compares this project's Mamba with Hugging Face transformers on a checkpoint.
//
//   build/hf_check MODEL_DIR REFERENCE.safetensors [--device cpu|cuda] [--dtype float64|float32]
//                  [--adapter PEFT_ADAPTER_DIR]
//
// MODEL_DIR is a MambaForCausalLM directory (config.json + model.safetensors) and the
// reference file holds what transformers computed for it (format: ../shared/fixtures/README.md).
// Prints one line per compared tensor and ends with "hf_check: OK" (exit 0) or
// "hf_check: FAIL" (exit 1); a bad argument or file exits 2. The tolerances, and why, are in
// mamba/hf_check.h.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "mamba/hf_check.h"
#include "train/flags.h"

using namespace ssm;

int main(int argc, char** argv) {
  std::string device = "cpu", dtype = "float64", adapter;
  train::Flags flags("hf_check MODEL_DIR REFERENCE.safetensors",
                     "Checks logits, hidden states, loss, every parameter gradient and greedy "
                     "decoding against a transformers reference.");
  flags.add("device", &device, "cpu or cuda");
  flags.add("dtype", &dtype, "float64 or float32");
  flags.add("adapter", &adapter,
            "a peft LoRA adapter directory to apply (the base frozen; the adapter's gradients "
            "are compared)");
  // Positional arguments are the ones that do not start with "--"; the rest go to Flags.
  std::vector<const char*> flag_args = {argv[0]};
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) == 0 || a == "-h") {
      flag_args.push_back(argv[i]);
      if (a.find('=') == std::string::npos &&
          (a == "--device" || a == "--dtype" || a == "--adapter") && i + 1 < argc)
        flag_args.push_back(argv[++i]);
    } else {
      positional.push_back(a);
    }
  }
  try {
    if (!flags.parse(static_cast<int>(flag_args.size()), flag_args.data())) return 0;
    if (positional.size() != 2)
      throw std::invalid_argument(
          "expected 2 arguments, MODEL_DIR and REFERENCE.safetensors, got " +
          std::to_string(positional.size()));
    HfCheckOptions options;
    options.adapter_dir = adapter;
    if (dtype == "float64")
      options.dtype = DType::Float64;
    else if (dtype == "float32")
      options.dtype = DType::Float32;
    else
      throw std::invalid_argument("--dtype must be float64 or float32, got \"" + dtype + "\"");
    if (device == "cpu")
      options.device = Device::cpu();
    else if (device == "cuda")
      options.device = Device::cuda(0);
    else
      throw std::invalid_argument("--device must be cpu or cuda, got \"" + device + "\"");
    if (options.device.is_cuda() && !cuda_available())
      throw std::invalid_argument("--device cuda: no CUDA device is available");

    std::printf("hf_check: %s vs %s (%s, %s)\n", positional[0].c_str(), positional[1].c_str(),
                device.c_str(), dtype.c_str());
    const HfCheckResult r = run_hf_check(positional[0], positional[1], options);
    for (const std::string& line : r.lines) std::printf("%s\n", line.c_str());
    std::printf("tolerance: rel_err <= %.0e (max |error| / max |reference|)\n", r.tolerance);
    std::printf("hf_check: %s\n", r.ok ? "OK" : "FAIL");
    return r.ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hf_check: error: %s\n%s", e.what(), flags.usage().c_str());
    return 2;
  }
}
