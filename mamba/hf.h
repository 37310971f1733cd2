// hf.h: Mamba checkpoints in the Hugging Face transformers format, both ways.
//
// A checkpoint directory holds config.json (MambaConfig, see config.h) and the weights,
// either model.safetensors or shards listed by model.safetensors.index.json ("weight_map":
// tensor name -> shard file), as transformers' save_pretrained writes them. Tensor names are
// the module paths of MambaForCausalLM ("backbone.layers.0.mixer.in_proj.weight", ...); with
// tied embeddings lm_head.weight is absent (a copy equal to the embedding is accepted).
// Loading is strict: a missing tensor, an unexpected one or a shape mismatch is an error that
// names the tensor and the file. Saving writes config.json and model.safetensors (float32 by
// default, as transformers does), each atomically, and creates the directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mamba/mamba_lm.h"

namespace ssm {

struct HfLoadOptions {
  DType dtype = DType::Float32; // the model's compute dtype (float32 or float64)
  Device device = Device::cpu();
};

// `notes`, when given, receives one line per thing worth telling the user (config keys that
// were not recognised, a tied lm_head.weight that was present in the file).
std::unique_ptr<MambaLM> load_hf_mamba(const std::string& dir, const HfLoadOptions& options = {},
                                       std::vector<std::string>* notes = nullptr);

// Writes dir/config.json and dir/model.safetensors. dtype Float32 (default) or Float64.
void save_hf_mamba(const std::string& dir, const MambaLM& model, DType dtype = DType::Float32);

} // namespace ssm
