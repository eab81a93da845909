// faiss_glue.cpp - the extern "C" wrapper over FAISS (Debian's static
// libfaiss 1.7.3 ships no compiled C API): the only C++ in clipdex.
// Invariants: no C++ exception crosses into C (every entry point catches
// and turns it into -1 and a message); the metric is always inner product;
// labels are FAISS's own sequential ids (add order), never remapped here;
// nothing is printed.
#include "ann/faiss_glue.h"

#include <omp.h>

#include <cstdio>
#include <exception>
#include <memory>

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

struct fg_index {
    std::unique_ptr<faiss::Index> ix;
};

namespace {

void set_err(char *err, size_t errlen, const char *what, const std::exception &e)
{
    if (err && errlen) std::snprintf(err, errlen, "%s: %s", what, e.what());
}

// Runs f, turning any exception into -1 and "what: reason".
template <class F> int guard(char *err, size_t errlen, const char *what, F f)
{
    try {
        return f();
    } catch (const std::exception &e) {
        set_err(err, errlen, what, e);
    } catch (...) {
        if (err && errlen) std::snprintf(err, errlen, "%s: unknown FAISS error", what);
    }
    return -1;
}

} // namespace

extern "C" {

int fg_new(const char *factory, int dim, fg_index **out, char *err, size_t errlen)
{
    *out = nullptr;
    return guard(err, errlen, "cannot make the FAISS index", [&] {
        auto *g = new fg_index;
        g->ix.reset(faiss::index_factory(dim, factory, faiss::METRIC_INNER_PRODUCT));
        *out = g;
        return 0;
    });
}

int fg_read(const char *path, int mmap, fg_index **out, char *err, size_t errlen)
{
    *out = nullptr;
    return guard(err, errlen, "cannot read the FAISS index", [&] {
        std::unique_ptr<faiss::Index> ix(faiss::read_index(path, mmap ? faiss::IO_FLAG_MMAP : 0));
        if (ix->metric_type != faiss::METRIC_INNER_PRODUCT) {
            if (err && errlen) std::snprintf(err, errlen, "the FAISS index '%s' does not use inner product", path);
            return -1;
        }
        auto *g = new fg_index;
        g->ix = std::move(ix);
        *out = g;
        return 0;
    });
}

void fg_free(fg_index *ix) { delete ix; }

int fg_dim(const fg_index *ix) { return ix->ix->d; }
int64_t fg_count(const fg_index *ix) { return ix->ix->ntotal; }
int fg_is_trained(const fg_index *ix) { return ix->ix->is_trained; }

int fg_train(fg_index *ix, size_t n, const float *x, char *err, size_t errlen)
{
    return guard(err, errlen, "cannot train the FAISS index", [&] {
        // FAISS would print its own warning for a small sample; the C side
        // says it instead (ann.c), so k-means just runs on what there is
        faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(ix->ix.get());
        if (ivf) ivf->cp.min_points_per_centroid = 1;
        if (!ix->ix->is_trained) ix->ix->train((faiss::Index::idx_t)n, x);
        return 0;
    });
}

int fg_add(fg_index *ix, size_t n, const float *x, char *err, size_t errlen)
{
    return guard(err, errlen, "cannot add to the FAISS index", [&] {
        ix->ix->add((faiss::Index::idx_t)n, x);
        return 0;
    });
}

int fg_write(const fg_index *ix, const char *path, char *err, size_t errlen)
{
    return guard(err, errlen, "cannot write the FAISS index", [&] {
        faiss::write_index(ix->ix.get(), path);
        return 0;
    });
}

int fg_set_param(fg_index *ix, const char *name, double value, char *err, size_t errlen)
{
    return guard(err, errlen, "cannot set the search parameter", [&] {
        std::string n(name);
        faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(ix->ix.get());
        if (n == "nprobe") {
            if (!ivf) return 0;
            ivf->nprobe = (size_t)value;
            return 1;
        }
        faiss::Index *h = n == "quantizer_efSearch" ? (ivf ? ivf->quantizer : nullptr) : ix->ix.get();
        auto *hnsw = dynamic_cast<faiss::IndexHNSW *>(h);
        if ((n == "efSearch" || n == "quantizer_efSearch") && hnsw) {
            hnsw->hnsw.efSearch = (int)value;
            return 1;
        }
        return 0;
    });
}

int fg_search(const fg_index *ix, const float *q, size_t k, int threads, int64_t *labels, float *scores,
              char *err, size_t errlen)
{
    return guard(err, errlen, "cannot search the FAISS index", [&] {
        if (threads > 0) omp_set_num_threads(threads);
        static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "FAISS labels are 64-bit");
        ix->ix->search(1, q, (faiss::Index::idx_t)k, scores, reinterpret_cast<faiss::Index::idx_t *>(labels));
        return 0;
    });
}

} // extern "C"
