// variable.h: Var, the differentiable value, and the reverse-mode engine.
//
// A Var holds a Tensor `value`, and once backward() has reached it, a Tensor `grad` of the
// same shape: d(root)/d(value). A Var made by a differentiable op also holds `grad_fn`, the
// Node that made it: the op's name, its input Vars, and a backward closure that maps the
// gradient of the output to the gradients of the inputs (chain rule, one op at a time).
//
//     x (leaf) ──┐
//                ├─ mul ─> z ── sum ─> loss          loss.backward():
//     w (leaf) ──┘                                     d loss/d z = 1 (broadcast)
//                                                       d loss/d x = d loss/d z * w
//                                                       d loss/d w = d loss/d z * x
//
// The graph is recorded while ops run (only when an input requires a gradient and gradient
// mode is on; see NoGradGuard). backward() sorts the nodes reachable from the root depth-first
// and visits them in reverse topological order, so each node runs once, after every consumer
// of its output has contributed its share of the output's gradient. Gradients of leaves are
// accumulated (+=) into leaf.grad(), so calling backward twice adds, and zero_grad() resets.
//
// Broadcasting is undone in one place: when a closure returns an input gradient shaped like
// the (broadcast) output, the engine sums it back to the input's shape (sum_to_shape).
//
// Once a node has run, its closure (and the tensors it saved) is freed unless retain_graph is
// set; running backward through it again is an error that says so.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tensor/tensor.h"

namespace ssm {

struct VarImpl;
struct Node;

// Maps d(root)/d(output) to d(root)/d(input) for each input, in input order. An entry may be
// an undefined Tensor when that input needs no gradient. Entries may have the output's
// (broadcast) shape; the engine reduces them to each input's shape.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Var {
 public:
  Var() = default; // undefined
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  // The accumulated gradient (undefined until backward reaches this Var).
  const Tensor& grad() const;
  bool requires_grad() const;
  Var& set_requires_grad(bool requires_grad); // leaves only
  bool is_leaf() const;
  // The op that produced this Var ("" for leaves).
  std::string op_name() const;

  const Shape& shape() const { return value().shape(); }
  int64_t dim() const { return value().dim(); }
  int64_t size(int64_t d) const { return value().size(d); }
  int64_t numel() const { return value().numel(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  double item() const { return value().item(); }

  // Backpropagates from this Var. Without an argument it must hold a single element (a loss)
  // and its gradient is 1. retain_graph keeps the closures for another backward pass.
  void backward(bool retain_graph = false) const;
  void backward(const Tensor& grad_output, bool retain_graph = false) const;

  // The same value, cut from the graph: a new leaf that does not require a gradient.
  Var detach() const;
  // Forgets the accumulated gradient.
  void zero_grad() const;
  // Replaces the value in place (optimizers and weight loading); shape and dtype must match.
  void assign(const Tensor& value) const;
  // Sets the gradient (optimizers' tests, gradient clipping); shape must match.
  void set_grad(const Tensor& grad) const;

  const std::shared_ptr<VarImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VarImpl> impl_;
  void check_defined(const char* op) const;
};

struct VarImpl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn; // null for leaves
};

struct Node {
  std::string op_name;
  std::vector<Var> inputs;
  BackwardFn backward;
  bool released = false; // backward already ran and freed the closure
};

// Gradient mode: while a NoGradGuard lives (on this thread), ops record no graph.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// The one way differentiable ops make their output. `inputs` are the op's Var arguments;
// if any requires a gradient (and grad mode is on) the result records a Node with `backward`,
// else it is a plain leaf and `backward` is dropped without being called.
Var make_result(const char* op, Tensor output, std::vector<Var> inputs, BackwardFn backward);

// Throws unless every defined input has the same dtype and device; the message names the op
// and the offending shapes. Every differentiable op calls this first.
void check_inputs(const char* op, const std::vector<Var>& inputs);

} // namespace ssm
