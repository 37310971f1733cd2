#include "autograd/variable.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace ssm {

// ---- Var -----------------------------------------------------------------------------------

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  if (!value.defined()) throw std::invalid_argument("Var: cannot wrap an undefined tensor");
  if (requires_grad && !is_floating(value.dtype()))
    throw std::invalid_argument("Var: only floating-point tensors can require a gradient, got " +
                                value.describe());
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

void Var::check_defined(const char* op) const {
  if (!impl_) throw std::logic_error(std::string("Var::") + op + ": the Var is undefined");
}

const Tensor& Var::value() const {
  check_defined("value");
  return impl_->value;
}

const Tensor& Var::grad() const {
  check_defined("grad");
  return impl_->grad;
}

bool Var::requires_grad() const { return impl_ && impl_->requires_grad; }

bool Var::is_leaf() const {
  check_defined("is_leaf");
  return impl_->grad_fn == nullptr;
}

std::string Var::op_name() const {
  check_defined("op_name");
  return impl_->grad_fn ? impl_->grad_fn->op_name : "";
}

Var& Var::set_requires_grad(bool requires_grad) {
  check_defined("set_requires_grad");
  if (!is_leaf())
    throw std::logic_error(
        "set_requires_grad: only leaves can change requires_grad (this Var "
        "was made by " +
        op_name() + "); use detach()");
  if (requires_grad && !is_floating(impl_->value.dtype()))
    throw std::invalid_argument("set_requires_grad: " + impl_->value.describe() +
                                " is not floating point");
  impl_->requires_grad = requires_grad;
  return *this;
}

Var Var::detach() const {
  check_defined("detach");
  return Var(impl_->value, false);
}

void Var::zero_grad() const {
  check_defined("zero_grad");
  impl_->grad = Tensor();
}

void Var::assign(const Tensor& value) const {
  check_defined("assign");
  if (value.shape() != impl_->value.shape() || value.dtype() != impl_->value.dtype())
    throw std::invalid_argument("Var::assign: expected " + impl_->value.describe() + ", got " +
                                value.describe());
  // Packed, so that loops over numel() elements (optimizer steps) see exactly its elements.
  impl_->value = value.contiguous();
}

void Var::set_grad(const Tensor& grad) const {
  check_defined("set_grad");
  if (grad.defined() && grad.shape() != impl_->value.shape())
    throw std::invalid_argument("Var::set_grad: expected shape " + shape_str(impl_->value.shape()) +
                                ", got " + grad.describe());
  // An own packed copy: later accumulation must never write into the caller's buffer.
  impl_->grad = grad.defined() ? grad.contiguous().clone() : grad;
}

// ---- gradient mode -------------------------------------------------------------------------

static thread_local bool grad_mode = true;

bool grad_enabled() { return grad_mode; }
NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

// ---- recording -----------------------------------------------------------------------------

void check_inputs(const char* op, const std::vector<Var>& inputs) {
  const Var* first = nullptr;
  for (const Var& v : inputs) {
    if (!v.defined()) continue;
    if (!first) {
      first = &v;
      continue;
    }
    if (v.dtype() != first->dtype() || v.device() != first->device())
      throw std::invalid_argument(std::string(op) + ": inputs must share dtype and device, got " +
                                  first->value().describe() + " and " + v.value().describe());
  }
}

Var make_result(const char* op, Tensor output, std::vector<Var> inputs, BackwardFn backward) {
  bool needs_grad = false;
  if (grad_enabled())
    for (const Var& v : inputs) needs_grad = needs_grad || v.requires_grad();
  if (!needs_grad || !is_floating(output.dtype())) return Var(std::move(output), false);
  Var result(std::move(output), false);
  auto node = std::make_shared<Node>();
  node->op_name = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  result.impl()->requires_grad = true;
  result.impl()->grad_fn = std::move(node);
  return result;
}

// ---- backward ------------------------------------------------------------------------------

// Every Var reachable from `root` (through grad_fn inputs that require a gradient) in
// topological order: each Var after all the Vars it was computed from. Iterative, so a long
// chain (one node per time step of an RNN) cannot overflow the stack. The order holds owning
// pointers: releasing a node's inputs during backward must not free a Var still to be visited.
static std::vector<std::shared_ptr<VarImpl>> topological_order(
    const std::shared_ptr<VarImpl>& root) {
  std::vector<std::shared_ptr<VarImpl>> order;
  std::unordered_set<VarImpl*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<VarImpl>, size_t>> stack{{root, 0}}; // (var, next input)
  while (!stack.empty()) {
    Node* node = stack.back().first->grad_fn.get();
    size_t& next = stack.back().second;
    if (node && next < node->inputs.size()) {
      const std::shared_ptr<VarImpl>& input = node->inputs[next++].impl();
      if (input && input->requires_grad && visited.insert(input.get()).second)
        stack.push_back({input, 0});
      continue;
    }
    order.push_back(std::move(stack.back().first));
    stack.pop_back();
  }
  return order;
}

void Var::backward(bool retain_graph) const {
  check_defined("backward");
  if (numel() != 1)
    throw std::invalid_argument("backward: called on a tensor of shape " + shape_str(shape()) +
                                " without a gradient; only a single-element output (a loss) "
                                "gets the implicit gradient 1, pass grad_output otherwise");
  backward(Tensor::ones(shape(), dtype(), device()), retain_graph);
}

void Var::backward(const Tensor& grad_output, bool retain_graph) const {
  check_defined("backward");
  if (!impl_->requires_grad)
    throw std::logic_error(
        "backward: this Var does not require a gradient (no input of the "
        "ops that made it requires one, or it was made under NoGradGuard)");
  if (grad_output.shape() != shape() || grad_output.dtype() != dtype() ||
      grad_output.device() != device())
    throw std::invalid_argument("backward: grad_output " + grad_output.describe() +
                                " does not match the output " + value().describe());

  const std::vector<std::shared_ptr<VarImpl>> order = topological_order(impl_);
  // Gradients flowing into non-leaf Vars, summed over all their consumers. Leaves accumulate
  // into their own grad field instead, which outlives this call.
  std::unordered_map<VarImpl*, Tensor> pending;
  pending[impl_.get()] = grad_output;

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VarImpl* var = it->get();
    auto found = pending.find(var);
    if (found == pending.end()) continue; // no path carried a gradient here
    Tensor grad = std::move(found->second);
    pending.erase(found);

    Node* node = var->grad_fn.get();
    if (!node) {
      // Out of place: the new sum is a fresh buffer, so no gradient ever aliases another.
      var->grad = var->grad.defined() ? add(var->grad, grad) : grad.contiguous().clone();
      continue;
    }
    if (node->released)
      throw std::logic_error("backward: the graph through '" + node->op_name +
                             "' was already freed by an earlier backward(); call the first "
                             "backward with retain_graph = true to go through it twice");

    std::vector<Tensor> input_grads = node->backward(grad);
    if (input_grads.size() != node->inputs.size())
      throw std::logic_error("backward of '" + node->op_name + "' returned " +
                             std::to_string(input_grads.size()) + " gradients for " +
                             std::to_string(node->inputs.size()) + " inputs");
    for (size_t i = 0; i < input_grads.size(); ++i) {
      const Var& input = node->inputs[i];
      if (!input.requires_grad() || !input_grads[i].defined()) continue;
      Tensor g = sum_to_shape(input_grads[i], input.shape());
      auto slot = pending.find(input.impl().get());
      if (slot == pending.end())
        pending.emplace(input.impl().get(), std::move(g));
      else
        slot->second = add(slot->second, g);
    }
    if (!retain_graph) {
      node->backward = nullptr; // frees the tensors the closure saved
      node->inputs.clear();
      node->released = true;
    }
  }
}

} // namespace ssm
