// hippo_demo.cpp: what a HiPPO-LegS state remembers. A signal is read one sample at a time
// into N numbers by the LegS recurrence, and the whole history is then rebuilt from those N
// numbers alone; the program prints how well, for several N, and plots it.
//
// The math (s4/hippo.h): the LegS coefficients of the history [0, t] of a signal f,
//   c_n(t) = (1/t) int_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx,      n = 0 .. N-1,
// obey the ODE c' = (1/t)(A c + B f(t)) with the HiPPO-LegS matrices (A, B), so they can be
// updated online, one sample at a time, without storing the past:
//   (I - A/(2k-1)) c_k = (I + A/(2k-1)) c_{k-1} + 2/(2k-1) B f_k
// (the bilinear discretisation with the 1/t factor at each step's midpoint; no step size,
// because LegS is scale-invariant). After the last sample, the history is approximately
//   f(x) ~ sum_n c_n(L) sqrt(2n+1) P_n(2x/L - 1),   x in [0, L],
// the best N-term Legendre approximation of all of it. The "offline" column projects the
// stored samples directly (what the recurrence approximates without storing them).
//
// Signal (seeded): three sines with random frequencies (1 to 8 cycles over the window),
// amplitudes and phases, plus a step of random height at a random place. The smooth part is
// captured quickly as N grows; the step is not (Legendre series of a jump ring, the Gibbs
// phenomenon), which the plot shows.
//
// Output in --out: reconstruction.svg (signal and its reconstruction for each N) and
// error.svg (RMS reconstruction error against N, online and offline).
//
//   build/hippo_demo                  # well under a second
//   build/hippo_demo --help
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "s4/hippo.h"
#include "tensor/random.h"
#include "train/flags.h"
#include "train/plot.h"

using namespace ssm;

// ---- the signal ------------------------------------------------------------------------------

struct Signal {
  double frequency[3], amplitude[3], phase[3]; // the sines: cycles per window, height, radians
  double step_at, step_height;                 // the step: position in [0, 1], jump
  double operator()(double x) const {
    double v = x >= step_at ? step_height : 0.0;
    for (int i = 0; i < 3; ++i)
      v += amplitude[i] * std::sin(2 * M_PI * frequency[i] * x + phase[i]);
    return v;
  }
};

Signal make_signal(uint64_t seed) {
  Generator gen(seed);
  const std::vector<double> u = Tensor::rand({11}, DType::Float64, &gen).to_doubles(); // [0, 1)
  Signal s;
  for (int i = 0; i < 3; ++i) {
    s.frequency[i] = 1 + 7 * u[3 * i];
    s.amplitude[i] = 0.3 + 0.7 * u[3 * i + 1];
    s.phase[i] = 2 * M_PI * u[3 * i + 2];
  }
  s.step_at = 0.3 + 0.4 * u[9];
  s.step_height = (u[10] < 0.5 ? -1.0 : 1.0) * (0.5 + u[10]);
  return s;
}

// "8,16,32" -> {8, 16, 32}; each a positive integer.
std::vector<int64_t> parse_states(const std::string& text) {
  std::vector<int64_t> states;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 1 || value > 1024)
      throw std::invalid_argument(
          "hippo_demo: --states expects comma-separated integers in [1, 1024], got \"" + text +
          "\"");
    states.push_back(value);
  }
  if (states.empty()) throw std::invalid_argument("hippo_demo: --states is empty");
  return states;
}

double rms(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum / static_cast<double>(a.size()));
}

// ---- main --------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  int64_t length = 2000, seed = 0;
  std::string states_text = "8,16,32,64", out_dir = "runs/hippo_demo";
  train::Flags flags("hippo_demo",
                     "Reads a signal online into N HiPPO-LegS coefficients, rebuilds its whole "
                     "history from them, and prints and plots the reconstruction error.");
  flags.add("length", &length, "samples in the signal (L)");
  flags.add("states", &states_text, "comma-separated state sizes N to compare");
  flags.add("seed", &seed, "random seed of the signal");
  flags.add("out", &out_dir, "output directory for reconstruction.svg and error.svg");
  if (!flags.parse(argc, argv)) return 0;
  if (length < 2 || length > 1000000)
    throw std::invalid_argument("hippo_demo: --length must be in [2, 1000000], got " +
                                std::to_string(length));
  const std::vector<int64_t> states = parse_states(states_text);
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error)
    throw std::runtime_error("hippo_demo: cannot create --out directory " + out_dir + ": " +
                             error.message());

  // Sample k (k = 1 .. L) at the middle of its cell, x = (k - 1/2) / L, as s4/hippo.h assumes.
  const Signal signal = make_signal(static_cast<uint64_t>(seed));
  std::vector<double> x(length), f(length);
  double signal_sq = 0;
  for (int64_t k = 0; k < length; ++k) {
    x[k] = (k + 0.5) / static_cast<double>(length);
    f[k] = signal(x[k]);
    signal_sq += f[k] * f[k];
  }
  const Tensor samples = Tensor::from_vector(f, {length}); // (L)
  std::printf(
      "hippo_demo: online HiPPO-LegS projection of a %lld-sample signal (3 sines + a step of "
      "%+.2f at x = %.2f, seed %lld)\n",
      static_cast<long long>(length), signal.step_height, signal.step_at,
      static_cast<long long>(seed));
  std::printf("signal RMS %.4f; reconstruction of the whole history from the final N numbers:\n",
              std::sqrt(signal_sq / length));
  std::printf("%6s  %12s  %12s\n", "N", "online RMS", "offline RMS");

  std::vector<train::Series> curves = {{"signal", x, f}};
  train::Series online_error{"online", {}, {}};
  train::Series offline_error{"offline", {}, {}};
  for (int64_t N : states) {
    const Tensor history = s4::legs_online_projection(samples, N);     // (L, N)
    const Tensor c_final = history.select(0, length - 1).contiguous(); // (N)
    const std::vector<double> online = s4::legs_reconstruct(c_final, length).to_doubles();
    const Tensor c_offline = s4::legs_offline_projection(samples, N); // (N)
    const std::vector<double> offline = s4::legs_reconstruct(c_offline, length).to_doubles();
    const double online_rms = rms(online, f), offline_rms = rms(offline, f);
    std::printf("%6lld  %12.4e  %12.4e\n", static_cast<long long>(N), online_rms, offline_rms);
    curves.push_back({"N = " + std::to_string(N), x, online});
    online_error.x.push_back(static_cast<double>(N));
    online_error.y.push_back(online_rms);
    offline_error.x.push_back(static_cast<double>(N));
    offline_error.y.push_back(offline_rms);
  }

  train::write_line_plot(out_dir + "/reconstruction.svg", curves,
                         {"HiPPO-LegS: the history rebuilt from N numbers",
                          "x (fraction of the "
                          "history)",
                          "f(x)"});
  train::write_line_plot(out_dir + "/error.svg", {online_error, offline_error},
                         {"HiPPO-LegS reconstruction error", "N (state size)", "RMS error"});
  std::printf("wrote %s/reconstruction.svg, %s/error.svg\n", out_dir.c_str(), out_dir.c_str());
  return 0;
}

int main(int argc, char** argv) { return train::run_program(run, argc, argv); }
