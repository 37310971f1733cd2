// config.cpp: MambaConfig <-> transformers' config.json.
#include "mamba/config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ssm {

namespace {

// Keys of transformers' MambaConfig that this model reads.
const char* const kComputeKeys[] = {"vocab_size",
                                    "hidden_size",
                                    "intermediate_size",
                                    "state_size",
                                    "num_hidden_layers",
                                    "conv_kernel",
                                    "use_bias",
                                    "use_conv_bias",
                                    "time_step_rank",
                                    "layer_norm_epsilon",
                                    "tie_word_embeddings",
                                    "residual_in_fp32",
                                    "expand",
                                    "hidden_act",
                                    "model_type"};

// Keys that exist in MambaConfig or PretrainedConfig (or that transformers' own Mamba
// checkpoints carry from the original repository) and do not change the forward pass:
// initialisation, kernels to pick, generation defaults, bookkeeping.
const char* const kKnownOtherKeys[] = {"time_step_min",
                                       "time_step_max",
                                       "time_step_floor",
                                       "time_step_scale",
                                       "time_step_init_scheme",
                                       "initializer_range",
                                       "rescale_prenorm_residual",
                                       "use_cache",
                                       "use_mambapy",
                                       "use_associative_scan",
                                       "pad_token_id",
                                       "bos_token_id",
                                       "eos_token_id",
                                       "architectures",
                                       "transformers_version",
                                       "dtype",
                                       "torch_dtype",
                                       "_name_or_path",
                                       "_commit_hash",
                                       "return_dict",
                                       "output_hidden_states",
                                       "output_attentions",
                                       "torchscript",
                                       "is_encoder_decoder",
                                       "is_decoder",
                                       "add_cross_attention",
                                       "tie_encoder_decoder",
                                       "chunk_size_feed_forward",
                                       "id2label",
                                       "label2id",
                                       "problem_type",
                                       "tokenizer_class",
                                       "prefix",
                                       "sep_token_id",
                                       "decoder_start_token_id",
                                       "task_specific_params",
                                       "finetuning_task",
                                       "pruned_heads",
                                       "max_length",
                                       "min_length",
                                       "do_sample",
                                       "early_stopping",
                                       "num_beams",
                                       "temperature",
                                       "top_k",
                                       "top_p",
                                       "repetition_penalty",
                                       "length_penalty",
                                       "no_repeat_ngram_size",
                                       "bad_words_ids",
                                       "num_return_sequences",
                                       "use_bfloat16",
                                       "n_layer",
                                       "d_model",
                                       "fused_add_norm",
                                       "rms_norm",
                                       "pad_vocab_size_multiple"};

bool in_list(const std::string& key, const char* const* begin, const char* const* end) {
  return std::any_of(begin, end, [&](const char* k) { return key == k; });
}

} // namespace

MambaConfig MambaConfig::make(int64_t vocab_size, int64_t d_model, int64_t n_layer, int64_t d_state,
                              int64_t expand, int64_t d_conv) {
  MambaConfig c;
  c.vocab_size = vocab_size;
  c.d_model = d_model;
  c.expand = expand;
  c.d_inner = expand * d_model;
  c.d_state = d_state;
  c.n_layer = n_layer;
  c.d_conv = d_conv;
  c.dt_rank = (d_model + 15) / 16;
  c.validate();
  return c;
}

void MambaConfig::validate() const {
  auto positive = [](const char* name, int64_t v) {
    if (v < 1)
      throw std::invalid_argument(std::string("MambaConfig: ") + name + " must be >= 1, got " +
                                  std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", d_model);
  positive("intermediate_size", d_inner);
  positive("state_size", d_state);
  positive("num_hidden_layers", n_layer);
  positive("conv_kernel", d_conv);
  positive("time_step_rank", dt_rank);
  if (!(layer_norm_epsilon >= 0))
    throw std::invalid_argument("MambaConfig: layer_norm_epsilon must be >= 0");
  if (!(time_step_min > 0 && time_step_min <= time_step_max))
    throw std::invalid_argument("MambaConfig: need 0 < time_step_min <= time_step_max, got " +
                                std::to_string(time_step_min) + ", " +
                                std::to_string(time_step_max));
  if (time_step_init_scheme != "random" && time_step_init_scheme != "constant")
    throw std::invalid_argument(
        "MambaConfig: time_step_init_scheme must be \"random\" or \"constant\", got \"" +
        time_step_init_scheme + "\"");
}

MambaConfig MambaConfig::from_json(const Json& j, const std::string& source,
                                   std::vector<std::string>* unknown_keys) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(source + ": " + what); };
  if (!j.is_object()) fail("expected a JSON object, found " + std::string(j.type_name()));
  const std::string model_type = j.get_string("model_type", "mamba");
  if (model_type != "mamba")
    fail("model_type is \"" + model_type + "\", expected \"mamba\" (MambaForCausalLM)");
  for (const char* key : {"vocab_size", "hidden_size", "state_size", "num_hidden_layers"})
    if (!j.contains(key) || j.at(key).is_null()) fail(std::string("missing key \"") + key + "\"");
  const std::string act = j.get_string("hidden_act", "silu");
  if (act != "silu" && act != "swish")
    fail("hidden_act \"" + act + "\" is not supported (Mamba uses silu)");

  MambaConfig c;
  try {
    c.vocab_size = j.get_int("vocab_size");
    c.d_model = j.get_int("hidden_size");
    c.d_state = j.get_int("state_size");
    c.n_layer = j.get_int("num_hidden_layers");
    c.expand = j.get_int("expand", 2);
    c.d_inner = j.get_int("intermediate_size", c.expand * c.d_model);
    c.d_conv = j.get_int("conv_kernel", 4);
    c.use_bias = j.get_bool("use_bias", false);
    c.use_conv_bias = j.get_bool("use_conv_bias", true);
    const Json* rank = j.find("time_step_rank");
    if (!rank || rank->is_null() || (rank->is_string() && rank->as_string() == "auto"))
      c.dt_rank = (c.d_model + 15) / 16; // transformers: math.ceil(hidden_size / 16)
    else if (rank->is_integer())
      c.dt_rank = rank->as_int();
    else
      fail("time_step_rank must be \"auto\" or an integer, found " +
           (rank->is_string() ? "\"" + rank->as_string() + "\"" : std::string(rank->type_name())));
    c.layer_norm_epsilon = j.get_double("layer_norm_epsilon", 1e-5);
    c.tie_word_embeddings = j.get_bool("tie_word_embeddings", true);
    c.residual_in_fp32 = j.get_bool("residual_in_fp32", true);
    c.time_step_min = j.get_double("time_step_min", 0.001);
    c.time_step_max = j.get_double("time_step_max", 0.1);
    c.time_step_floor = j.get_double("time_step_floor", 1e-4);
    c.time_step_scale = j.get_double("time_step_scale", 1.0);
    c.time_step_init_scheme = j.get_string("time_step_init_scheme", "random");
    c.initializer_range = j.get_double("initializer_range", 0.1);
    c.rescale_prenorm_residual = j.get_bool("rescale_prenorm_residual", false);
    c.pad_token_id = j.get_int("pad_token_id", 0);
    c.bos_token_id = j.get_int("bos_token_id", 0);
    c.eos_token_id = j.get_int("eos_token_id", 0);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (unknown_keys) {
    for (const auto& [key, value] : j.as_object()) {
      const bool known = in_list(key, std::begin(kComputeKeys), std::end(kComputeKeys)) ||
                         in_list(key, std::begin(kKnownOtherKeys), std::end(kKnownOtherKeys));
      if (!known) unknown_keys->push_back(key);
    }
  }
  return c;
}

MambaConfig MambaConfig::load(const std::string& path, std::vector<std::string>* unknown_keys) {
  return from_json(load_json_file(path), path, unknown_keys);
}

Json MambaConfig::to_json() const {
  Json j = Json::object();
  j.set("architectures", Json(Json::Array{Json("MambaForCausalLM")}));
  j.set("model_type", "mamba");
  j.set("vocab_size", vocab_size);
  j.set("hidden_size", d_model);
  j.set("intermediate_size", d_inner);
  j.set("expand", expand);
  j.set("state_size", d_state);
  j.set("num_hidden_layers", n_layer);
  j.set("conv_kernel", d_conv);
  j.set("time_step_rank", dt_rank);
  j.set("use_bias", use_bias);
  j.set("use_conv_bias", use_conv_bias);
  j.set("hidden_act", "silu");
  j.set("layer_norm_epsilon", layer_norm_epsilon);
  j.set("tie_word_embeddings", tie_word_embeddings);
  j.set("residual_in_fp32", residual_in_fp32);
  j.set("time_step_min", time_step_min);
  j.set("time_step_max", time_step_max);
  j.set("time_step_floor", time_step_floor);
  j.set("time_step_scale", time_step_scale);
  j.set("time_step_init_scheme", time_step_init_scheme);
  j.set("initializer_range", initializer_range);
  j.set("rescale_prenorm_residual", rescale_prenorm_residual);
  j.set("pad_token_id", pad_token_id);
  j.set("bos_token_id", bos_token_id);
  j.set("eos_token_id", eos_token_id);
  j.set("use_cache", true);
  j.set("dtype", "float32");
  return j;
}

void MambaConfig::save(const std::string& path) const { save_json_file(path, to_json(), 2); }

} // namespace ssm
