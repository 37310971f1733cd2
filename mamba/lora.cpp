// lora.cpp: see lora.h for the targets and peft's file layout.
#include "mamba/lora.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "autograd/nf4.h"
#include "data/atomic_file.h"
#include "data/safetensors.h"

namespace ssm {

namespace fs = std::filesystem;

const std::vector<std::string>& mamba_lora_target_names() {
  static const std::vector<std::string> names = {"in_proj", "conv1d",   "x_proj",
                                                 "dt_proj", "out_proj", "embeddings"};
  return names;
}

// ---- adapter_config.json --------------------------------------------------------------------

namespace {

// Keys whose value this project reads, and keys it may ignore whatever their value
// (bookkeeping, or how peft initialises a new adapter, which loading overwrites).
const std::set<std::string> kReadKeys = {
    "peft_type",      "r",          "lora_alpha",     "lora_dropout",
    "target_modules", "use_rslora", "fan_in_fan_out", "bias"};
// (megatron_core and qalora_group_size carry values even when Megatron and QALoRA are off.)
const std::set<std::string> kIgnoredKeys = {
    "task_type",      "base_model_name_or_path", "revision",
    "inference_mode", "init_lora_weights",       "auto_mapping",
    "peft_version",   "megatron_core",           "qalora_group_size"};

// A value that leaves the option at peft's default: null, false, 0-free empties.
bool is_unset(const Json& v) {
  return v.is_null() || (v.is_bool() && !v.as_bool()) ||
         ((v.is_array() || v.is_object()) && v.size() == 0);
}

} // namespace

MambaLoraConfig MambaLoraConfig::from_json(const Json& json, const std::string& source) {
  if (!json.is_object()) throw std::invalid_argument(source + ": expected a JSON object");
  for (const auto& [key, value] : json.as_object()) {
    if (kReadKeys.count(key) || kIgnoredKeys.count(key) || is_unset(value)) continue;
    throw std::invalid_argument(source + ": option '" + key + "' = " + value.dump() +
                                " is not implemented here (only LoRA with r, lora_alpha, "
                                "lora_dropout, target_modules, use_rslora)");
  }
  if (json.get_string("peft_type", "LORA") != "LORA")
    throw std::invalid_argument(source + ": peft_type '" + json.get_string("peft_type") +
                                "' is not LORA");
  if (json.get_bool("fan_in_fan_out", false))
    throw std::invalid_argument(source +
                                ": fan_in_fan_out = true (Conv1D-style weights) is not "
                                "implemented; Mamba's layers are Linear and Conv1d");
  if (json.get_string("bias", "none") != "none")
    throw std::invalid_argument(source + ": bias '" + json.get_string("bias") +
                                "' is not implemented (only \"none\": biases stay frozen)");
  MambaLoraConfig c;
  c.r = json.get_int("r", c.r);
  c.lora_alpha = json.get_double("lora_alpha", c.lora_alpha);
  c.lora_dropout = json.get_double("lora_dropout", c.lora_dropout);
  c.use_rslora = json.get_bool("use_rslora", c.use_rslora);
  const Json* targets = json.find("target_modules");
  if (!targets || !targets->is_array())
    throw std::invalid_argument(
        source + ": target_modules must be a list of module names" +
        (targets && targets->is_string()
             ? " (a regular expression, '" + targets->as_string() + "', is not implemented)"
             : std::string()));
  c.target_modules.clear();
  for (const Json& t : targets->as_array()) c.target_modules.push_back(t.as_string());
  return c;
}

Json MambaLoraConfig::to_json(const std::string& base_model_name_or_path) const {
  Json targets = Json::array();
  for (const std::string& t : target_modules) targets.push_back(t);
  return Json(Json::Object{{"peft_type", "LORA"},
                           {"task_type", "CAUSAL_LM"},
                           {"base_model_name_or_path", base_model_name_or_path},
                           {"r", r},
                           {"lora_alpha", lora_alpha},
                           {"lora_dropout", lora_dropout},
                           {"target_modules", targets},
                           {"use_rslora", use_rslora},
                           {"fan_in_fan_out", false},
                           {"bias", "none"},
                           {"inference_mode", true},
                           {"init_lora_weights", true},
                           {"modules_to_save", nullptr},
                           {"layers_to_transform", nullptr},
                           {"layers_pattern", nullptr},
                           {"rank_pattern", Json::object()},
                           {"alpha_pattern", Json::object()},
                           {"use_dora", false}});
}

// ---- attaching --------------------------------------------------------------------------------

namespace {

// Calls fn(dotted name, kind, layer pointer) for every module a target may name, in model order.
// (Model is MambaLM or const MambaLM: fn gets pointers of the matching constness.)
template <typename Model, typename Fn>
void for_each_target(Model& model, Fn fn) {
  fn("backbone.embeddings", "embeddings", &model.backbone.embeddings);
  for (size_t i = 0; i < model.backbone.layers.size(); ++i) {
    using Mixer = std::conditional_t<std::is_const_v<Model>, const MambaMixer, MambaMixer>;
    Mixer& m = model.backbone.layers[i]->mixer;
    const std::string prefix = "backbone.layers." + std::to_string(i) + ".mixer.";
    fn(prefix + "in_proj", "in_proj", &m.in_proj);
    fn(prefix + "conv1d", "conv1d", &m.conv1d);
    fn(prefix + "x_proj", "x_proj", &m.x_proj);
    fn(prefix + "dt_proj", "dt_proj", &m.dt_proj);
    fn(prefix + "out_proj", "out_proj", &m.out_proj);
  }
}

bool is_lora_name(const std::string& name) { return name.find(".lora_") != std::string::npos; }

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

} // namespace

std::string LoraSummary::describe() const {
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.4f",
                total ? 100.0 * static_cast<double>(trainable) / static_cast<double>(total) : 0.0);
  return "trainable params: " + with_commas(trainable) + " || all params: " + with_commas(total) +
         " || trainable%: " + percent;
}

namespace {

// peft's rule: a target names a module when it is the module's dotted path or a suffix of it
// that starts after a dot ("in_proj", "mixer.in_proj", "backbone.layers.0.mixer.in_proj").
bool target_matches(const std::string& path, const std::string& target) {
  return path == target || (path.size() > target.size() &&
                            path.compare(path.size() - target.size(), target.size(), target) == 0 &&
                            path[path.size() - target.size() - 1] == '.');
}

// The adaptable modules the config's targets name, by dotted path; an error for a target that
// names none.
std::set<std::string> targeted_paths(MambaLM& model, const MambaLoraConfig& config) {
  if (config.target_modules.empty()) throw std::invalid_argument("LoRA: target_modules is empty");
  std::set<std::string> paths;
  for (const std::string& t : config.target_modules) {
    bool found = false;
    for_each_target(model, [&](const std::string& path, const std::string&, auto*) {
      if (target_matches(path, t)) {
        paths.insert(path);
        found = true;
      }
    });
    if (!found) {
      std::string list;
      for (const std::string& k : mamba_lora_target_names()) list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument("LoRA: target module '" + t +
                                  "' is not a module of Mamba; "
                                  "expected some of " +
                                  list + " (or a dotted path ending in one)");
    }
  }
  return paths;
}

} // namespace

LoraSummary apply_lora(MambaLM& model, const MambaLoraConfig& config, Generator* gen) {
  const std::set<std::string> paths = targeted_paths(model, config);
  nn::LoraOptions options;
  options.r = config.r;
  options.alpha = config.lora_alpha;
  options.dropout = config.lora_dropout;
  options.rslora = config.use_rslora;
  options.gen = gen;
  nn::lora_scaling(options); // checks r and dropout before anything changes
  LoraSummary summary;
  for_each_target(model, [&](const std::string& name, const std::string&, auto* layer) {
    if (!paths.count(name)) return;
    if (layer->lora) throw std::invalid_argument("LoRA: " + name + " already has an adapter");
  });
  for_each_target(model, [&](const std::string& name, const std::string&, auto* layer) {
    if (!paths.count(name)) return;
    nn::attach_lora(*layer, options);
    summary.adapted.push_back(name);
  });
  // Everything but the adapters is frozen: no gradient is computed or kept for it.
  for (auto& [name, p] : model.named_parameters()) {
    if (!is_lora_name(name)) p.set_requires_grad(false);
    summary.total += p.numel();
    if (p.requires_grad()) summary.trainable += p.numel();
  }
  return summary;
}

std::vector<std::pair<std::string, Var>> lora_parameters(const MambaLM& model) {
  std::vector<std::pair<std::string, Var>> out;
  for (const auto& [name, p] : model.named_parameters())
    if (is_lora_name(name)) out.emplace_back(name, p);
  return out;
}

bool has_unmerged_lora(const MambaLM& model) {
  bool found = false;
  for_each_target(model, [&](const std::string&, const std::string&, auto* layer) {
    found = found || (layer->lora && !layer->lora->merged);
  });
  return found;
}

bool has_nf4_base(const MambaLM& model) {
  for (const auto& layer : model.backbone.layers) {
    const MambaMixer& m = layer->mixer;
    if (m.in_proj.nf4 || m.x_proj.nf4 || m.dt_proj.nf4 || m.out_proj.nf4) return true;
  }
  return false;
}

void merge_lora(MambaLM& model) {
  // With tied embeddings lm_head reads the embedding weight: folding an adapter into it would
  // change lm_head too, and the merged model would compute something else.
  if (model.backbone.embeddings.lora && model.config.tie_word_embeddings)
    throw std::invalid_argument(
        "merge_lora: the embeddings have an adapter and are tied to lm_head; merging would "
        "change lm_head as well. Keep the adapter unmerged, or untie the embeddings");
  // Checked for every layer first, so that a refusal leaves nothing half merged.
  for_each_target(model, [](const std::string& name, const std::string&, auto* layer) {
    if (!layer->lora) return;
    if (layer->lora->merged)
      throw std::invalid_argument("merge_lora: " + name + "'s adapter is already merged");
    if constexpr (std::is_same_v<std::remove_pointer_t<decltype(layer)>, nn::Linear>)
      if (layer->nf4)
        throw std::invalid_argument("merge_lora: " + name +
                                    " is quantised (NF4); merging needs "
                                    "its weight in full precision");
  });
  for_each_target(model, [](const std::string&, const std::string&, auto* layer) {
    if (layer->lora) nn::merge_lora(*layer);
  });
}

void unmerge_lora(MambaLM& model) {
  for_each_target(model, [](const std::string&, const std::string&, auto* layer) {
    if (layer->lora) nn::unmerge_lora(*layer);
  });
}

QuantizeSummary quantize_base_nf4(MambaLM& model) {
  QuantizeSummary summary;
  for (size_t i = 0; i < model.backbone.layers.size(); ++i) {
    MambaMixer& m = model.backbone.layers[i]->mixer;
    const std::string prefix = "backbone.layers." + std::to_string(i) + ".mixer.";
    for (auto [name, layer] : {std::pair<const char*, nn::Linear*>{"in_proj", &m.in_proj},
                               {"x_proj", &m.x_proj},
                               {"dt_proj", &m.dt_proj},
                               {"out_proj", &m.out_proj}}) {
      layer->quantize_nf4();
      summary.values += layer->nf4->numel;
      summary.bytes += layer->nf4->bytes();
      summary.layers.push_back(prefix + name);
    }
  }
  return summary;
}

// ---- peft's files -----------------------------------------------------------------------------

std::string peft_parameter_name(const std::string& name, const std::string& adapter) {
  const std::string prefixed = "base_model.model." + name;
  for (const char* factor : {".lora_A.", ".lora_B."}) {
    const size_t at = prefixed.rfind(factor);
    if (at != std::string::npos)
      return prefixed.substr(0, at + std::string(factor).size()) + adapter + "." +
             prefixed.substr(at + std::string(factor).size());
  }
  return prefixed + "." + adapter; // lora_embedding_A / lora_embedding_B
}

void save_peft_adapter(const std::string& dir, const MambaLM& model, const MambaLoraConfig& config,
                       const std::string& base_model) {
  const auto params = lora_parameters(model);
  if (params.empty()) throw std::invalid_argument("save_peft_adapter: the model has no adapters");
  std::error_code error;
  fs::create_directories(dir, error);
  if (error)
    throw std::runtime_error("save_peft_adapter: cannot create " + dir + ": " + error.message());
  std::vector<NamedTensor> tensors;
  for (const auto& [name, p] : params)
    tensors.push_back({"base_model.model." + name, p.value().to(Device::cpu())});
  save_safetensors(dir + "/adapter_model.safetensors", tensors);
  write_file_atomic(dir + "/adapter_config.json", config.to_json(base_model).dump(2) + "\n");
}

MambaLoraConfig load_peft_adapter(const std::string& dir, MambaLM& model) {
  const std::string config_path = dir + "/adapter_config.json";
  if (!fs::exists(config_path))
    throw std::invalid_argument(config_path + ": cannot open (not a peft adapter folder?)");
  const MambaLoraConfig config =
      MambaLoraConfig::from_json(load_json_file(config_path), config_path);
  if (!lora_parameters(model).empty())
    throw std::invalid_argument("load_peft_adapter: the model already has adapters");
  const std::string weights_path = dir + "/adapter_model.safetensors";
  const SafetensorsFile file = load_safetensors(weights_path);
  // Everything is checked against the shapes the adapters will have before the model is
  // touched, so that a bad file leaves it as it was.
  std::map<std::string, Shape> expected; // file key -> shape
  const std::set<std::string> paths = targeted_paths(model, config);
  const int64_t r = config.r;
  for_each_target(model, [&](const std::string& path, const std::string&, auto* layer) {
    if (!paths.count(path)) return;
    using Layer = std::remove_pointer_t<decltype(layer)>;
    const std::string key = "base_model.model." + path;
    if constexpr (std::is_same_v<Layer, nn::Linear>) {
      expected[key + ".lora_A.weight"] = {r, layer->in_features};
      expected[key + ".lora_B.weight"] = {layer->out_features, r};
    } else if constexpr (std::is_same_v<Layer, nn::Conv1d>) {
      const Shape& w = layer->weight.shape(); // (out, in / groups, k)
      expected[key + ".lora_A.weight"] = {r, w[1], w[2]};
      expected[key + ".lora_B.weight"] = {w[0], r, 1};
    } else {
      const Shape& w = layer->weight.shape(); // (vocab, dim)
      expected[key + ".lora_embedding_A"] = {r, w[0]};
      expected[key + ".lora_embedding_B"] = {w[1], r};
    }
  });
  for (const auto& [key, shape] : expected) {
    const SafetensorsTensor* t = file.find(key);
    if (!t)
      throw std::invalid_argument(weights_path + ": no tensor '" + key + "', which " +
                                  "target_modules in adapter_config.json asks for");
    if (t->tensor.shape() != shape)
      throw std::invalid_argument(weights_path + ": '" + key + "' has shape " +
                                  shape_str(t->tensor.shape()) + ", the model expects " +
                                  shape_str(shape) + " (r = " + std::to_string(r) + ")");
  }
  for (const std::string& n : file.names())
    if (!expected.count(n))
      throw std::invalid_argument(weights_path + ": tensor '" + n +
                                  "' matches no adapter of the model (target_modules " +
                                  "in adapter_config.json does not name its module?)");
  if (r < 1) throw std::invalid_argument(config_path + ": r must be >= 1");
  apply_lora(model, config);
  for (auto& [name, p] : lora_parameters(model))
    p.assign(file.get("base_model.model." + name).to(p.dtype()).to(p.device()));
  return config;
}

} // namespace ssm
