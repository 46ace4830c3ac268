// Times oneDNN's direct and Winograd convolution primitives (forward, backward data, backward weights) on one
// 3x3 stride-1 'same' layer, as the native backend runs them (blocked activation layout for both here), in fp32
// and in bf16 (bf16 inputs and weights, fp32 outputs and gradients, as the native backend's --precision bf16).
// Build and run (libdnnl-dev):
//   g++ -O2 -fopenmp bench/conv-algorithms.cc -ldnnl -o /tmp/conv-algorithms
//   OMP_NUM_THREADS=1 /tmp/conv-algorithms 8 9 512      # batch, height = width, channels in = out
#include <dnnl.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

static double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

static void Run(algorithm alg, const char* name, int n, int h, int c, int rounds, bool bf16 = false) {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  memory::dims src{n, c, h, h}, wei{c, c, 3, 3}, bias{c}, dst{n, c, h, h}, st{1, 1}, pad{1, 1};
  auto any = [](const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); };
  // bf16: the multiplied operands (x, w, dy) in bf16, what is written (y, dx, dw, db) in fp32
  auto in = [bf16](const memory::dims& d) { return memory::desc(d, bf16 ? dt::bf16 : dt::f32, tag::any); };
  try {
    convolution_forward::primitive_desc fpd(
        convolution_forward::desc(prop_kind::forward_training, alg, in(src), in(wei), any(bias), any(dst), st, pad, pad), eng);
    convolution_backward_data::primitive_desc bpd(convolution_backward_data::desc(alg, any(src), in(wei), in(dst), st, pad, pad), eng, fpd);
    convolution_backward_weights::primitive_desc wpd(
        convolution_backward_weights::desc(alg, in(src), any(wei), any(bias), in(dst), st, pad, pad), eng, fpd);
    memory x(fpd.src_desc(), eng), w(fpd.weights_desc(), eng), b(fpd.bias_desc(), eng), y(fpd.dst_desc(), eng);
    memory dx(bpd.diff_src_desc(), eng), dw(wpd.diff_weights_desc(), eng), db(wpd.diff_bias_desc(), eng), dy(wpd.diff_dst_desc(), eng);
    for (memory* m : {&x, &w, &b, &dy}) {
      if (m->get_desc().data_type() == dt::bf16) {  // bf16: the top half of an fp32
        auto* p = static_cast<uint16_t*>(m->get_data_handle());
        for (size_t i = 0; i < m->get_desc().get_size() / 2; ++i) p[i] = static_cast<uint16_t>(0x3c00 + rand() % 0x200);
        continue;
      }
      auto* p = static_cast<float*>(m->get_data_handle());
      for (size_t i = 0; i < m->get_desc().get_size() / 4; ++i) p[i] = static_cast<float>(rand() % 1000) / 1000.f - 0.5f;
    }
    convolution_forward f(fpd);
    convolution_backward_data bd(bpd);
    convolution_backward_weights bw(wpd);
    double tf = 0, tb = 0, tw = 0;
    for (int r = 0; r < rounds + 2; ++r) {  // two warm-up rounds
      double t0 = Now();
      f.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
      s.wait();
      double t1 = Now();
      bd.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
      s.wait();
      double t2 = Now();
      bw.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}, {DNNL_ARG_DIFF_BIAS, db}});
      s.wait();
      double t3 = Now();
      if (r >= 2) tf += t1 - t0, tb += t2 - t1, tw += t3 - t2;
    }
    const double gflop = 2.0 * n * h * h * c * c * 9 / 1e9;  // per pass
    std::printf("%-14s %-24s forward %7.2f ms  backward data %7.2f ms (%s)  backward weights %7.2f ms (%s)  %6.1f GFLOP/s\n",
                name, fpd.impl_info_str(), tf / rounds * 1e3, tb / rounds * 1e3, bpd.impl_info_str(), tw / rounds * 1e3,
                wpd.impl_info_str(), 3 * gflop / ((tf + tb + tw) / rounds));
  } catch (const dnnl::error& e) {
    std::printf("%-9s not available for this shape (%s)\n", name, e.what());
  }
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: conv-algorithms BATCH HW CHANNELS [ROUNDS]\n");
    return 2;
  }
  int n = std::atoi(argv[1]), h = std::atoi(argv[2]), c = std::atoi(argv[3]), rounds = argc > 4 ? std::atoi(argv[4]) : 10;
  std::printf("batch %d, %dx%d, %d -> %d channels, 3x3 stride 1, %d rounds\n", n, h, h, c, c, rounds);
  Run(algorithm::convolution_direct, "direct", n, h, c, rounds);
  Run(algorithm::convolution_winograd, "winograd", n, h, c, rounds);
  Run(algorithm::convolution_direct, "bf16 direct", n, h, c, rounds, true);
  Run(algorithm::convolution_auto, "bf16 auto", n, h, c, rounds, true);
  Run(algorithm::convolution_winograd, "bf16 winograd", n, h, c, rounds, true);
  return 0;
}
