/*
 * cmd_quantize.h - entry point and usage text of `clipdex quantize`,
 * dispatched from main.c.
 */
#ifndef CLIPDEX_APP_CMD_QUANTIZE_H
#define CLIPDEX_APP_CMD_QUANTIZE_H

int cmd_quantize(int argc, char **argv);

extern const char usage_quantize[];

#endif
