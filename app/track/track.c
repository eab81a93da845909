/*
 * track.c - SORT multi-object tracking (track.h). Each track's Kalman state
 * is x = [u, v, s, r, u', v', s'] (box centre, area, aspect w/h, and the
 * velocities of the first three; the aspect is constant), measured through
 * z = [u, v, s, r], with SORT's published noise settings. Invariants: track
 * ids grow by one per birth and are never reused; the tracks are kept in
 * birth order, so the output order (and every result) depends only on the
 * inputs. A track whose filter goes non-finite is dropped.
 */
#include "track/track.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NX = 7, NZ = 4 };

typedef struct track {
    double x[NX];
    double P[NX][NX];
    long id;
    int hits, misses, confirmed, det;
} track;

struct tracker {
    track_params p;
    track *t;
    size_t n, cap;
    long next_id, frames;
};

track_params track_params_default(void)
{
    track_params p = {5, 3, 0.3f};
    return p;
}

tracker *tracker_new(const track_params *p)
{
    tracker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->p = p ? *p : track_params_default();
    t->next_id = 1;
    return t;
}

void tracker_free(tracker *t)
{
    if (!t) return;
    free(t->t);
    free(t);
}

float track_iou(const track_box *a, const track_box *b)
{
    float iw = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    float ih = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (!(iw > 0) || !(ih > 0)) return 0;
    float inter = iw * ih;
    float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return ua > 0 ? inter / ua : 0;
}

/* ---- Hungarian method on a square n x n matrix (potentials u, v; 1-based
 * rows/columns with column 0 as the free start), O(n^3). */
static int hungarian(const double *a, size_t n, int *col_of_row)
{
    double *u = calloc(n + 1, sizeof *u), *v = calloc(n + 1, sizeof *v), *minv = malloc((n + 1) * sizeof *minv);
    size_t *p = calloc(n + 1, sizeof *p), *way = calloc(n + 1, sizeof *way);
    char *used = malloc(n + 1);
    int rc = (u && v && minv && p && way && used) ? 0 : -1;
    for (size_t i = 1; rc == 0 && i <= n; i++) {
        p[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j <= n; j++) minv[j] = INFINITY, used[j] = 0;
        do { /* grow the alternating tree from row i until a free column */
            used[j0] = 1;
            size_t i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (size_t j = 1; j <= n; j++) {
                if (used[j]) continue;
                double cur = a[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) minv[j] = cur, way[j] = j0;
                if (minv[j] < delta) delta = minv[j], j1 = j;
            }
            for (size_t j = 0; j <= n; j++) {
                if (used[j]) u[p[j]] += delta, v[j] -= delta;
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do { /* flip the augmenting path */
            size_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (size_t j = 1; rc == 0 && j <= n; j++) col_of_row[p[j] - 1] = (int)(j - 1);
    free(u), free(v), free(minv), free(p), free(way), free(used);
    return rc;
}

int track_assign(const double *cost, size_t nr, size_t nc, int *col_of_row)
{
    size_t n = nr > nc ? nr : nc;
    if (n == 0) return 0;
    double *sq = calloc(n * n, sizeof *sq); /* padded with zero-cost dummies */
    int *col = malloc(n * sizeof *col);
    if (!sq || !col) {
        free(sq), free(col);
        return -1;
    }
    for (size_t r = 0; r < nr; r++) memcpy(sq + r * n, cost + r * nc, nc * sizeof *sq);
    int rc = hungarian(sq, n, col);
    for (size_t r = 0; rc == 0 && r < nr; r++) col_of_row[r] = col[r] < (int)nc ? col[r] : -1;
    free(sq), free(col);
    return rc;
}

/* ---- the Kalman filter */

static void box_to_z(const track_box *b, double z[NZ])
{
    double w = b->x1 - b->x0, h = b->y1 - b->y0;
    z[0] = b->x0 + w / 2, z[1] = b->y0 + h / 2, z[2] = w * h, z[3] = w / h;
}

static track_box x_to_box(const double x[NX])
{
    double w = x[2] > 0 && x[3] > 0 ? sqrt(x[2] * x[3]) : 0, h = w > 0 ? x[2] / w : 0;
    track_box b = {(float)(x[0] - w / 2), (float)(x[1] - h / 2), (float)(x[0] + w / 2), (float)(x[1] + h / 2)};
    return b;
}

static void track_init(track *k, const track_box *b, long id)
{
    memset(k, 0, sizeof *k);
    box_to_z(b, k->x);
    /* SORT: P = diag(10, 10, 10, 10, 1e4, 1e4, 1e4) (unknown velocities) */
    for (int i = 0; i < NX; i++) k->P[i][i] = i < NZ ? 10 : 1e4;
    k->id = id;
    k->hits = 1;
}

/* x = F x, P = F P F^T + Q, with F the identity plus x[i] += x[i + 4], i < 3. */
static void kf_predict(track *k)
{
    static const double Q[NX] = {1, 1, 1, 1, 0.01, 0.01, 1e-4};
    if (k->x[2] + k->x[6] <= 0) k->x[6] = 0; /* the area must stay positive */
    for (int i = 0; i < 3; i++) k->x[i] += k->x[i + 4];
    double FP[NX][NX];
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NX; j++) FP[i][j] = k->P[i][j] + (i < 3 ? k->P[i + 4][j] : 0);
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NX; j++) k->P[i][j] = FP[i][j] + (j < 3 ? FP[i][j + 4] : 0) + (i == j ? Q[i] : 0);
}

/* Inverts the 4 x 4 matrix a (symmetric positive definite here) by
 * Gauss-Jordan elimination with partial pivoting; 0, or -1 if singular. */
static int inv4(double a[NZ][NZ], double out[NZ][NZ])
{
    double m[NZ][2 * NZ];
    for (int i = 0; i < NZ; i++)
        for (int j = 0; j < 2 * NZ; j++) m[i][j] = j < NZ ? a[i][j] : (j - NZ == i);
    for (int c = 0; c < NZ; c++) {
        int piv = c;
        for (int r = c + 1; r < NZ; r++)
            if (fabs(m[r][c]) > fabs(m[piv][c])) piv = r;
        if (!(fabs(m[piv][c]) > 0)) return -1;
        for (int j = 0; j < 2 * NZ; j++) {
            double t = m[c][j];
            m[c][j] = m[piv][j], m[piv][j] = t;
        }
        double d = m[c][c];
        for (int j = 0; j < 2 * NZ; j++) m[c][j] /= d;
        for (int r = 0; r < NZ; r++) {
            if (r == c) continue;
            double f = m[r][c];
            for (int j = 0; j < 2 * NZ; j++) m[r][j] -= f * m[c][j];
        }
    }
    for (int i = 0; i < NZ; i++)
        for (int j = 0; j < NZ; j++) out[i][j] = m[i][j + NZ];
    return 0;
}

/* y = z - H x, S = H P H^T + R, K = P H^T S^-1, x += K y, P = (I - K H) P;
 * H takes the first four state entries. */
static int kf_update(track *k, const track_box *b)
{
    static const double R[NZ] = {1, 1, 10, 10};
    double z[NZ], y[NZ], S[NZ][NZ], Si[NZ][NZ], K[NX][NZ], P[NX][NX];
    box_to_z(b, z);
    for (int i = 0; i < NZ; i++) {
        y[i] = z[i] - k->x[i];
        for (int j = 0; j < NZ; j++) S[i][j] = k->P[i][j] + (i == j ? R[i] : 0);
    }
    if (inv4(S, Si)) return -1;
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NZ; j++) {
            K[i][j] = 0;
            for (int l = 0; l < NZ; l++) K[i][j] += k->P[i][l] * Si[l][j];
        }
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NZ; j++) k->x[i] += K[i][j] * y[j];
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NX; j++) {
            double s = 0;
            for (int l = 0; l < NZ; l++) s += K[i][l] * k->P[l][j];
            P[i][j] = k->P[i][j] - s;
        }
    memcpy(k->P, P, sizeof P);
    return 0;
}

static int finite_state(const track *k)
{
    for (int i = 0; i < NX; i++)
        if (!isfinite(k->x[i])) return 0;
    return 1;
}

/* ---- one frame */

/* Matches detections to the predicted tracks: det_of[i] for track i, or -1. */
static int associate(const tracker *t, const track_box *dets, size_t n, int *det_of)
{
    for (size_t i = 0; i < t->n; i++) det_of[i] = -1;
    if (t->n == 0 || n == 0) return 0;
    double *cost = malloc(t->n * n * sizeof *cost);
    float *iou = malloc(t->n * n * sizeof *iou);
    int rc = cost && iou ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        track_box pb = x_to_box(t->t[i].x);
        for (size_t d = 0; d < n; d++) {
            iou[i * n + d] = track_iou(&pb, &dets[d]);
            cost[i * n + d] = -(double)iou[i * n + d];
        }
    }
    if (rc == 0) rc = track_assign(cost, t->n, n, det_of);
    for (size_t i = 0; rc == 0 && i < t->n; i++)
        if (det_of[i] >= 0 && iou[i * n + (size_t)det_of[i]] < t->p.iou_min) det_of[i] = -1;
    free(cost), free(iou);
    return rc;
}

static int grow(tracker *t, size_t need)
{
    if (need <= t->cap) return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    while (cap < need) cap *= 2;
    track *nt = realloc(t->t, cap * sizeof *nt);
    if (!nt) return -1;
    t->t = nt, t->cap = cap;
    return 0;
}

static int valid_box(const track_box *b)
{
    return isfinite(b->x0) && isfinite(b->y0) && isfinite(b->x1) && isfinite(b->y1) && b->x1 > b->x0 &&
           b->y1 > b->y0;
}

/* Predicts every track and drops those whose filter went non-finite. */
static void predict_all(tracker *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        kf_predict(&t->t[i]);
        if (finite_state(&t->t[i])) t->t[w++] = t->t[i];
    }
    t->n = w;
}

/* Updates the matched tracks, ages the others, births the unmatched detections. */
static int apply_matches(tracker *t, const track_box *dets, size_t n, const int *det_of)
{
    char *taken = calloc(n ? n : 1, 1);
    if (!taken) return -1;
    size_t n_old = t->n;
    for (size_t i = 0; i < n_old; i++) {
        track *k = &t->t[i];
        k->det = det_of[i];
        if (k->det >= 0 && kf_update(k, &dets[k->det]) == 0) {
            taken[k->det] = 1;
            k->hits++, k->misses = 0;
        } else {
            k->det = -1;
            k->misses++;
        }
        if (k->hits >= t->p.min_hits || t->frames <= t->p.min_hits) k->confirmed = 1;
    }
    int rc = grow(t, t->n + n);
    for (size_t d = 0; rc == 0 && d < n; d++) {
        if (taken[d] || !valid_box(&dets[d])) continue;
        track *k = &t->t[t->n++];
        track_init(k, &dets[d], t->next_id++);
        k->det = (int)d;
        k->confirmed = t->frames <= t->p.min_hits || t->p.min_hits <= 1;
    }
    free(taken);
    return rc;
}

long tracker_update(tracker *t, const track_box *dets, size_t n, track_out *out, size_t cap)
{
    t->frames++;
    predict_all(t);
    int *det_of = malloc((t->n ? t->n : 1) * sizeof *det_of);
    if (!det_of || associate(t, dets, n, det_of) || apply_matches(t, dets, n, det_of)) {
        free(det_of);
        return -1;
    }
    free(det_of);
    size_t w = 0;
    long n_out = 0;
    for (size_t i = 0; i < t->n; i++) {
        track *k = &t->t[i];
        if (k->misses > t->p.max_age) continue; /* dead: removed */
        t->t[w++] = *k;
        if (!k->confirmed) continue;
        if ((size_t)n_out < cap) {
            track_out *o = &out[n_out];
            o->id = k->id, o->box = x_to_box(k->x), o->det = k->det, o->hits = k->hits, o->misses = k->misses;
        }
        n_out++;
    }
    t->n = w;
    return n_out;
}
