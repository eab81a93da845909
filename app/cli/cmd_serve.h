/*
 * cmd_serve.h - entry point and usage text of `clipdex serve`, dispatched
 * from main.c.
 */
#ifndef CLIPDEX_APP_CMD_SERVE_H
#define CLIPDEX_APP_CMD_SERVE_H

int cmd_serve(int argc, char **argv);
extern const char usage_serve[];

#endif
