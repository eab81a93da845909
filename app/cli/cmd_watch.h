/*
 * cmd_watch.h - entry point and usage text of `clipdex watch`, dispatched
 * from main.c.
 */
#ifndef CLIPDEX_APP_CMD_WATCH_H
#define CLIPDEX_APP_CMD_WATCH_H

int cmd_watch(int argc, char **argv);
extern const char usage_watch[];

#endif
