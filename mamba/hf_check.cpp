// hf_check.cpp: see hf_check.h.
#include "mamba/hf_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "autograd/functions.h"
#include "data/safetensors.h"
#include "mamba/generate.h"
#include "mamba/hf.h"
#include "mamba/lora.h"
#include "tensor/ops.h"

namespace ssm {

namespace {

std::string format_line(const std::string& name, double abs_err, double rel_err, bool ok) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-48s max_abs_err %.3e  rel_err %.3e  %s", name.c_str(), abs_err,
                rel_err, ok ? "ok" : "FAIL");
  return buf;
}

} // namespace

HfCheckResult run_hf_check(const std::string& model_dir, const std::string& reference_path,
                           const HfCheckOptions& options) {
  HfCheckResult result;
  result.tolerance = options.dtype == DType::Float64 ? 1e-5 : 1e-4;
  std::vector<std::string> notes;
  HfLoadOptions load;
  load.dtype = options.dtype;
  load.device = options.device;
  std::unique_ptr<MambaLM> model = load_hf_mamba(model_dir, load, &notes);
  if (!options.adapter_dir.empty()) {
    const MambaLoraConfig lora = load_peft_adapter(options.adapter_dir, *model);
    model->eval(); // no adapter dropout: peft's reference is computed in eval mode
    std::string targets;
    for (const std::string& t : lora.target_modules) targets += (targets.empty() ? "" : ", ") + t;
    char alpha[32];
    std::snprintf(alpha, sizeof alpha, "%g", lora.lora_alpha);
    notes.push_back("adapter " + options.adapter_dir + ": r " + std::to_string(lora.r) +
                    ", alpha " + alpha + ", targets " + targets + "; base frozen");
  }
  const SafetensorsFile ref = load_safetensors(reference_path, LoadDType::Native);

  // Compares `got` with the reference tensor `name`, adding one line.
  auto compare = [&](const std::string& name, const Tensor& got) {
    const SafetensorsTensor* r = ref.find(name);
    if (!r) {
      result.lines.push_back(name + ": not in " + reference_path + "  FAIL");
      result.ok = false;
      return;
    }
    const Tensor want = r->tensor.to(DType::Float64);
    const Tensor have = got.to(Device::cpu()).to(DType::Float64).contiguous();
    if (have.numel() != want.numel()) {
      result.lines.push_back(name + ": shape " + shape_str(have.shape()) + ", reference " +
                             shape_str(want.shape()) + "  FAIL");
      result.ok = false;
      return;
    }
    const std::vector<double> a = have.to_doubles(), b = want.to_doubles();
    double abs_err = 0, ref_max = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double e = std::fabs(a[i] - b[i]);
      abs_err = std::isnan(e) ? NAN : std::max(abs_err, e);
      ref_max = std::max(ref_max, std::fabs(b[i]));
    }
    const double rel_err = abs_err / std::max(ref_max, 1e-300);
    const bool ok = rel_err <= result.tolerance;
    result.ok = result.ok && ok;
    result.lines.push_back(format_line(name, abs_err, rel_err, ok));
  };

  // ---- forward, loss, backward -----------------------------------------------------------
  const Tensor input_ids = ref.get("input_ids").to(model->device()); // (b, l) int64
  if (input_ids.dtype() != DType::Int64 || input_ids.dim() != 2)
    throw std::invalid_argument(reference_path + ": input_ids must be int64 (batch, length)");
  std::vector<Var> hidden;
  const Var logits = model->forward(input_ids, &hidden); // (b, l, V)
  const int64_t length = input_ids.size(1), vocab = model->config.vocab_size;
  const Var pred = reshape(narrow(logits, 1, 0, length - 1), {-1, vocab}); // (b (l-1), V)
  const Tensor target = input_ids.narrow(1, 1, length - 1).contiguous().view({-1});
  const Var loss = cross_entropy(pred, target);
  model->zero_grad();
  loss.backward();

  compare("logits", logits.value());
  for (size_t i = 0; i < hidden.size(); ++i)
    compare("hidden." + std::to_string(i), hidden[i].value());
  compare("loss", loss.value().view({1}));
  std::set<std::string> compared;
  if (options.adapter_dir.empty()) {
    for (const auto& [name, param] : model->named_parameters()) {
      compare("grad." + name, param.grad());
      compared.insert("grad." + name);
    }
  } else {
    for (const auto& [name, param] : lora_parameters(*model)) {
      const std::string key = "grad." + peft_parameter_name(name);
      compare(key, param.grad());
      compared.insert(key);
    }
  }
  for (const std::string& name : ref.names())
    if (name.rfind("grad.", 0) == 0 && !compared.count(name)) {
      result.lines.push_back(name + ": in the reference but the model has no such parameter  FAIL");
      result.ok = false;
    }

  // ---- greedy decoding with the recurrent path --------------------------------------------
  if (ref.contains("gen.prompt") && ref.contains("gen.tokens")) {
    const Tensor prompt = ref.get("gen.prompt");   // (1, p)
    const Tensor expected = ref.get("gen.tokens"); // (1, p + new)
    const int64_t new_tokens = expected.size(1) - prompt.size(1);
    SamplingOptions greedy;
    greedy.greedy = true;
    Generator gen(0);
    const Tensor got = generate(*model, prompt, new_tokens, greedy, gen);
    const bool same = got.shape() == expected.shape() && got.to_doubles() == expected.to_doubles();
    std::string line = "gen.tokens (greedy, " + std::to_string(new_tokens) + " new, step mode)";
    line.resize(std::max<size_t>(line.size(), 48), ' ');
    line += same ? "  identical  ok" : "  differ  FAIL";
    if (!same) {
      line += "\n    got     ";
      for (double v : got.to_doubles()) line += " " + std::to_string(int64_t(v));
      line += "\n    expected";
      for (double v : expected.to_doubles()) line += " " + std::to_string(int64_t(v));
    }
    result.ok = result.ok && same;
    result.lines.push_back(line);
  }
  for (const std::string& note : notes) result.lines.push_back("note: " + note);
  return result;
}

} // namespace ssm
