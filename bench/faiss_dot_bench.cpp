// micro-bench: Debian faiss fvec_inner_products_ny (no AVX2 build) vs an -mavx2 -mfma loop, 512-d
#include <cstdlib>
#include <faiss/utils/distances.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
static void dots(float *o, const float *q, const float *x, size_t d, size_t n) {
    for (size_t i = 0; i < n; i++) { float s = 0; const float *r = x + i * d;
        for (size_t j = 0; j < d; j++) s += q[j] * r[j]; o[i] = s; }
}
int main(int argc, char **argv) {
    size_t d = 512, n = argc > 1 ? atol(argv[1]) : 100000; int reps = argc > 2 ? atoi(argv[2]) : 10; std::vector<float> x(n * d), q(d), o(n), o2(n);
    std::mt19937 g(1); std::uniform_real_distribution<float> u(-1, 1);
    for (auto &v : x) v = u(g); for (auto &v : q) v = u(g);
    for (int pass = 0; pass < 2; pass++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; r++) faiss::fvec_inner_products_ny(o.data(), q.data(), x.data(), d, n);
        auto t1 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; r++) dots(o2.data(), q.data(), x.data(), d, n);
        auto t2 = std::chrono::steady_clock::now();
        double a = std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
        double b = std::chrono::duration<double, std::milli>(t2 - t1).count() / reps;
        std::printf("faiss %.2f ms  avx2-fma loop %.2f ms  per n x 512 (ratio %.2f) check %.3f %.3f\n", a, b, a / b, o[7], o2[7]);
    }
}
