// lora.h: LoRA on a Mamba LM (the layers' adapters are autograd/lora.h), with peft's files.
//
// Targets are chosen by module name, as peft's target_modules: a name matches every module
// whose dotted path is it or ends with "." + it ("in_proj", "mixer.in_proj",
// "backbone.layers.0.mixer.in_proj"); a name that matches nothing is an error. The modules a Mamba
// has and what an adapter there changes:
//   in_proj   d_model -> 2 d_inner: the scan's input x and the gate z
//   conv1d    the depthwise causal convolution (weight (d_inner, 1, d_conv))
//   x_proj    d_inner -> dt_rank + 2 n: the selection (dt_low, B, C)
//   dt_proj   dt_rank -> d_inner: the step size delta (its bias stays frozen)
//   out_proj  d_inner -> d_model
//   embeddings the token embedding (not the tied lm_head, which keeps the base weight, as in
//              peft)
// peft 0.21 on transformers 5.17 refuses out_proj and conv1d for Mamba and, for dt_proj,
// builds an adapter that the model never uses (transformers reads dt_proj.weight directly).
// Here every one of them is applied in the forward, in step mode too, and gets a gradient.
//
// Files, as peft writes them (PeftModel.save_pretrained):
//   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//                               "target_modules", "use_rslora", "fan_in_fan_out", "bias", ...}
//   adapter_model.safetensors  "base_model.model." + the parameter's name without the adapter
//                              name, e.g.
//                              base_model.model.backbone.layers.0.mixer.in_proj.lora_A.weight
// Options this project does not implement (fan_in_fan_out, bias other than "none", DoRA,
// rank or alpha patterns, layers_to_transform, modules_to_save, a regex target_modules, ...)
// are refused by name when an adapter is loaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/lora.h"
#include "data/json.h"
#include "mamba/mamba_lm.h"

namespace ssm {

struct MambaLoraConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0;
  bool use_rslora = false;
  std::vector<std::string> target_modules = {"in_proj", "x_proj"};

  // peft's adapter_config.json, strict about options not implemented here.
  static MambaLoraConfig from_json(const Json& json, const std::string& source);
  Json to_json(const std::string& base_model_name_or_path = "") const;
};

// The module names a target may be: in_proj, conv1d, x_proj, dt_proj, out_proj, embeddings.
const std::vector<std::string>& mamba_lora_target_names();

struct LoraSummary {
  std::vector<std::string> adapted; // dotted module names, in model order
  int64_t trainable = 0, total = 0; // parameter counts (elements) after attaching
  std::string describe() const; // "trainable params: 1,234 || all params: ... || trainable%: ..."
};

// Attaches an adapter to every targeted module and freezes every other parameter of the model
// (only the adapters require a gradient). An unknown target name is an error.
LoraSummary apply_lora(MambaLM& model, const MambaLoraConfig& config, Generator* gen = nullptr);

// The adapters' parameters, by name (what an optimizer should get).
std::vector<std::pair<std::string, Var>> lora_parameters(const MambaLM& model);

// Whether some adapter is attached and not merged; whether some base weight is in NF4.
bool has_unmerged_lora(const MambaLM& model);
bool has_nf4_base(const MambaLM& model);

void merge_lora(MambaLM& model);   // every adapter folded into its base weight
void unmerge_lora(MambaLM& model); // and taken out again

// QLoRA: the base weights of in_proj, x_proj, dt_proj and out_proj of every layer are stored
// in NF4 (autograd/nf4.h) and dequantised on the fly; their full-precision copies are dropped.
// The SSM parameters (A_log, D, dt_proj's bias), the convolution, the norms and the embeddings
// (so also the tied lm_head) stay in full precision: they are a small part of the model and
// the recurrence is sensitive to them. Call after apply_lora and after moving the model to its
// device.
struct QuantizeSummary {
  int64_t values = 0; // weights quantised
  size_t bytes = 0;   // their NF4 storage (codes and both levels of scales)
  std::vector<std::string> layers;
};
QuantizeSummary quantize_base_nf4(MambaLM& model);

// peft's adapter directory (adapter_config.json + adapter_model.safetensors), written
// atomically; and read back onto a model without adapters (strict: every adapter tensor must
// be in the file, with its shape, and nothing else). Returns the config.
void save_peft_adapter(const std::string& dir, const MambaLM& model, const MambaLoraConfig& config,
                       const std::string& base_model_name_or_path = "");
MambaLoraConfig load_peft_adapter(const std::string& dir, MambaLM& model);

// "backbone.layers.0.mixer.in_proj.lora_A.weight" -> peft's parameter name with the adapter
// name, "base_model.model.backbone.layers.0.mixer.in_proj.lora_A.default.weight" (and
// "...embeddings.lora_embedding_A" -> "...embeddings.lora_embedding_A.default").
std::string peft_parameter_name(const std::string& name, const std::string& adapter = "default");

} // namespace ssm
