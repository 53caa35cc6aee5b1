// A small classifier built from the library's layers, with every kind of state fit() must carry across a resume:
// batch-norm statistics, dropout (tests/train/test_fit.cpp, tests/distributed/test_data_parallel.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hw1/data/loader.hpp"
#include "hw1/models.hpp"
#include "hw1/train/loss.hpp"

namespace hw1::test {

// (Bias-free convolutions, as batch norm follows each.)
template <class B = backend::cpu>
class TinyNet : public Model<TinyNet<B>, B> {
 public:
  using tensor = typename B::tensor;
  using scalar = typename B::scalar;
  static constexpr const char* model_name = "tiny";
  TinyNet(int k, std::uint64_t seed) {
    fc.set_out_channels(k);
    this->finalize(seed);
  }
  void visit(ParamSet<scalar>& ps, const std::string& p) {
    body.visit(ps, p + "body.");
    fc.visit(ps, p + "fc.");
  }
  tensor forward_impl(Context<scalar>& c, tensor x) { return fc.forward(c, pool.forward(c, body.forward(c, std::move(x)))); }
  tensor backward_impl(Context<scalar>& c, tensor dy) {
    return body.backward(c, pool.backward(c, fc.backward(c, std::move(dy))));
  }
  typename Seq<Conv3x3<3, 16>, BatchNorm2d<16>, ReLU, MaxPool2d<2, 2>, Conv3x3<16, 32>,
               BatchNorm2d<32>, ReLU, Dropout<0.1f>>::template bind<3, B> body;
  typename GlobalAvgPool::template bind<32, B> pool;
  typename Linear<32, dynamic>::template bind<32, B> fc;
};

// What a fit() task of a classifier does in validation: accuracy over the validation set (and its counts, which a
// data-parallel run sums over the ranks).
struct ClassifyEval {
  std::size_t correct = 0, total = 0;
  void eval_begin() { correct = total = 0; }
  template <class Net>
  double eval_batch(Net& net, const ClassificationBatch& b) {
    const Tensor y = net.forward(b.images);
    const auto p = argmax_classes(y);
    for (std::size_t i = 0; i < p.size(); ++i) correct += p[i] == b.labels[i];
    total += p.size();
    return cross_entropy(y, b.labels, {}, -100, false).loss;
  }
  double eval_metric() const { return total ? double(correct) / double(total) : 0.0; }
  std::vector<double> eval_counts() const { return {double(correct), double(total)}; }
  void set_eval_counts(const std::vector<double>& v) { correct = std::size_t(v.at(0)), total = std::size_t(v.at(1)); }
};

}  // namespace hw1::test
