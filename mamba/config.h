// config.h: MambaConfig, the hyperparameters of a Mamba language model, field for field as
// Hugging Face transformers' MambaConfig (so config.json files move both ways).
//
// Glossary (code name = config.json key = paper symbol):
//   d_model   = hidden_size          width of the residual stream
//   d_inner   = intermediate_size    width inside a block, expand * d_model (E D in the paper)
//   d_state   = state_size           n, the SSM state per channel (N)
//   d_conv    = conv_kernel          width of the causal depthwise convolution
//   dt_rank   = time_step_rank       rank of the projection that makes Δ ("auto": ceil(d_model/16))
//   n_layer   = num_hidden_layers
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/json.h"

namespace ssm {

struct MambaConfig {
  // ---- what changes the computation ----
  int64_t vocab_size = 256;
  int64_t d_model = 64;  // hidden_size
  int64_t d_inner = 128; // intermediate_size (= expand * d_model)
  int64_t d_state = 16;  // state_size
  int64_t n_layer = 2;   // num_hidden_layers
  int64_t d_conv = 4;    // conv_kernel
  int64_t dt_rank = 4;   // time_step_rank (resolved from "auto")
  bool use_bias = false; // bias of in_proj and out_proj
  bool use_conv_bias = true;
  double layer_norm_epsilon = 1e-5;
  bool tie_word_embeddings = true;
  bool residual_in_fp32 = true;
  // ---- initialisation only (Mamba's dt init: log-uniform in [dt_min, dt_max], floored) ----
  double time_step_min = 0.001, time_step_max = 0.1, time_step_floor = 1e-4;
  double time_step_scale = 1.0;
  std::string time_step_init_scheme = "random"; // "random" or "constant"
  double initializer_range = 0.1;
  bool rescale_prenorm_residual = false;
  // ---- tokens ----
  int64_t pad_token_id = 0, bos_token_id = 0, eos_token_id = 0;
  int64_t expand = 2; // kept for the file; d_inner is what the model uses

  // A config for a new model: d_inner = expand * d_model, dt_rank = ceil(d_model / 16).
  static MambaConfig make(int64_t vocab_size, int64_t d_model, int64_t n_layer,
                          int64_t d_state = 16, int64_t expand = 2, int64_t d_conv = 4);

  // Throws std::invalid_argument naming the field when a value is impossible.
  void validate() const;

  // Reads a transformers config.json (model_type "mamba"). Missing required keys and values of
  // the wrong type are errors naming the key and file; keys that exist in transformers'
  // MambaConfig or its PretrainedConfig base but do not change the forward pass are accepted;
  // any other key is listed in `unknown_keys` (when given) so the caller can report it.
  static MambaConfig from_json(const Json& json, const std::string& source,
                               std::vector<std::string>* unknown_keys = nullptr);
  static MambaConfig load(const std::string& config_json_path,
                          std::vector<std::string>* unknown_keys = nullptr);
  // The config.json transformers writes for MambaForCausalLM.
  Json to_json() const;
  void save(const std::string& config_json_path) const; // atomic
};

} // namespace ssm
