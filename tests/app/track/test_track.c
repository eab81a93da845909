/*
 * test_track.c - the SORT tracker (app/track/track.c) on synthetic scenes
 * whose identities are known: the assignment against exhaustive search, IoU
 * by hand, a constant-velocity object followed and predicted through an
 * occlusion, two objects crossing, entering and leaving, eight jittered
 * objects with dropped detections (identity switches counted and bounded),
 * confirmation after min_hits, and hostile boxes.
 */
#include "track/track.c"

#include "check.h"

/* ---- a seeded generator (xorshift64*), uniform and normal */
static unsigned long long rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* The smallest total cost over every injection of rows into columns (or
 * columns into rows), by exhaustive search. */
static double brute(const double *c, size_t nr, size_t nc, size_t r, unsigned used, double acc, double best)
{
    if (r == nr) return acc < best ? acc : best;
    size_t left = 0; /* rows after r that columns must still take */
    for (size_t j = 0; j < nc; j++) left += !(used >> j & 1);
    if (nr - r > left) best = brute(c, nr, nc, r + 1, used, acc, best); /* row r unassigned */
    for (size_t j = 0; j < nc; j++)
        if (!(used >> j & 1)) best = brute(c, nr, nc, r + 1, used | 1u << j, acc + c[r * nc + j], best);
    return best;
}

static void test_assign(void)
{
    int bad = 0, runs = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t nr = 1 + (size_t)(urand() * 6), nc = 1 + (size_t)(urand() * 6);
        double c[36];
        for (size_t i = 0; i < nr * nc; i++) c[i] = trial % 3 ? urand() * 10 : (double)(int)(urand() * 4);
        int col[6];
        if (track_assign(c, nr, nc, col)) {
            bad++;
            continue;
        }
        double got = 0;
        unsigned used = 0;
        size_t n_assigned = 0;
        for (size_t r = 0; r < nr; r++) {
            if (col[r] < 0) continue;
            if (col[r] >= (int)nc || (used >> col[r] & 1)) bad++;
            used |= 1u << col[r];
            got += c[r * nc + (size_t)col[r]];
            n_assigned++;
        }
        double want = brute(c, nr, nc, 0, 0, 0, INFINITY);
        if (n_assigned != (nr < nc ? nr : nc) || fabs(got - want) > 1e-9) bad++;
        runs++;
    }
    CHECK(bad == 0 && runs == 300, "assignment: %d of %d random matrices (1-6 x 1-6) not optimal or not a matching", bad,
          runs);
}

static void test_iou(void)
{
    track_box a = {0, 0, 2, 2}, b = {1, 0, 3, 2}, c = {5, 5, 6, 6}, e = {1, 1, 1, 3};
    CHECK(fabsf(track_iou(&a, &a) - 1) < 1e-7f, "iou self %g", track_iou(&a, &a));
    CHECK(fabsf(track_iou(&a, &b) - 1.0f / 3) < 1e-7f, "iou half overlap %g, want 1/3", track_iou(&a, &b));
    CHECK(track_iou(&a, &c) == 0 && track_iou(&a, &e) == 0, "iou disjoint / empty");
}

static track_box box_at(double cx, double cy, double w, double h)
{
    track_box b = {(float)(cx - w / 2), (float)(cy - h / 2), (float)(cx + w / 2), (float)(cy + h / 2)};
    return b;
}

/* The reported track whose matched detection is `det`, or NULL. */
static const track_out *by_det(const track_out *o, long n, int det)
{
    for (long i = 0; i < n; i++)
        if (o[i].det == det) return &o[i];
    return NULL;
}

static double center_err(const track_box *a, const track_box *b)
{
    return hypot((a->x0 + a->x1) / 2 - (b->x0 + b->x1) / 2, (a->y0 + a->y1) / 2 - (b->y0 + b->y1) / 2);
}

/* One object moving at (3, 1.5) px per frame, hidden in frames 15-18: the
 * track converges, is predicted through the gap within 2 px, and keeps its id. */
static void test_occlusion(void)
{
    tracker *t = tracker_new(NULL);
    track_out o[8];
    long id = -1;
    int id_changes = 0;
    double worst_pred = 0, err_at_10 = 1e9;
    for (int f = 0; f < 30; f++) {
        track_box truth = box_at(100 + 3 * f, 80 + 1.5 * f, 40, 80);
        int hidden = f >= 15 && f <= 18;
        long n = tracker_update(t, &truth, hidden ? 0 : 1, o, 8);
        if (hidden) {
            if (n == 1) worst_pred = fmax(worst_pred, center_err(&o[0].box, &truth));
            else worst_pred = 1e9;
            continue;
        }
        const track_out *k = by_det(o, n, 0);
        if (!k) continue;
        if (id >= 0 && k->id != id) id_changes++;
        id = k->id;
        if (f == 10) err_at_10 = center_err(&k->box, &truth);
    }
    CHECK(err_at_10 < 0.5, "constant velocity: centre error %.3f px after 10 frames", err_at_10);
    CHECK(worst_pred < 2.0, "occlusion of 4 frames: prediction off by %.3f px", worst_pred);
    CHECK(id_changes == 0 && id == 1, "occlusion: %d id changes, last id %ld", id_changes, id);
    tracker_free(t);

    /* hidden for 8 frames (> max_age 5): the old track dies, a new id is born */
    t = tracker_new(NULL);
    long first = -1, last = -1;
    for (int f = 0; f < 30; f++) {
        track_box truth = box_at(100 + 3 * f, 80, 40, 80);
        int hidden = f >= 10 && f < 18;
        long n = tracker_update(t, &truth, hidden ? 0 : 1, o, 8);
        const track_out *k = hidden ? NULL : by_det(o, n, 0);
        if (k && first < 0) first = k->id;
        if (k) last = k->id;
        if (f == 17) CHECK(n == 0, "after max_age misses the track is gone (%ld reported)", n);
    }
    CHECK(first == 1 && last == 2, "reappearing after max_age: ids %ld then %ld, want 1 then 2", first, last);
    tracker_free(t);
}

/* Runs a scene of `n_obj` objects for `frames` frames; pos(o, f, &box)
 * gives object o's box or 0 when it is absent. Counts identity switches: an
 * object's matched track id changing from the last one it had. */
typedef int (*scene_fn)(int obj, int frame, track_box *out);
static int run_scene(scene_fn pos, int n_obj, int frames, double drop, const track_params *p, int *reported)
{
    tracker *t = tracker_new(p);
    long last_id[16];
    int switches = 0;
    *reported = 0;
    for (int o = 0; o < n_obj; o++) last_id[o] = -1;
    for (int f = 0; f < frames; f++) {
        track_box dets[16];
        int obj_of[16], n = 0;
        for (int o = 0; o < n_obj; o++) {
            track_box b;
            if (!pos(o, f, &b) || urand() < drop) continue;
            obj_of[n] = o, dets[n++] = b;
        }
        track_out out[32];
        long m = tracker_update(t, dets, (size_t)n, out, 32);
        for (int d = 0; d < n; d++) {
            const track_out *k = by_det(out, m, d);
            if (!k) continue;
            (*reported)++;
            int o = obj_of[d];
            if (last_id[o] >= 0 && last_id[o] != k->id) switches++;
            last_id[o] = k->id;
        }
    }
    tracker_free(t);
    return switches;
}

/* Two people walking towards each other, 10 px apart vertically: their
 * boxes overlap heavily (IoU up to 0.78) while they cross. */
static int crossing(int o, int f, track_box *b)
{
    double x = o == 0 ? 50 + 6 * f : 410 - 6 * f;
    *b = box_at(x, 200 + 10 * o, 40, 90);
    return 1;
}

/* Object 0 stays; object 1 enters at frame 10 and leaves after frame 30;
 * object 2 enters at frame 40. */
static int enter_leave(int o, int f, track_box *b)
{
    static const int from[3] = {0, 10, 40}, to[3] = {60, 30, 60};
    if (f < from[o] || f > to[o]) return 0;
    *b = box_at(60 + 150 * o + 2 * f, 100 + f, 50, 100);
    return 1;
}

/* Eight objects on a 4 x 2 grid with their own velocities and 1 px of
 * detector jitter per coordinate. */
static double vel[8][2];
static int jittered(int o, int f, track_box *b)
{
    double cx = 60 + 120 * (o % 4) + vel[o][0] * f, cy = 80 + 200 * (o / 4) + vel[o][1] * f;
    *b = box_at(cx + nrand(), cy + nrand(), 50 + nrand(), 110 + nrand());
    return 1;
}

static void test_scenes(void)
{
    int rep;
    int sw = run_scene(crossing, 2, 60, 0, NULL, &rep);
    CHECK(sw == 0 && rep >= 2 * 57, "crossing: %d identity switches, %d reported matches", sw, rep);

    tracker *t = tracker_new(NULL);
    track_out o[8];
    long ids_seen[8] = {0}, n_ids = 0;
    for (int f = 0; f < 61; f++) {
        track_box d[3];
        int n = 0;
        for (int k = 0; k < 3; k++)
            if (enter_leave(k, f, &d[n])) n++;
        long m = tracker_update(t, d, (size_t)n, o, 8);
        for (long i = 0; i < m; i++) {
            int seen = 0;
            for (long j = 0; j < n_ids; j++) seen |= ids_seen[j] == o[i].id;
            if (!seen && n_ids < 8) ids_seen[n_ids++] = o[i].id;
        }
        if (f == 11) CHECK(m == 1, "object entering at frame 10 not reported before its 3rd frame (%ld)", m);
        if (f == 12) CHECK(m == 2, "object entering at frame 10 reported at its 3rd frame (%ld)", m);
        if (f == 37) CHECK(m == 1, "object leaving after frame 30 gone after max_age (%ld)", m);
    }
    CHECK(n_ids == 3 && ids_seen[0] == 1 && ids_seen[1] == 2 && ids_seen[2] == 3,
          "enter/leave: %ld ids (%ld %ld %ld), want 1 2 3 in birth order", n_ids, ids_seen[0], ids_seen[1], ids_seen[2]);
    tracker_free(t);

    for (int k = 0; k < 8; k++) vel[k][0] = urand() * 4 - 2, vel[k][1] = urand() * 4 - 2;
    sw = run_scene(jittered, 8, 100, 0.1, NULL, &rep);
    CHECK(sw <= 1 && rep > 8 * 100 * 8 / 10, "8 jittered objects, 10%% dropped detections: %d switches (<= 1), %d matches",
          sw, rep);
}

static void test_hostile(void)
{
    tracker *t = tracker_new(NULL);
    track_box d[3] = {{NAN, 0, 10, 10}, {5, 5, 5, 20}, {0, 0, INFINITY, 10}};
    track_out o[4];
    long n = 0;
    for (int f = 0; f < 5; f++) n = tracker_update(t, d, 3, o, 4);
    CHECK(n == 0, "NaN, zero-width and infinite boxes start no track (%ld)", n);
    tracker_free(t);
    t = tracker_new(NULL);
    track_box ok = {0, 0, 10, 10};
    n = tracker_update(t, &ok, 1, NULL, 0);
    CHECK(n == 1, "count without an output buffer (%ld)", n);
    tracker_free(t);
    tracker_free(NULL);
}

int main(void)
{
    test_assign();
    test_iou();
    test_occlusion();
    test_scenes();
    test_hostile();
    return check_done("test_track");
}
