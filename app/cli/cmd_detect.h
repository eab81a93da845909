/*
 * cmd_detect.h - `clipdex detect` and what the person mode of `watch` and
 * `index` shares with it: finding the detector and reading --classes.
 */
#ifndef CLIPDEX_APP_CMD_DETECT_H
#define CLIPDEX_APP_CMD_DETECT_H

#include <stdint.h>

#include "clipdex.h"

int cmd_detect(int argc, char **argv);
extern const char usage_detect[];

/* The detector folder: `opt`, else $CLIPDEX_DETECTOR; NULL (message
 * printed) when neither is set. */
const char *cli_detector_path(const char *opt);
/* keep[id] = 1 for each COCO name of the comma-separated `list` ("all" or
 * NULL: every class); 0, or APP_USAGE (message printed) for an unknown name. */
int cli_detector_classes(const clipdex_detector *det, const char *list, uint8_t *keep);

#endif
