// hf.cpp: loading and saving Mamba checkpoints in the transformers format (see hf.h).
#include "mamba/hf.h"
#include "mamba/lora.h"

#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "data/json.h"
#include "data/safetensors.h"

namespace ssm {

namespace fs = std::filesystem;

namespace {

// Every tensor of the checkpoint, by name, with the file it came from (for messages). Reads
// model.safetensors, or the shards named by model.safetensors.index.json.
struct CheckpointTensors {
  std::map<std::string, std::pair<Tensor, std::string>> by_name; // name -> (CPU tensor, file)
};

CheckpointTensors read_weights(const std::string& dir, LoadDType load) {
  CheckpointTensors out;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::exists(single)) {
    files.push_back(single.string());
  } else if (fs::exists(index)) {
    const Json j = load_json_file(index.string());
    const Json* map = j.find("weight_map");
    if (!map || !map->is_object())
      throw std::invalid_argument(index.string() + ": no \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [name, file] : map->as_object()) {
      if (!file.is_string())
        throw std::invalid_argument(index.string() + ": weight_map[\"" + name +
                                    "\"] is not a file name");
      shards.insert(file.as_string());
    }
    for (const std::string& shard : shards) files.push_back((fs::path(dir) / shard).string());
  } else {
    throw std::invalid_argument(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const std::string& file : files) {
    SafetensorsFile f = load_safetensors(file, load);
    for (SafetensorsTensor& t : f.tensors) {
      if (out.by_name.count(t.name))
        throw std::invalid_argument(file + ": tensor '" + t.name + "' also appears in " +
                                    out.by_name[t.name].second);
      out.by_name[t.name] = {t.tensor, file};
    }
  }
  return out;
}

} // namespace

std::unique_ptr<MambaLM> load_hf_mamba(const std::string& dir, const HfLoadOptions& options,
                                       std::vector<std::string>* notes) {
  if (options.dtype != DType::Float32 && options.dtype != DType::Float64)
    throw std::invalid_argument("load_hf_mamba: dtype must be float32 or float64");
  if (!fs::is_directory(dir)) throw std::invalid_argument(dir + ": not a directory");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path)) throw std::invalid_argument(config_path + ": not found");
  std::vector<std::string> unknown;
  const MambaConfig config = MambaConfig::load(config_path, &unknown);
  if (notes)
    for (const std::string& key : unknown)
      notes->push_back(config_path + ": key \"" + key +
                       "\" is not a MambaConfig field; ignored (it does not change the model)");

  // The parameters of a freshly built model define which tensors must be present.
  // Its own generator: loading must not advance the global one that a caller may have seeded.
  Generator init_gen(0);
  nn::Init init{options.dtype, &init_gen};
  auto model = std::make_unique<MambaLM>(config, init);
  CheckpointTensors weights =
      read_weights(dir, options.dtype == DType::Float64 ? LoadDType::Float64 : LoadDType::Float32);

  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  for (const auto& [name, param] : model->named_parameters()) {
    auto it = weights.by_name.find(name);
    if (it == weights.by_name.end()) {
      missing.push_back(name + " " + shape_str(param.shape()));
      continue;
    }
    const Tensor& t = it->second.first;
    if (t.shape() != param.shape()) {
      mismatched.push_back(name + ": file " + shape_str(t.shape()) + ", config expects " +
                           shape_str(param.shape()) + " (" + it->second.second + ")");
      continue;
    }
    used.insert(name);
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, entry] : weights.by_name) {
    if (used.count(name)) continue;
    if (name == "lm_head.weight" && config.tie_word_embeddings) {
      // Tied: the head is the embedding. A copy in the file must agree with it.
      const auto emb = weights.by_name.find("backbone.embeddings.weight");
      if (emb != weights.by_name.end() && entry.first.shape() == emb->second.first.shape() &&
          entry.first.to_doubles() == emb->second.first.to_doubles()) {
        if (notes) notes->push_back("lm_head.weight in the file equals the tied embedding");
        continue;
      }
      unexpected.push_back(name +
                           " (tie_word_embeddings is true but it differs from "
                           "backbone.embeddings.weight)");
      continue;
    }
    unexpected.push_back(name + " " + shape_str(entry.first.shape()) + " in " + entry.second);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = dir + ": the weights do not match the config (" +
                      std::to_string(config.n_layer) + " layers, hidden_size " +
                      std::to_string(config.d_model) + "):";
    for (const auto& m : missing) msg += "\n  missing: " + m;
    for (const auto& u : unexpected) msg += "\n  unexpected: " + u;
    for (const auto& m : mismatched) msg += "\n  shape mismatch: " + m;
    throw std::invalid_argument(msg);
  }
  for (const auto& [name, param] : model->named_parameters())
    param.assign(weights.by_name.at(name).first);
  if (options.device.is_cuda()) model->to(options.device);
  return model;
}

void save_hf_mamba(const std::string& dir, const MambaLM& model, DType dtype) {
  if (dtype != DType::Float32 && dtype != DType::Float64)
    throw std::invalid_argument("save_hf_mamba: dtype must be float32 or float64");
  // The file holds the base model: adapters must be merged first (or saved on their own, in
  // peft's format), and a quantised base cannot be written back in full precision.
  if (has_nf4_base(model))
    throw std::invalid_argument(
        "save_hf_mamba: the base weights are quantised (NF4); save the "
        "adapters with save_peft_adapter instead");
  if (has_unmerged_lora(model))
    throw std::invalid_argument(
        "save_hf_mamba: the model has unmerged LoRA adapters, which this "
        "format cannot hold: merge_lora first, or save them with "
        "save_peft_adapter");
  fs::create_directories(dir);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, param] : model.named_parameters())
    if (name.find(".lora_") == std::string::npos) // merged adapters live in the weights now
      tensors.push_back({name, param.value().to(Device::cpu()).to(dtype).contiguous()});
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  Json config = model.config.to_json();
  config.set("dtype", dtype == DType::Float64 ? "float64" : "float32");
  save_json_file((fs::path(dir) / "config.json").string(), config, 2);
}

} // namespace ssm
