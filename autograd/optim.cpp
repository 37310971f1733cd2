#include "autograd/optim.h"

#include <cmath>
#include <map>
#include <stdexcept>

#ifdef SSM_CUDA
#include "cuda/optim.h"
#endif

namespace ssm::optim {

Optimizer::Optimizer(NamedParameters params) : params_(std::move(params)) {
  for (auto& [name, p] : params_) {
    if (!p.defined() || !p.is_leaf() || !p.requires_grad())
      throw std::invalid_argument("optimizer: parameter '" + name +
                                  "' must be a leaf Var that requires a gradient");
    if (!p.value().is_contiguous()) p.assign(p.value().contiguous());
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

// Checks that a parameter's gradient can be used by an update loop.
static void check_grad(const std::string& name, const Var& p) {
  const Tensor& g = p.grad();
  if (g.shape() != p.shape() || g.dtype() != p.dtype() || g.device() != p.device())
    throw std::invalid_argument("optimizer: gradient of '" + name + "' is " + g.describe() +
                                ", parameter is " + p.value().describe());
}

// ---- SGD -----------------------------------------------------------------------------------

SGD::SGD(NamedParameters params, SGDOptions opts)
    : Optimizer(std::move(params)), options(opts), momentum_buffers_(params_.size()) {
  lr = opts.lr;
  if (opts.nesterov && opts.momentum <= 0)
    throw std::invalid_argument("SGD: nesterov needs momentum > 0");
}

void SGD::step() {
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    if (!p.grad().defined()) continue;
    check_grad(name, p);
    const Tensor g = p.grad().contiguous();
    Tensor& buf = momentum_buffers_[i];
    const bool first = !buf.defined();
    if (options.momentum != 0 && first) buf = Tensor::zeros(p.shape(), p.dtype(), p.device());
    if (p.device().is_cuda()) {
#ifdef SSM_CUDA
      Tensor w = p.value();
      cuda::sgd_step(w, g, buf, first, lr, options.momentum, options.weight_decay,
                     options.nesterov);
#else
      throw_no_cuda("SGD");
#endif
    } else {
      dispatch_floating(p.dtype(), "SGD", [&](auto zero) {
        using T = decltype(zero);
        T* w = p.value().data<T>();
        const T* pg = g.data<T>();
        T* pb = options.momentum != 0 ? buf.data<T>() : nullptr;
        const double mu = options.momentum, wd = options.weight_decay;
        for (int64_t j = 0; j < p.numel(); ++j) {
          double d = pg[j] + wd * w[j];
          if (pb) {
            pb[j] = static_cast<T>(first ? d : mu * pb[j] + d);
            d = options.nesterov ? d + mu * pb[j] : pb[j];
          }
          w[j] = static_cast<T>(w[j] - lr * d);
        }
      });
    }
  }
}

// ---- AdamW ---------------------------------------------------------------------------------

AdamW::AdamW(NamedParameters params, AdamWOptions opts)
    : Optimizer(std::move(params)),
      options(opts),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()) {
  lr = opts.lr;
  if (!(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1))
    throw std::invalid_argument("AdamW: betas must be in [0, 1)");
  if (!(opts.eps > 0)) throw std::invalid_argument("AdamW: eps must be positive");
}

bool AdamW::decays(const std::string& name) const {
  for (const std::string& pattern : options.no_decay)
    if (name.find(pattern) != std::string::npos) return false;
  return true;
}

void AdamW::step() {
  ++step_count_;
  const double bias1 = 1 - std::pow(options.beta1, static_cast<double>(step_count_));
  const double bias2 = 1 - std::pow(options.beta2, static_cast<double>(step_count_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    if (!p.grad().defined()) continue;
    check_grad(name, p);
    const Tensor g = p.grad().contiguous();
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
      exp_avg_sq_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    const double decay = decays(name) ? lr * options.weight_decay : 0.0;
    if (p.device().is_cuda()) {
#ifdef SSM_CUDA
      Tensor w = p.value();
      cuda::adamw_step(w, g, exp_avg_[i], exp_avg_sq_[i], lr, options.beta1, options.beta2,
                       options.eps, decay, bias1, bias2);
#else
      throw_no_cuda("AdamW");
#endif
    } else {
      dispatch_floating(p.dtype(), "AdamW", [&](auto zero) {
        using T = decltype(zero);
        T* w = p.value().data<T>();
        const T* pg = g.data<T>();
        T* m = exp_avg_[i].data<T>();
        T* v = exp_avg_sq_[i].data<T>();
        const double b1 = options.beta1, b2 = options.beta2;
        for (int64_t j = 0; j < p.numel(); ++j) {
          const double gj = pg[j];
          m[j] = static_cast<T>(b1 * m[j] + (1 - b1) * gj);
          v[j] = static_cast<T>(b2 * v[j] + (1 - b2) * gj * gj);
          const double denom = std::sqrt(v[j] / bias2) + options.eps;
          w[j] = static_cast<T>(w[j] * (1 - decay) - lr * (m[j] / bias1) / denom);
        }
      });
    }
  }
}

// ---- clipping and schedules ----------------------------------------------------------------

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg_[i].defined()) continue;
    out.emplace_back("exp_avg." + params_[i].first, exp_avg_[i].to(Device::cpu()));
    out.emplace_back("exp_avg_sq." + params_[i].first, exp_avg_sq_[i].to(Device::cpu()));
  }
  return out;
}

void AdamW::load_state_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               int64_t steps_taken) {
  if (steps_taken < 0) throw std::invalid_argument("AdamW state: negative step count");
  std::map<std::string, Tensor> by_name(tensors.begin(), tensors.end());
  std::vector<Tensor> m(params_.size()), v(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    const auto mi = by_name.find("exp_avg." + name), vi = by_name.find("exp_avg_sq." + name);
    if ((mi == by_name.end()) != (vi == by_name.end()))
      throw std::invalid_argument("AdamW state: parameter '" + name +
                                  "' has only one of exp_avg and exp_avg_sq");
    if (mi == by_name.end()) continue; // never stepped (no gradient yet): no moments, as saved
    for (const auto* it : {&mi, &vi})
      if ((*it)->second.shape() != p.shape())
        throw std::invalid_argument("AdamW state: '" + (*it)->first + "' has shape " +
                                    shape_str((*it)->second.shape()) + ", the parameter " +
                                    shape_str(p.shape()));
    m[i] = mi->second.to(p.dtype()).to(p.device()).clone();
    v[i] = vi->second.to(p.dtype()).to(p.device()).clone();
    by_name.erase(mi);
    by_name.erase(vi);
  }
  if (!by_name.empty())
    throw std::invalid_argument("AdamW state: '" + by_name.begin()->first +
                                "' matches no parameter");
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
  step_count_ = steps_taken;
}

double clip_grad_norm(const std::vector<Var>& params, double max_norm) {
  if (!(max_norm > 0))
    throw std::invalid_argument("clip_grad_norm: max_norm must be positive, got " +
                                std::to_string(max_norm));
  double total_sq = 0;
  for (const Var& p : params) {
    if (!p.grad().defined()) continue;
    total_sq += sum(square(p.grad().to(DType::Float64))).item();
  }
  const double total = std::sqrt(total_sq);
  const double scale = max_norm / (total + 1e-6);
  if (scale < 1)
    for (const Var& p : params)
      if (p.grad().defined()) p.set_grad(mul(p.grad(), scale));
  return total;
}

WarmupCosineLR::WarmupCosineLR(double peak_lr, int64_t warmup_steps, int64_t total_steps,
                               double min_lr)
    : peak_(peak_lr), min_(min_lr), warmup_(warmup_steps), total_(total_steps) {
  if (warmup_steps < 0 || total_steps <= 0 || warmup_steps > total_steps)
    throw std::invalid_argument(
        "WarmupCosineLR: need 0 <= warmup_steps <= total_steps, 0 < "
        "total_steps; got warmup " +
        std::to_string(warmup_steps) + ", total " + std::to_string(total_steps));
}

double WarmupCosineLR::lr_at(int64_t step) const {
  if (step < warmup_) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (step >= total_) return min_;
  const double progress = static_cast<double>(step - warmup_) /
                          static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  return min_ + (peak_ - min_) * 0.5 * (1 + std::cos(M_PI * progress));
}

} // namespace ssm::optim
