/*
 * cmd_watch.c - `clipdex watch`: matches video inputs (files, rtsp/http/HLS
 * streams, V4L2 cameras, "-" for stdin) against text prompts as they play
 * (video/watch.c) and prints the events: one line each, or one JSON object
 * per line with --json; --frames adds a line per scored frame. A status
 * line on a terminal; Ctrl-C ends cleanly with a summary.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_detect.h"
#include "cli/cmd_watch.h"
#include "store/store.h"
#include "util/json.h"
#include "video/decode.h"
#include "video/watch.h"
#include "person/pfind.h"
#include "video/wperson.h"
#include "video/wstore.h"
#include "zeroshot/zeroshot.h"

const char usage_watch[] =
    "Usage: clipdex watch --input URI [--input URI]... (--text T... [--negative T]... | --prompts FILE)\n"
    "                     [--model DIR|NAME] [OPTIONS]\n"
    "\n"
    "Matches video inputs against text prompts as they play and prints events:\n"
    "a match starts when a prompt's score stays at or over its threshold for\n"
    "--dwell seconds (and no negative prompt scores higher), and ends after it\n"
    "stays under for --hold seconds; the focus (the most relevant input) moves\n"
    "after another input has led for --focus-dwell seconds. Times are the\n"
    "stream's own (seconds; live inputs add the wall-clock time).\n"
    "\n"
    "Inputs: video files, rtsp:// http(s):// (HLS too) udp:// streams, V4L2\n"
    "cameras (/dev/video0), and - for a stream on stdin. Live inputs are\n"
    "reopened with back-off when they drop; a file ends when it ends.\n"
    "\n"
    "Options:\n"
    "  --model DIR|NAME   model directory or name (default: $CLIPDEX_MODEL, then ViT-B-32)\n"
    "  --input URI        an input (repeatable; bare arguments are inputs too)\n"
    "  --text T           a positive prompt (repeatable)\n"
    "  --negative T       a negative prompt: when it wins, it suppresses the match\n"
    "  --templates FILE   embed each text as an ensemble over these templates ({} = the text)\n"
    "  --prompts FILE     prompts from `clipdex prompts` or the video app's JSON format\n"
    "  --save-prompts F   also write the prompts in the video app's JSON format\n"
    "  --score cosine|softmax   raw cosine, or softmax over all prompts (default cosine)\n"
    "  --threshold X      global threshold (default 0.25 for cosine, 0.5 for softmax)\n"
    "  --every S          seconds between scored frames by timestamp; 0 = every frame (default 0.5)\n"
    "  --dwell S          seconds a match must hold to start (default 0.5)\n"
    "  --hold S           seconds under the threshold to end a match (default 0.5)\n"
    "  --focus-dwell S    seconds an input must lead to take the focus (default 1)\n"
    "  --batch N          frames per image-tower call, all inputs together, 1..64 (default 8)\n"
    "  --retries N        reconnects of a live input before it is given up (default: forever)\n"
    "  --timeout S        network timeout (default 5)\n"
    "  --json             one JSON object per event: {\"event\",\"input\",\"uri\",\"prompt\",\n"
    "                     \"score\",\"cosine\",\"pts\",\"wall\"}\n"
    "  --frames           also print every scored frame (scores and cosines of all prompts)\n"
    "  --db FILE          also store every scored frame (embedding, time, thumbnail) in this\n"
    "                     index, to be searched later: files by stream time, live inputs\n"
    "                     by wall-clock time (default: no storing)\n"
    "  --detector person  person mode: detect and track the people of each scored frame\n"
    "                     and match their crops (square, padded) instead of the whole\n"
    "                     frame; a frame's score is its best person's. Adds a \"track\"\n"
    "                     event per scored crop (track id, box, scores); start/end/focus\n"
    "                     name the track\n"
    "  --detector-model DIR  the detector (default: $CLIPDEX_DETECTOR; sh\n"
    "                     tools/get_detector.sh DIR installs NanoDet)\n"
    "  --crop-every S     person mode: seconds between crops of one track (default 1)\n"
    "  --max-crops N      person mode: crops per frame, 1..64 (default 4)\n"
    "  --threads N        inference threads, 0 = all CPUs (default 0)\n"
    "  --vocab PATH       tokenizer vocabulary (default: the model's, then $CLIPDEX_VOCAB)\n"
    "  -q, --quiet        no status line and no summary\n"
    "  -h, --help         print this text\n";

#define WATCH_MAX_INPUTS 64

typedef struct watch_cli {
    const char *model, *vocab, *prompts, *templates, *save, *db, *detector, *detector_model;
    const char **inputs, **texts, **negs;
    size_t n_inputs, n_texts, n_negs;
    long threads, batch, retries, max_crops;
    int json, frames, quiet, no_exif, has_threshold;
    double threshold;
    const char *score;
    watch_opts o;
} watch_cli;

static volatile sig_atomic_t watch_stop;
static void on_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

static int parse_numbers(cli_args *a, watch_cli *o, int *r)
{
    const char *val;
    static const struct { const char *name; double lo, hi; } nums[] = {
        {"--every", 0, 3600}, {"--dwell", 0, 3600}, {"--hold", 0, 3600}, {"--focus-dwell", 0, 3600},
        {"--timeout", 0.1, 600}, {"--crop-every", 0, 3600}};
    double *dst[] = {&o->o.every, &o->o.dwell, &o->o.hold, &o->o.focus_dwell, &o->o.timeout_s, &o->o.crop_every};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if ((*r = cli_args_value(a, nums[i].name, &val)) != 0)
            return *r < 0 || cli_parse_double(a->cmd, nums[i].name, val, nums[i].lo, nums[i].hi, dst[i]) ? APP_USAGE : 1;
    if ((*r = cli_args_value(a, "--threshold", &val)) != 0) {
        o->has_threshold = 1;
        return *r < 0 || cli_parse_double(a->cmd, "--threshold", val, -1, 1, &o->threshold) ? APP_USAGE : 1;
    }
    if ((*r = cli_args_value(a, "--batch", &val)) != 0)
        return *r < 0 || cli_parse_int(a->cmd, "--batch", val, 1, 64, &o->batch) ? APP_USAGE : 1;
    if ((*r = cli_args_value(a, "--max-crops", &val)) != 0)
        return *r < 0 || cli_parse_int(a->cmd, "--max-crops", val, 1, 64, &o->max_crops) ? APP_USAGE : 1;
    if ((*r = cli_args_value(a, "--retries", &val)) != 0)
        return *r < 0 || cli_parse_int(a->cmd, "--retries", val, 0, 1000000, &o->retries) ? APP_USAGE : 1;
    return 0;
}

static int watch_parse(int argc, char **argv, watch_cli *o)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_watch, stdout);
            return cli_flush_stdout();
        }
        int nr = parse_numbers(&a, o, &r);
        if (nr == APP_USAGE) return APP_USAGE;
        if (nr) continue;
        if (cli_args_positional(&a)) {
            o->inputs[o->n_inputs++] = argv[a.i];
        } else if ((r = cli_args_value(&a, "--input", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->inputs[o->n_inputs++] = val;
        } else if ((r = cli_args_value(&a, "--text", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->texts[o->n_texts++] = val;
        } else if ((r = cli_args_value(&a, "--negative", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->negs[o->n_negs++] = val;
        } else if ((r = cli_args_shared(&a, &o->model, &o->vocab, &o->threads, &o->no_exif)) != 0 ||
                   (r = cli_args_value(&a, "--prompts", &o->prompts)) != 0 ||
                   (r = cli_args_value(&a, "--templates", &o->templates)) != 0 ||
                   (r = cli_args_value(&a, "--save-prompts", &o->save)) != 0 ||
                   (r = cli_args_value(&a, "--db", &o->db)) != 0 ||
                   (r = cli_args_value(&a, "--detector", &o->detector)) != 0 ||
                   (r = cli_args_value(&a, "--detector-model", &o->detector_model)) != 0 ||
                   (r = cli_args_value(&a, "--score", &o->score)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            o->json = 1;
        } else if ((r = cli_args_flag(&a, "--frames")) != 0) {
            o->frames = 1;
        } else if ((r = cli_args_flag(&a, "--quiet")) != 0 || (r = cli_args_flag(&a, "-q")) != 0) {
            o->quiet = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    if (o->n_inputs == 0) return cli_usage_error(a.cmd, "no input (give --input URI)");
    if (o->n_inputs > WATCH_MAX_INPUTS) return cli_usage_error(a.cmd, "at most %d inputs", WATCH_MAX_INPUTS);
    if (!o->prompts && o->n_texts == 0) return cli_usage_error(a.cmd, "no prompt (give --text T or --prompts FILE)");
    if (o->score && strcmp(o->score, "cosine") != 0 && strcmp(o->score, "softmax") != 0)
        return cli_usage_error(a.cmd, "--score must be cosine or softmax, not '%s'", o->score);
    o->o.score = o->score && strcmp(o->score, "softmax") == 0 ? WATCH_SOFTMAX : WATCH_COSINE;
    if (o->detector && strcmp(o->detector, "person") != 0)
        return cli_usage_error(a.cmd, "--detector takes 'person' (the person mode), not '%s'", o->detector);
    if (o->detector && !(o->detector_model = cli_detector_path(o->detector_model))) return APP_USAGE;
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    return -1;
}

/* ---- output --------------------------------------------------------------- */

typedef struct printer {
    const watch_cli *o;
    const zs_wprompts *p;
    const watch *w;
    wstore *ws;        /* --db, else NULL */
    const int *live;   /* [n_inputs] */
    int db_failed;
    long starts;
    int status_shown, tty;
    double last_status;
    double t_start;    /* monotonic time the watch started */
} printer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void status_line(printer *pr, const watch *w, size_t n);

static const char *const kind_name[] = {"frame", "start", "end", "focus", "reconnect", "error", "eos", "track"};

static void print_json(const printer *pr, const watch_event *ev)
{
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "event");
    json_str(&j, kind_name[ev->kind]);
    json_key(&j, "input");
    json_int(&j, ev->input);
    json_key(&j, "uri");
    json_str(&j, ev->uri);
    if (ev->prompt >= 0) {
        json_key(&j, "prompt");
        json_str(&j, pr->p->text.v[ev->prompt]);
        json_key(&j, "score");
        json_num(&j, ev->score);
        json_key(&j, "cosine");
        json_num(&j, ev->cosine);
    }
    if (ev->track_id > 0) {
        json_key(&j, "track");
        json_int(&j, ev->track_id);
    }
    if (ev->kind == WATCH_TRACK) {
        json_key(&j, "box");
        json_arr_begin(&j);
        for (int k = 0; k < 4; k++) json_num(&j, ev->box[k]);
        json_arr_end(&j);
    }
    if (ev->kind == WATCH_FRAME && pr->o->detector) {
        json_key(&j, "people");
        json_int(&j, (long)ev->n_tracks);
    }
    json_key(&j, "pts");
    json_num(&j, ev->pts);
    if (ev->wall > 0) {
        json_key(&j, "wall");
        json_fixed(&j, ev->wall, 6);
    }
    if (ev->kind == WATCH_FRAME || ev->kind == WATCH_TRACK) {
        json_key(&j, "scores");
        json_arr_begin(&j);
        for (size_t k = 0; k < ev->n_prompts; k++) json_num(&j, ev->scores[k]);
        json_arr_end(&j);
        json_key(&j, "cosines");
        json_arr_begin(&j);
        for (size_t k = 0; k < ev->n_prompts; k++) json_num(&j, ev->cosines[k]);
        json_arr_end(&j);
    }
    if (ev->msg) {
        json_key(&j, "message");
        json_str(&j, ev->msg);
    }
    json_obj_end(&j);
    json_newline(&j);
}

static void print_text(const printer *pr, const watch_event *ev)
{
    printf("%9.2f s  input %d  %-6s", ev->pts, ev->input, kind_name[ev->kind]);
    if (ev->prompt >= 0)
        printf("  \"%s\"  score %.4f  cosine %.4f", pr->p->text.v[ev->prompt], ev->score, ev->cosine);
    if (ev->track_id > 0) printf("  track %ld", ev->track_id);
    if (ev->kind == WATCH_TRACK) printf("  box %.0f,%.0f,%.0f,%.0f", ev->box[0], ev->box[1], ev->box[2], ev->box[3]);
    if (ev->kind == WATCH_FRAME || ev->kind == WATCH_TRACK)
        for (size_t k = 0; k < ev->n_prompts; k++) printf("  %.4f", ev->scores[k]);
    putchar('\n');
}

static void on_event(void *user, const watch_event *ev)
{
    printer *pr = user;
    if (ev->kind == WATCH_RECONNECT || ev->kind == WATCH_ERROR) { /* also on stderr, always */
        if (pr->status_shown) fputc('\n', stderr), pr->status_shown = 0;
        cli_error("watch: input %d '%s': %s", ev->input, ev->uri, ev->msg);
    }
    if (ev->kind == WATCH_TRACK && pr->ws && !pr->db_failed &&
        wstore_add_person(pr->ws, (size_t)ev->input, ev->box, ev->det_score, ev->width, ev->height, ev->emb))
        pr->db_failed = 1;
    if (ev->kind == WATCH_FRAME && pr->ws && !pr->db_failed &&
        wstore_add(pr->ws, (size_t)ev->input, pr->live[ev->input] ? ev->wall : ev->pts, ev->emb, ev->thumb,
                   ev->thumb_len))
        pr->db_failed = 1; /* said once; the watch goes on */
    if (ev->kind == WATCH_FRAME && pr->tty && now_s() - pr->last_status >= 1.0) {
        status_line(pr, pr->w, pr->o->n_inputs);
        pr->last_status = now_s();
    }
    if ((ev->kind == WATCH_FRAME || ev->kind == WATCH_TRACK) && !pr->o->frames) return;
    if (pr->status_shown) fputc('\n', stderr), pr->status_shown = 0;
    if (ev->kind == WATCH_START) pr->starts++;
    if (pr->o->json) print_json(pr, ev);
    else print_text(pr, ev);
    fflush(stdout);
}

static void status_line(printer *pr, const watch *w, size_t n)
{
    char line[512];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof line - 64; i++) {
        watch_stats st;
        watch_get_stats(w, i, &st);
        len += (size_t)snprintf(line + len, sizeof line - len, "%s#%zu %.1f fps, %ld dropped", i ? " | " : "", i,
                                st.fps, st.dropped);
    }
    double e, sc;
    size_t batch;
    watch_get_times(w, &e, &sc, &batch);
    fprintf(stderr, "\rwatch: %s | batch %zu ", line, batch);
    pr->status_shown = 1;
}

static void summary(const printer *pr, const watch *w, size_t n)
{
    if (pr->status_shown) fputc('\n', stderr);
    for (size_t i = 0; i < n; i++) {
        watch_stats st;
        watch_get_stats(w, i, &st);
        fprintf(stderr, "clipdex watch: input %zu '%s': %ld frames scored, %ld not scored (sampling, or dropped behind a live input), %ld reconnects%s\n", i,
                pr->o->inputs[i], st.frames, st.dropped, st.reconnects,
                st.done < 0 ? ", failed" : "");
        fprintf(stderr, "clipdex watch: input %zu time: decode+scale %.3f s, to image%s %.3f s\n", i, st.decode_s,
                pr->o->db ? " and thumbnail" : "", st.prep_s);
    }
    double embed_s, score_s;
    watch_get_times(w, &embed_s, &score_s, NULL);
    if (pr->o->detector)
        fprintf(stderr, "clipdex watch: time: detector and tracker %.3f s\n", watch_get_detect_s(w));
    fprintf(stderr, "clipdex watch: time: image tower %.3f s, scoring and output %.3f s, wall %.3f s\n", embed_s,
            score_s, now_s() - pr->t_start);
    fprintf(stderr, "clipdex watch: %ld matches started\n", pr->starts);
    if (pr->ws) fprintf(stderr, "clipdex watch: %ld frames stored in '%s'\n", wstore_count(pr->ws), pr->o->db);
}

/* ---- run ------------------------------------------------------------------ */

static int load_prompts(const watch_cli *o, clipdex_ctx *ctx, clipdex_model *model, zs_wprompts *p)
{
    zs_list tmpl = {0};
    store_model_id id;
    int rc = o->templates ? zs_list_file(o->templates, &tmpl) : 0;
    if (!rc && o->prompts) rc = store_model_identify(model, o->model, &id);
    if (!rc && o->prompts) rc = zs_wprompts_load(ctx, model, &id, o->prompts, p);
    if (!rc) rc = zs_wprompts_add_texts(ctx, model, o->texts, o->n_texts, 0, &tmpl, p);
    if (!rc) rc = zs_wprompts_add_texts(ctx, model, o->negs, o->n_negs, 1, &tmpl, p);
    zs_list_free(&tmpl);
    if (!rc && o->save) rc = zs_wprompts_save_app(o->save, p, o->has_threshold ? o->threshold : p->file_threshold);
    return rc;
}

static int watch_go(watch_cli *o, watch *w, printer *pr)
{
    struct sigaction old_sig[2];
    cli_signals_catch(on_signal, old_sig);
    int rc = watch_run(w, on_event, pr, &watch_stop);
    cli_signals_restore(old_sig);
    if (!o->quiet) summary(pr, w, o->n_inputs);
    return rc;
}

/* What the database records of the detector (`index --detector` writes
 * the same form): the people stored are the crops embedded, at most
 * --max-crops a frame. */
static int detector_identity(const watch_cli *o, clipdex_detector *det, const clipdex_model *model, char *id,
                             size_t cap)
{
    pfind pf;
    char err[512];
    if (pfind_init(&pf, det, model, wperson_default_min_score(), o->o.max_crops)) {
        cli_error("the detector '%s' has no \"person\" class", o->detector_model);
        return APP_MODEL;
    }
    if (pfind_identity(o->detector_model, &pf, id, cap, err, sizeof err)) {
        cli_error("%s", err);
        return APP_MODEL;
    }
    return 0;
}

static int watch_main(watch_cli *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    zs_wprompts p;
    memset(&p, 0, sizeof p);
    watch *w = NULL;
    wstore *ws = NULL;
    int *live = calloc(o->n_inputs, sizeof *live);
    int rc = live ? cli_ctx_new((int)o->threads, &ctx) : APP_FAIL;
    for (size_t i = 0; live && i < o->n_inputs; i++) live[i] = video_uri_is_live(o->inputs[i]);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    if (!rc) {
        p.dim = (size_t)clipdex_model_embed_dim(model);
        rc = load_prompts(o, ctx, model, &p);
    }
    watch_prompt *wp = rc ? NULL : calloc(p.n, sizeof *wp);
    if (!rc && !wp) rc = APP_FAIL;
    for (size_t i = 0; !rc && i < p.n; i++)
        wp[i] = (watch_prompt){p.text.v[i], p.emb + i * p.dim, p.negative[i], p.threshold[i]};
    if (!rc) {
        if (o->has_threshold) o->o.threshold = o->threshold;
        else if (!isnan(p.file_threshold)) o->o.threshold = p.file_threshold;
        else if (o->o.score == WATCH_SOFTMAX) o->o.threshold = 0.5;
        o->o.batch = (int)o->batch;
        o->o.retries = (int)o->retries;
        o->o.thumbs = o->db != NULL;
    }
    clipdex_detector *det = NULL;
    char det_id[512] = "";
    if (!rc && o->detector) {
        if (clipdex_detector_load(ctx, o->detector_model, &det)) {
            cli_error("%s", clipdex_ctx_errmsg(ctx));
            rc = APP_MODEL;
        }
        o->o.detector = det;
        if (o->max_crops) o->o.max_crops = (int)o->max_crops;
        o->o.embed_frames = o->db != NULL; /* the frames go into the index too */
        if (!rc && o->db) rc = detector_identity(o, det, model, det_id, sizeof det_id);
    }
    if (!rc && o->db)
        rc = wstore_open(o->db, model, o->model, o->inputs, live, o->n_inputs, det_id[0] ? det_id : NULL, &ws);
    if (!rc) {
        rc = watch_start(ctx, model, o->inputs, o->n_inputs, wp, p.n, p.dim, &o->o, &w);
    }
    if (!rc) {
        printer pr = {o, &p, w, ws, live, 0, 0, 0, !o->quiet && isatty(STDERR_FILENO), 0, now_s()};
        watch_stop = 0;
        rc = watch_go(o, w, &pr);
        if (pr.db_failed && !rc) rc = APP_FAIL;
        for (size_t i = 0; !rc && i < o->n_inputs; i++) {
            watch_stats st;
            watch_get_stats(w, i, &st);
            if (st.done < 0) rc = APP_FAIL; /* one input failed: exit 1, the others were watched */
        }
        if (watch_stop) rc = 130;
    }
    watch_free(w);
    clipdex_detector_free(det);
    if (wstore_close(ws) && !rc) rc = APP_FAIL;
    free(live);
    free(wp);
    zs_wprompts_free(&p);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    int frc = cli_flush_stdout();
    return rc ? rc : frc;
}

int cmd_watch(int argc, char **argv)
{
    watch_cli o;
    memset(&o, 0, sizeof o);
    watch_opts_default(&o.o);
    o.threshold = NAN;
    o.batch = o.o.batch;
    o.retries = -1;
    o.inputs = calloc((size_t)argc + 1, sizeof *o.inputs);
    o.texts = calloc((size_t)argc + 1, sizeof *o.texts);
    o.negs = calloc((size_t)argc + 1, sizeof *o.negs);
    int rc = o.inputs && o.texts && o.negs ? watch_parse(argc, argv, &o) : APP_FAIL;
    if (rc == APP_FAIL) cli_error("out of memory");
    if (rc < 0) rc = watch_main(&o);
    free(o.inputs);
    free(o.texts);
    free(o.negs);
    return rc;
}
