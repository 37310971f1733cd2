// hf_check.h: checks this project's Mamba against numbers computed by Hugging Face
// transformers for the same checkpoint (the reference file's format is described in
// ../shared/fixtures/README.md): logits, every hidden state, the causal LM loss, the gradient
// of the loss for every parameter (for every adapter parameter with a LoRA adapter), and greedy
// decoding with the recurrent path.
//
// Each compared tensor gets one line: its name, the max absolute error and that error
// divided by max |reference| (the "relative" error, robust to reference values near zero).
// Tolerance on the relative error: 1e-5 in float64 (the reference logits and loss passed
// through float32, and transformers' pure-PyTorch path computes parts of a float64 model in
// float32: the residual stream (residual_in_fp32), RMSNorm, and A_log, B and the convolution's
// output cast with .float() before the scan; so agreement is about 1e-7, not 1e-15; 1e-5 leaves
// room without hiding a wrong term, which shows up at 1e-2 and above). 1e-4 in float32: float32
// rounding (eps = 1.2e-7) amplified by the sums of the backward over batch, length and channels
// gives about 1e-6 on hf_mamba_tiny; 1e-4 keeps a 100x margin and still catches a wrong term.
// Generated tokens must be identical.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ssm {

struct HfCheckOptions {
  DType dtype = DType::Float64;
  Device device = Device::cpu();
  // A peft LoRA adapter directory (mamba/lora.h) applied to the model, whose base is frozen:
  // then the gradients compared are those of the adapter's parameters, named as peft names
  // them with the adapter "default" (grad.base_model.model.<...>.lora_A.default.weight).
  std::string adapter_dir;
};

struct HfCheckResult {
  bool ok = true;
  std::vector<std::string> lines; // one per compared tensor, then the notes
  double tolerance = 0;           // the relative tolerance that was applied
};

HfCheckResult run_hf_check(const std::string& model_dir, const std::string& reference_path,
                           const HfCheckOptions& options = {});

} // namespace ssm
