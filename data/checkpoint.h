// checkpoint.h: saving and loading a module's parameters by name, as safetensors.
//
// The file holds one tensor per parameter, keyed by its dotted name from
// Module::named_parameters() (e.g. "layers.0.mixer.in_proj.weight"), so PyTorch and Hugging
// Face tools read it directly; string metadata (a config, the step) rides in __metadata__.
// Writes are atomic (a temporary file renamed into place). Loading is strict by default: every
// parameter must be in the file with the same shape, and the file must hold nothing else;
// errors list what is missing, unexpected or mismatched.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "autograd/nn.h"
#include "data/safetensors.h"

namespace ssm {

void save_module(const nn::Module& module, const std::string& path,
                 const std::map<std::string, std::string>& metadata = {});

struct LoadReport {
  std::vector<std::string> missing;    // parameters absent from the file
  std::vector<std::string> unexpected; // file tensors matching no parameter
  std::map<std::string, std::string> metadata;
};

// Copies each file tensor into the parameter of the same name, converting to the parameter's
// dtype. strict = false tolerates missing and unexpected names (they are reported) but never
// a shape mismatch.
LoadReport load_module(nn::Module& module, const std::string& path, bool strict = true);

} // namespace ssm
