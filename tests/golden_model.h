/*
 * golden_model.h - regenerates the seeded model of a golden JSON
 * (tests/golden/models/<name>.json) with $BUILD/tools/genmodel, exactly as
 * the "genmodel.command" in the JSON says, into $BUILD/models/<name>; cached
 * with the command as a stamp. Shared by test_golden.c and test_quant.c.
 */
#ifndef GOLDEN_MODEL_H
#define GOLDEN_MODEL_H

#include <jansson.h>

#include "check.h"

/* Replaces the golden's placeholders and runs genmodel unless cached. */
static int make_model(json_t *g, const char *shared, const char *name, char *dir, size_t dlen)
{
    const char *cmd = json_string_value(json_object_get(json_object_get(g, "genmodel"), "command"));
    const char *build = check_build();
    if (!cmd) return -1;
    snprintf(dir, dlen, "%s/models/%s", build, name);
    char stamp[1200], want[2048], line[2048] = "";
    snprintf(stamp, sizeof stamp, "%s/.genmodel-command", dir);
    FILE *f = fopen(stamp, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    snprintf(want, sizeof want, "%s\n", cmd);
    if (strcmp(line, want) == 0) return 0;
    /* build/tools/genmodel ... --out OUT/<name> --vocab ../shared/data/vocab */
    char run[16384];
    const char *p = strstr(cmd, "tools/genmodel");
    const char *out = strstr(cmd, "--out ");
    const char *voc = strstr(cmd, "--vocab ");
    if (!p || !out || !voc) return -1;
    snprintf(run, sizeof run, "rm -rf '%s' && mkdir -p '%s' && '%s/tools/genmodel' %.*s --out '%s' --vocab '%s/data/vocab' >'%s/.genmodel-out'",
             dir, dir, build, (int)(out - (p + 15)), p + 15, dir, shared, dir);
    if (system(run) != 0) return -1;
    f = fopen(stamp, "w");
    if (!f) return -1;
    fputs(want, f);
    fclose(f);
    return 0;
}

#endif
