#include "data/checkpoint.h"

#include <set>
#include <stdexcept>

namespace ssm {

void save_module(const nn::Module& module, const std::string& path,
                 const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> tensors;
  for (const auto& [name, param] : module.named_parameters())
    tensors.push_back({name, param.value()});
  save_safetensors(path, tensors, metadata);
}

static std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

LoadReport load_module(nn::Module& module, const std::string& path, bool strict) {
  const SafetensorsFile file = load_safetensors(path);
  LoadReport report;
  report.metadata = file.metadata;
  // Everything is checked before any parameter changes: a load that fails leaves the model as
  // it was.
  std::set<std::string> used;
  std::vector<std::pair<Var, Tensor>> updates;
  for (const auto& [name, param] : module.named_parameters()) {
    const SafetensorsTensor* entry = file.find(name);
    if (!entry) {
      report.missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (entry->tensor.shape() != param.shape())
      throw std::invalid_argument(path + ": tensor '" + name + "' has shape " +
                                  shape_str(entry->tensor.shape()) + ", the model expects " +
                                  shape_str(param.shape()));
    updates.emplace_back(param, entry->tensor);
  }
  for (const SafetensorsTensor& entry : file.tensors)
    if (!used.count(entry.name)) report.unexpected.push_back(entry.name);
  if (strict && (!report.missing.empty() || !report.unexpected.empty()))
    throw std::invalid_argument(
        path + ": does not match the model" +
        (report.missing.empty() ? "" : "; missing: " + join(report.missing)) +
        (report.unexpected.empty() ? "" : "; unexpected: " + join(report.unexpected)));
  for (auto& [param, tensor] : updates) param.assign(tensor.to(param.dtype()).to(param.device()));
  return report;
}

} // namespace ssm
