/*
 * serve_cmd.h - entry point and usage text of `clipdex serve`, dispatched
 * from main.c.
 */
#ifndef CLIPDEX_APP_SERVE_CMD_H
#define CLIPDEX_APP_SERVE_CMD_H

int cmd_serve(int argc, char **argv);
extern const char usage_serve[];

#endif
